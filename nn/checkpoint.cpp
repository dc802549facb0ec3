#include <tapegrad/nn/checkpoint.hpp>

#include <algorithm>
#include <map>

#include <tapegrad/core/grad_mode.hpp>
#include <tapegrad/nn/data/npz.hpp>
#include <tapegrad/nn/shape_util.hpp>

namespace tapegrad::nn {

namespace {

const std::string kOptimizerPrefix = "optimizer/";
// The generator's state text (Generator::state()) as bytes.
const std::string kGeneratorEntry = "generator/state";

template <class T>
const char* dtype_name() {
    return std::is_same_v<T, float> ? "float32" : "float64";
}

template <class T>
data::NpyArray to_npy(const std::string& name, const Array<T>& a) {
    return data::NpyArray::from_vector(name, std::vector<std::size_t>(a.shape().begin(), a.shape().end()),
                                       std::vector<T>(a.begin(), a.end()));
}

// The array as T, after checking its dtype and shape against `shape`.
template <class T, class S>
std::vector<T> checked_values(const std::string& path, const std::string& what, const data::NpyArray& a,
                              const S& shape) {
    if (a.descr != data::detail::npy_descr<T>())
        throw DtypeError("load_checkpoint: '" + path + "': " + what + " is stored as " + a.descr +
                         " but the model is " + dtype_name<T>() + " (" + data::detail::npy_descr<T>() + ")");
    if (!std::equal(a.shape.begin(), a.shape.end(), shape.begin(), shape.end()))
        throw ShapeError("load_checkpoint: '" + path + "': " + what + " has shape " + shape_string(a.shape) +
                         " in the file but " + shape_string(shape) + " in the model");
    return a.to_vector<T>();
}

template <class T>
void save(const std::string& path, const ModuleBase<T>& module, const Optimizer<T>* optimizer,
          const Generator* generator) {
    std::vector<data::NpyArray> arrays;
    for (const auto& [name, p] : module.named_parameters()) arrays.push_back(to_npy(name, p.value()));
    if (optimizer)
        for (const auto& [name, a] : optimizer->state()) arrays.push_back(to_npy(kOptimizerPrefix + name, a));
    if (generator) {
        const std::string text = generator->state();
        arrays.push_back(data::NpyArray::from_vector(kGeneratorEntry, {text.size()},
                                                     std::vector<std::uint8_t>(text.begin(), text.end())));
    }
    data::save_npz(path, arrays);
}

template <class T>
void load(const std::string& path, ModuleBase<T>& module, Optimizer<T>* optimizer, Generator* generator) {
    std::map<std::string, data::NpyArray> file;
    for (auto& a : data::load_npz(path)) file.emplace(a.name, std::move(a));

    // 0. The generator state, parsed into a scratch generator first.
    Generator restored;
    if (auto it = file.find(kGeneratorEntry); it != file.end()) {
        if (generator) {
            if (it->second.descr != data::detail::npy_descr<std::uint8_t>())
                throw DtypeError("load_checkpoint: '" + path + "': '" + kGeneratorEntry + "' is stored as " +
                                 it->second.descr + ", expected bytes (|u1)");
            const auto bytes = it->second.to_vector<std::uint8_t>();
            try {
                restored.set_state(std::string(bytes.begin(), bytes.end()));
            } catch (const ValueError& e) {
                throw ValueError("load_checkpoint: '" + path + "': '" + kGeneratorEntry + "': " + e.what());
            }
        }
        file.erase(it);
    } else if (generator) {
        throw ValueError("load_checkpoint: '" + path + "' has no generator state ('" + kGeneratorEntry + "')");
    }

    // 1. Every parameter present with the right dtype and shape.
    auto params = module.named_parameters();
    std::vector<std::vector<T>> values;
    for (const auto& [name, p] : params) {
        auto it = file.find(name);
        if (it == file.end())
            throw ValueError("load_checkpoint: '" + path + "': parameter '" + name + "' is missing from the file");
        values.push_back(checked_values<T>(path, "parameter '" + name + "'", it->second, p.shape()));
        file.erase(it);
    }
    // 2. Nothing else but optimiser state.
    StateDict<T> state;
    for (const auto& [name, a] : file) {
        if (name.compare(0, kOptimizerPrefix.size(), kOptimizerPrefix) != 0)
            throw ValueError("load_checkpoint: '" + path + "': the file has parameter '" + name +
                             "' which the model does not have");
        if (!optimizer) continue;
        auto v = checked_values<T>(path, "optimizer entry '" + name + "'", a, a.shape);
        Array<T> arr = Array<T>::from_shape(a.shape);
        std::copy(v.begin(), v.end(), arr.begin());
        state.emplace_back(name.substr(kOptimizerPrefix.size()), std::move(arr));
    }
    if (optimizer) {
        if (state.empty()) throw ValueError("load_checkpoint: '" + path + "' has no optimizer state");
        optimizer->load_state(state);  // validates fully before changing anything
    }
    // 3. Commit: copy into the existing tensors.
    NoGradGuard no_grad;
    for (std::size_t i = 0; i < params.size(); ++i)
        params[i].second.modify([&](auto& v) { std::copy(values[i].begin(), values[i].end(), v.begin()); });
    if (generator) *generator = restored;
}

}  // namespace

template <class T>
void save_checkpoint(const std::string& path, const ModuleBase<T>& module) {
    save<T>(path, module, nullptr, nullptr);
}
template <class T>
void save_checkpoint(const std::string& path, const ModuleBase<T>& module, const Optimizer<T>& optimizer) {
    save<T>(path, module, &optimizer, nullptr);
}
template <class T>
void save_checkpoint(const std::string& path, const ModuleBase<T>& module, const Generator& generator) {
    save<T>(path, module, nullptr, &generator);
}
template <class T>
void save_checkpoint(const std::string& path, const ModuleBase<T>& module, const Optimizer<T>& optimizer,
                     const Generator& generator) {
    save<T>(path, module, &optimizer, &generator);
}
template <class T>
void load_checkpoint(const std::string& path, ModuleBase<T>& module) {
    load<T>(path, module, nullptr, nullptr);
}
template <class T>
void load_checkpoint(const std::string& path, ModuleBase<T>& module, Optimizer<T>& optimizer) {
    load<T>(path, module, &optimizer, nullptr);
}
template <class T>
void load_checkpoint(const std::string& path, ModuleBase<T>& module, Generator& generator) {
    load<T>(path, module, nullptr, &generator);
}
template <class T>
void load_checkpoint(const std::string& path, ModuleBase<T>& module, Optimizer<T>& optimizer, Generator& generator) {
    load<T>(path, module, &optimizer, &generator);
}

#define TAPEGRAD_INSTANTIATE(T)                                                                                 \
    template void save_checkpoint(const std::string&, const ModuleBase<T>&);                                   \
    template void save_checkpoint(const std::string&, const ModuleBase<T>&, const Optimizer<T>&);              \
    template void save_checkpoint(const std::string&, const ModuleBase<T>&, const Generator&);                 \
    template void save_checkpoint(const std::string&, const ModuleBase<T>&, const Optimizer<T>&, const Generator&); \
    template void load_checkpoint(const std::string&, ModuleBase<T>&);                                         \
    template void load_checkpoint(const std::string&, ModuleBase<T>&, Optimizer<T>&);                          \
    template void load_checkpoint(const std::string&, ModuleBase<T>&, Generator&);                             \
    template void load_checkpoint(const std::string&, ModuleBase<T>&, Optimizer<T>&, Generator&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad::nn
