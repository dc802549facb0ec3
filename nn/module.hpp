// Modules. A module owns named parameters (leaf tensors that require grad)
// and named submodules; names compose with dots ("layers.0.weight"), so a
// whole model can be listed, zeroed, switched between training and
// evaluation, printed and checkpointed from its root.
//
// Three levels:
//   ModuleBase<T>              parameters, submodules, modes, printing; no forward
//   ModuleOf<T, Out(In...)>    adds `virtual Out forward(In...)` and operator()
//   BasicModule<T>             = ModuleOf<T, BasicTensor<T>(const BasicTensor<T>&)>,
//                              one tensor in, one out: what Sequential chains
//
//   struct Affine : nn::BasicModule<double> {
//       Tensor64 w;
//       Affine() : BasicModule("Affine") { register_parameter("w", w, Tensor64::ones({3})); }
//       Tensor64 forward(const Tensor64& x) override { return x * w; }
//   };
//
//   struct Gaussian { Tensor64 mu, logvar; };
//   struct Encoder : nn::ModuleOf<double, Gaussian(const Tensor64&)> {
//       Encoder() : ModuleOf("Encoder") { ... }
//       Gaussian forward(const Tensor64& x) override { ... }
//   };
//   auto [mu, logvar] = encoder(x);
//
// Modules hold pointers to their own members, so they cannot be copied or
// moved: create them in place or behind a shared_ptr.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <tapegrad/core/tensor.hpp>

namespace tapegrad::nn {

template <class T>
using NamedTensor = std::pair<std::string, BasicTensor<T>>;

template <class T>
class ModuleBase {
public:
    explicit ModuleBase(std::string type_name) : type_name_(std::move(type_name)) {}
    virtual ~ModuleBase() = default;
    ModuleBase(const ModuleBase&) = delete;
    ModuleBase& operator=(const ModuleBase&) = delete;

    // Every parameter of this module and its submodules, in registration
    // order, depth first. The tensors are handles: they share values and
    // gradients with the module.
    std::vector<NamedTensor<T>> named_parameters() const;
    std::vector<BasicTensor<T>> parameters() const;
    std::size_t num_parameters() const;  // total elements

    // The slot holding a parameter, by its dotted name. Assigning to it swaps
    // the tensor the module uses (gradchecks feed their own leaves this way).
    // ValueError naming the parameter if there is none.
    BasicTensor<T>& parameter(const std::string& name);

    void zero_grad();

    // Every generator of this module and its submodules (Dropout's masks,
    // RReLU's slopes), named like parameters ("2.generator"). Run
    // checkpoints save them, so a resumed run draws the same numbers.
    std::vector<std::pair<std::string, Generator*>> named_generators() const;

    // Training mode (the default) vs evaluation mode, for this module and
    // every submodule. Dropout and RReLU behave differently in each.
    void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }

    const std::string& type_name() const { return type_name_; }
    // The architecture, one module per line with parameter counts.
    std::string str() const;

protected:
    // Registers `slot` (a member of the derived class) under `name`, sets it
    // to `init` and makes it require grad.
    void register_parameter(const std::string& name, BasicTensor<T>& slot, BasicTensor<T> init);
    // Registers a generator member that forward() draws from.
    void register_generator(const std::string& name, Generator& gen);
    // Registers a submodule; returns it for convenience.
    template <class M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
        add_child(name, module);
        return module;
    }
    // Shown between the parentheses in str(): "in=2, out=3".
    virtual std::string extra_repr() const { return ""; }

private:
    void add_child(const std::string& name, std::shared_ptr<ModuleBase> child);
    BasicTensor<T>* find_parameter(const std::string& name);
    void collect(const std::string& prefix, std::vector<NamedTensor<T>>& out) const;
    void collect_generators(const std::string& prefix, std::vector<std::pair<std::string, Generator*>>& out) const;
    void print(std::ostream& os, const std::string& name, int indent) const;

    std::string type_name_;
    bool training_ = true;
    std::vector<std::pair<std::string, BasicTensor<T>*>> params_;
    std::vector<std::pair<std::string, Generator*>> generators_;
    std::vector<std::pair<std::string, std::shared_ptr<ModuleBase>>> children_;
};

template <class T>
std::ostream& operator<<(std::ostream& os, const ModuleBase<T>& m);

// A module with any inputs and output: several tensors in, a struct out.
template <class T, class Signature>
class ModuleOf;
template <class T, class Out, class... In>
class ModuleOf<T, Out(In...)> : public ModuleBase<T> {
public:
    using ModuleBase<T>::ModuleBase;
    virtual Out forward(In... in) = 0;
    Out operator()(In... in) { return forward(std::forward<In>(in)...); }
};

// One tensor in, one tensor out: the layers and activations, and what
// Sequential chains.
template <class T>
class BasicModule : public ModuleOf<T, BasicTensor<T>(const BasicTensor<T>&)> {
public:
    explicit BasicModule(std::string type_name)
        : ModuleOf<T, BasicTensor<T>(const BasicTensor<T>&)>(std::move(type_name)) {}
};

using Module = BasicModule<float>;
using Module64 = BasicModule<double>;

// Layers built without a generator draw from the default one (see
// core/generator.hpp).
using tapegrad::default_generator;
using tapegrad::manual_seed;

extern template class ModuleBase<float>;
extern template class ModuleBase<double>;

}  // namespace tapegrad::nn

namespace tapegrad::detail {
// GraphError: a compiled step replays the training-mode forward of `module`
// (its random draw) while the module is in evaluation mode now.
[[noreturn]] void replayed_in_eval_mode(const char* module);
}  // namespace tapegrad::detail
