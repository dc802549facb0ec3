// BasicModule<T>: the base of every layer. A module owns named parameters
// (leaf tensors that require grad) and named submodules; names compose with
// dots ("layers.0.weight"), so a whole model can be listed, zeroed, switched
// between training and evaluation, printed and checkpointed from its root.
//
//   struct Affine : nn::BasicModule<double> {
//       Tensor64 w;
//       Affine() : BasicModule("Affine") { register_parameter("w", w, Tensor64::ones({3})); }
//       Tensor64 forward(const Tensor64& x) override { return x * w; }
//   };
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
class BasicModule {
public:
    explicit BasicModule(std::string type_name) : type_name_(std::move(type_name)) {}
    virtual ~BasicModule() = default;
    BasicModule(const BasicModule&) = delete;
    BasicModule& operator=(const BasicModule&) = delete;

    virtual BasicTensor<T> forward(const BasicTensor<T>& x) = 0;
    BasicTensor<T> operator()(const BasicTensor<T>& x) { return forward(x); }

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
    // Registers a submodule; returns it for convenience.
    template <class M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
        add_child(name, module);
        return module;
    }
    // Shown between the parentheses in str(): "in=2, out=3".
    virtual std::string extra_repr() const { return ""; }

private:
    void add_child(const std::string& name, std::shared_ptr<BasicModule> child);
    BasicTensor<T>* find_parameter(const std::string& name);
    void collect(const std::string& prefix, std::vector<NamedTensor<T>>& out) const;
    void print(std::ostream& os, const std::string& name, int indent) const;

    std::string type_name_;
    bool training_ = true;
    std::vector<std::pair<std::string, BasicTensor<T>*>> params_;
    std::vector<std::pair<std::string, std::shared_ptr<BasicModule>>> children_;
};

template <class T>
std::ostream& operator<<(std::ostream& os, const BasicModule<T>& m);

using Module = BasicModule<float>;
using Module64 = BasicModule<double>;

// The generator used by layers built without one (like torch.manual_seed):
// one per thread, seeded 0 until manual_seed() is called.
Generator& default_generator();
void manual_seed(std::uint64_t seed);

extern template class BasicModule<float>;
extern template class BasicModule<double>;

}  // namespace tapegrad::nn
