#include <tapegrad/nn/checkpoint.hpp>

#include <algorithm>
#include <map>

#include <tapegrad/core/grad_mode.hpp>
#include <tapegrad/nn/data/npz.hpp>
#include <tapegrad/nn/shape_util.hpp>

namespace tapegrad::nn {

namespace {

const std::string kOptimizerPrefix = "optimizer/";
// The single generator of save_checkpoint(..., generator): its state text.
const std::string kGeneratorEntry = "generator/state";
// Run checkpoints (save_run): generators, and the run's own entries.
const std::string kGeneratorPrefix = "generator/", kModelGenerators = "generator/model/",
                  kRunGenerators = "generator/run/", kRunPrefix = "run/", kSeriesPrefix = "run/series/",
                  kOptionPrefix = "run/option/";
constexpr std::int64_t kRunFormat = 1;

using FileMap = std::map<std::string, data::NpyArray>;

template <class T>
const char* dtype_name() {
    return std::is_same_v<T, float> ? "float32" : "float64";
}

std::string ranks(std::size_t n) { return std::to_string(n) + (n == 1 ? " rank" : " ranks"); }

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

template <class T>
data::NpyArray to_npy(const std::string& name, const Array<T>& a) {
    return data::NpyArray::from_vector(name, std::vector<std::size_t>(a.shape().begin(), a.shape().end()),
                                       std::vector<T>(a.begin(), a.end()));
}

data::NpyArray text_npy(const std::string& name, const std::string& text) {
    return data::NpyArray::from_vector(name, {text.size()}, std::vector<std::uint8_t>(text.begin(), text.end()));
}

data::NpyArray generator_npy(const std::string& name, const Generator& g) { return text_npy(name, g.state()); }

data::NpyArray count_npy(const std::string& name, std::size_t n) {
    return data::NpyArray::from_int64(name, {}, {static_cast<std::int64_t>(n)});
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

// Removes and returns entry `name`; ValueError naming it if absent.
data::NpyArray take(const std::string& path, FileMap& file, const std::string& name) {
    auto it = file.find(name);
    if (it == file.end()) throw ValueError("load_checkpoint: '" + path + "' has no '" + name + "'");
    data::NpyArray a = std::move(it->second);
    file.erase(it);
    return a;
}

std::string text_of(const std::string& path, const data::NpyArray& a) {
    if (a.descr != data::detail::npy_descr<std::uint8_t>() || a.shape.size() != 1)
        throw DtypeError("load_checkpoint: '" + path + "': '" + a.name + "' is stored as " + a.descr + " of shape " +
                         shape_string(a.shape) + ", expected a vector of bytes (|u1)");
    const auto bytes = a.to_vector<std::uint8_t>();
    return std::string(bytes.begin(), bytes.end());
}

Generator parse_generator(const std::string& path, const data::NpyArray& a) {
    const std::string text = text_of(path, a);
    Generator g;
    try {
        g.set_state(text);
    } catch (const ValueError& e) {
        throw ValueError("load_checkpoint: '" + path + "': '" + a.name + "': " + e.what());
    }
    return g;
}

std::vector<std::int64_t> int64s(const std::string& path, const data::NpyArray& a, std::size_t rank) {
    if (a.descr != data::detail::npy_descr<std::int64_t>() || a.shape.size() != rank)
        throw ValueError("load_checkpoint: '" + path + "': '" + a.name + "' should be a " +
                         (rank ? "vector" : "scalar") + " of int64, is " + a.descr + " of shape " +
                         shape_string(a.shape));
    auto v = a.to_vector<std::int64_t>();
    for (auto x : v)
        if (x < 0) throw ValueError("load_checkpoint: '" + path + "': '" + a.name + "' holds " + std::to_string(x));
    return v;
}
std::size_t count(const std::string& path, FileMap& file, const std::string& name) {
    return static_cast<std::size_t>(int64s(path, take(path, file, name), 0)[0]);
}

template <class T>
std::vector<data::NpyArray> model_arrays(const ModuleBase<T>& module, const Optimizer<T>* optimizer) {
    std::vector<data::NpyArray> arrays;
    for (const auto& [name, p] : module.named_parameters()) arrays.push_back(to_npy(name, p.value()));
    if (optimizer)
        for (const auto& [name, a] : optimizer->state()) arrays.push_back(to_npy(kOptimizerPrefix + name, a));
    return arrays;
}

// Parameters and optimiser state checked against the model, ready to commit.
// Entries of run checkpoints (generators, run/...) are left to the caller.
template <class T>
struct StagedModel {
    std::vector<BasicTensor<T>> params;
    std::vector<std::vector<T>> values;
    StateDict<T> state;

    StagedModel(const std::string& path, FileMap& file, const ModuleBase<T>& module, bool with_optimizer) {
        // 1. Every parameter present with the right dtype and shape.
        for (const auto& [name, p] : module.named_parameters()) {
            auto it = file.find(name);
            if (it == file.end())
                throw ValueError("load_checkpoint: '" + path + "': parameter '" + name + "' is missing from the file");
            values.push_back(checked_values<T>(path, "parameter '" + name + "'", it->second, p.shape()));
            params.push_back(p);
            file.erase(it);
        }
        // 2. Nothing else but optimiser state and run entries.
        for (const auto& [name, a] : file) {
            if (starts_with(name, kGeneratorPrefix) || starts_with(name, kRunPrefix)) continue;
            if (!starts_with(name, kOptimizerPrefix))
                throw ValueError("load_checkpoint: '" + path + "': the file has parameter '" + name +
                                 "' which the model does not have");
            if (!with_optimizer) continue;
            auto v = checked_values<T>(path, "optimizer entry '" + name + "'", a, a.shape);
            Array<T> arr = Array<T>::from_shape(a.shape);
            std::copy(v.begin(), v.end(), arr.begin());
            state.emplace_back(name.substr(kOptimizerPrefix.size()), std::move(arr));
        }
        if (with_optimizer && state.empty()) throw ValueError("load_checkpoint: '" + path + "' has no optimizer state");
    }

    // The optimiser first: its load_state validates fully and may still refuse.
    void commit(Optimizer<T>* optimizer) {
        if (optimizer) optimizer->load_state(state);
        NoGradGuard no_grad;
        for (std::size_t i = 0; i < params.size(); ++i)
            params[i].modify([&](auto& v) { std::copy(values[i].begin(), values[i].end(), v.begin()); });
    }
};

FileMap read_file(const std::string& path) {
    FileMap file;
    for (auto& a : data::load_npz(path)) file.emplace(a.name, std::move(a));
    return file;
}

template <class T>
void save(const std::string& path, const ModuleBase<T>& module, const Optimizer<T>* optimizer,
          const Generator* generator) {
    auto arrays = model_arrays(module, optimizer);
    if (generator) arrays.push_back(generator_npy(kGeneratorEntry, *generator));
    data::save_npz(path, arrays);
}

template <class T>
void load(const std::string& path, ModuleBase<T>& module, Optimizer<T>* optimizer, Generator* generator) {
    FileMap file = read_file(path);
    Generator restored;
    if (generator) {
        if (!file.count(kGeneratorEntry))
            throw ValueError("load_checkpoint: '" + path + "' has no generator state ('" + kGeneratorEntry + "')");
        restored = parse_generator(path, file.at(kGeneratorEntry));
    }
    StagedModel<T> staged(path, file, module, optimizer != nullptr);
    staged.commit(optimizer);
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

template <class T>
void RunState<T>::check() const {
    if (!module || !optimizer) throw ValueError("RunState: a run checkpoint needs the module and the optimizer");
    if (world_size == 0) throw ValueError("RunState: world_size must be at least 1");
    for (const auto& o : options)
        if (o.name.empty() || o.name.find('/') != std::string::npos)
            throw ValueError("RunState: option name '" + o.name + "' must be non-empty and without '/'");
}

template <class T>
void save_run(const std::string& path, const RunState<T>& run) {
    run.check();
    auto arrays = model_arrays(*run.module, run.optimizer);
    arrays.push_back(count_npy("run/format", static_cast<std::size_t>(kRunFormat)));
    arrays.push_back(count_npy("run/world_size", run.world_size));
    arrays.push_back(count_npy("run/epoch", run.epoch));
    arrays.push_back(count_npy("run/step", run.step));
    for (const auto& o : run.options) arrays.push_back(text_npy(kOptionPrefix + o.name, o.value));
    if (run.schedule) arrays.push_back(count_npy("run/schedule_epoch", run.schedule->epoch()));
    if (run.batches) {
        const auto& order = run.batches->order();
        arrays.push_back(data::NpyArray::from_int64("run/data_order", {order.size()},
                                                    std::vector<std::int64_t>(order.begin(), order.end())));
        arrays.push_back(count_npy("run/data_position", run.batches->position()));
    }
    for (const auto& [name, values] : run.series)
        arrays.push_back(data::NpyArray::from_doubles(kSeriesPrefix + name, {values.size()}, values));
    for (const auto& [name, g] : run.module->named_generators()) arrays.push_back(generator_npy(kModelGenerators + name, *g));
    for (const auto& [name, g] : run.generators) arrays.push_back(generator_npy(kRunGenerators + name, *g));
    data::save_npz(path, arrays);
}

template <class T>
void load_run(const std::string& path, RunState<T>& run) {
    run.check();
    FileMap file = read_file(path);
    // 1. Check and stage everything; nothing is changed until step 2.
    if (!file.count("run/format"))
        throw ValueError("load_run: '" + path + "' is not a run checkpoint (no 'run/format'); a model checkpoint "
                         "loads with load_checkpoint");
    const std::size_t format = count(path, file, "run/format");
    if (format != static_cast<std::size_t>(kRunFormat))
        throw ValueError("load_run: '" + path + "' has run format " + std::to_string(format) +
                         "; this tapegrad reads format " + std::to_string(kRunFormat));
    const std::size_t world_size = count(path, file, "run/world_size");
    if (world_size != run.world_size)
        throw ValueError("load_run: '" + path + "' was written by a run on " + ranks(world_size) +
                         "; this run has " + ranks(run.world_size) + ": resume it with the same number of ranks (the data slices and every rank's generators "
                         "depend on it)");
    // Before anything else: a run resumed with other options is not the same run.
    for (const auto& o : run.options) {
        const std::string entry = kOptionPrefix + o.name;
        const std::string why = o.why.empty() ? "" : " (" + o.why + ")";
        if (!file.count(entry))
            throw ValueError("load_run: '" + path + "' does not record the run's option '" + o.name +
                             "' (saved before run checkpoints recorded their options?), so resuming cannot be "
                             "checked to continue the same run; start the run afresh");
        const std::string saved = text_of(path, take(path, file, entry));
        if (saved != o.value)
            throw ValueError("load_run: '" + path + "' was written by a run with " + o.name + " = " + saved +
                             "; this run has " + o.name + " = " + o.value +
                             ": resume a run with the options it started with" + why);
    }
    const std::size_t epoch = count(path, file, "run/epoch"), step = count(path, file, "run/step");
    const std::size_t schedule_epoch = run.schedule ? count(path, file, "run/schedule_epoch") : 0;
    std::vector<std::size_t> order;
    std::size_t position = 0;
    if (run.batches) {
        for (auto row : int64s(path, take(path, file, "run/data_order"), 1)) order.push_back(static_cast<std::size_t>(row));
        position = count(path, file, "run/data_position");
    }
    std::vector<std::pair<std::string, std::vector<double>>> series;
    std::vector<std::pair<Generator*, Generator>> generators;
    auto stage_generator = [&](const std::string& entry, Generator* target) {
        generators.emplace_back(target, parse_generator(path, take(path, file, entry)));
    };
    for (const auto& [name, g] : run.module->named_generators()) stage_generator(kModelGenerators + name, g);
    for (const auto& [name, g] : run.generators) stage_generator(kRunGenerators + name, g);
    for (auto it = file.begin(); it != file.end();) {
        const std::string& name = it->first;
        if (starts_with(name, kSeriesPrefix)) {
            if (it->second.descr != "<f8" || it->second.shape.size() != 1)
                throw ValueError("load_run: '" + path + "': '" + name + "' should be a float64 vector");
            series.emplace_back(name.substr(kSeriesPrefix.size()), it->second.to_vector<double>());
            it = file.erase(it);
        } else if (starts_with(name, kGeneratorPrefix) || starts_with(name, kRunPrefix)) {
            throw ValueError("load_run: '" + path + "' has '" + name + "', which this run does not have" +
                             (starts_with(name, kGeneratorPrefix) ? " (a different model or set of generators?)" : ""));
        } else {
            ++it;
        }
    }
    StagedModel<T> staged(path, file, *run.module, true);

    // 2. Commit. The data order and the optimiser state are checked once
    // more as they are restored: the iterator first (all-or-nothing), then
    // the optimiser, undoing the iterator if the optimiser refuses.
    std::vector<std::size_t> old_order;
    std::size_t old_position = 0;
    if (run.batches) {
        old_order = run.batches->order();
        old_position = run.batches->position();
        try {
            run.batches->restore(std::move(order), position);
        } catch (const ValueError& e) {  // another dataset, or another --limit
            throw ValueError("load_run: '" + path + "': " + e.what());
        }
    }
    try {
        staged.commit(run.optimizer);
    } catch (...) {
        if (run.batches) run.batches->restore(std::move(old_order), old_position);
        throw;
    }
    for (auto& [target, g] : generators) *target = g;
    if (run.schedule) run.schedule->set_epoch(schedule_epoch);
    run.epoch = epoch;
    run.step = step;
    run.series = std::move(series);
}

#define TAPEGRAD_INSTANTIATE(T)                                                                                 \
    template void save_checkpoint(const std::string&, const ModuleBase<T>&);                                   \
    template void save_checkpoint(const std::string&, const ModuleBase<T>&, const Optimizer<T>&);              \
    template void save_checkpoint(const std::string&, const ModuleBase<T>&, const Generator&);                 \
    template void save_checkpoint(const std::string&, const ModuleBase<T>&, const Optimizer<T>&, const Generator&); \
    template void load_checkpoint(const std::string&, ModuleBase<T>&);                                         \
    template void load_checkpoint(const std::string&, ModuleBase<T>&, Optimizer<T>&);                          \
    template void load_checkpoint(const std::string&, ModuleBase<T>&, Generator&);                             \
    template void load_checkpoint(const std::string&, ModuleBase<T>&, Optimizer<T>&, Generator&);              \
    template struct RunState<T>;                                                                               \
    template void save_run(const std::string&, const RunState<T>&);                                           \
    template void load_run(const std::string&, RunState<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad::nn
