// Checkpoints: a module's parameters, and optionally an optimiser's state,
// in one numpy .npz file (np.load(path)["layers.0.weight"] works). Saving is
// atomic: the file is written beside the target, fsynced and renamed over it,
// so a crash or a kill mid-save leaves the previous file intact.
//
// Layout: one array per parameter under its dotted name; optimiser state
// under "optimizer/<entry>" (see Optimizer::state()); a generator's state
// (Generator::state(), text) as bytes under "generator/state".
// Files saved before optimisers counted steps per parameter (no
// "optimizer/step.<i>") still load: see Optimizer::load_state.
//
// Loading checks everything before changing anything:
//   - a parameter missing from the file, or an entry the model does not have,
//     is a ValueError naming it;
//   - a shape mismatch is a ShapeError naming the parameter and both shapes;
//   - a float32 file loaded into a float64 model (or the reverse) is a
//     DtypeError naming the parameter and both dtypes.
// Values are copied into the existing parameter tensors, so optimisers
// holding them keep working.
//
// Run checkpoints (save_run / load_run) hold everything a training run needs
// to continue as if it had never stopped, bit for bit:
//   <parameter names>            the parameters
//   optimizer/<entry>            the optimiser: lr, step counts, moment buffers
//   run/epoch, run/step          epochs completed, optimiser steps in all (int64)
//   run/schedule_epoch           the learning-rate schedule's position
//   run/data_order               this epoch's shuffled row order (int64 [N])
//   run/data_position            rows of it already trained on
//   generator/model/<name>       each generator of the model (Dropout, RReLU),
//                                by module path: "generator/model/2.generator"
//   generator/run/<name>         the run's own generators (initialisation and
//                                shuffling, the thread's default generator...)
//   run/series/<name>            float64 histories the run keeps (loss per epoch)
//   run/option/<name>            the options that define the run, as text
//                                (RunState::options: batch size, learning
//                                rate...); load_run refuses other values
//   run/format, run/world_size   layout version (1) and the number of ranks
//                                that wrote it (RunState::world_size; load_run
//                                refuses another). A data-parallel run stores
//                                what differs per rank as run generators and
//                                series named "rank<r>/..." (training::Run:
//                                each rank's Dropout generators); the data
//                                order is one permutation shared by all.
// The model-only forms of load_checkpoint read a run checkpoint too (they
// ignore the run's entries).
#pragma once

#include <string>

#include <utility>
#include <vector>

#include <tapegrad/nn/data/dataset.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/nn/optim.hpp>
#include <tapegrad/nn/schedule.hpp>

namespace tapegrad::nn {

template <class T> void save_checkpoint(const std::string& path, const ModuleBase<T>& module);
template <class T>
void save_checkpoint(const std::string& path, const ModuleBase<T>& module, const Optimizer<T>& optimizer);
template <class T>
void save_checkpoint(const std::string& path, const ModuleBase<T>& module, const Generator& generator);
template <class T>
void save_checkpoint(const std::string& path, const ModuleBase<T>& module, const Optimizer<T>& optimizer,
                     const Generator& generator);

// Optimiser and generator entries in the file are ignored by the forms that
// do not take them; the forms that do require them (ValueError if absent).
// The generator is restored only if everything else loads.
template <class T> void load_checkpoint(const std::string& path, ModuleBase<T>& module);
template <class T> void load_checkpoint(const std::string& path, ModuleBase<T>& module, Optimizer<T>& optimizer);
template <class T> void load_checkpoint(const std::string& path, ModuleBase<T>& module, Generator& generator);
template <class T>
void load_checkpoint(const std::string& path, ModuleBase<T>& module, Optimizer<T>& optimizer, Generator& generator);

// What a run checkpoint saves and restores. The module and optimiser are
// required; the schedule and the batch iterator are saved when present.
// load_run fills epoch, step and series from the file and restores the rest
// in place, all or nothing (ValueError naming a missing or unexpected entry,
// ShapeError/DtypeError as for load_checkpoint).
// An option that defines a run: resuming it with another value would not
// continue the same run. `why`, if given, ends the refusal (e.g. what depends
// on it).
struct RunOption {
    std::string name, value, why;
};

template <class T>
struct RunState {
    ModuleBase<T>* module = nullptr;
    Optimizer<T>* optimizer = nullptr;
    Schedule* schedule = nullptr;
    data::BatchIterator* batches = nullptr;
    // Generators outside the model, by name; the model's own
    // (named_generators()) are always included.
    std::vector<std::pair<std::string, Generator*>> generators;
    std::size_t epoch = 0;  // epochs completed
    std::size_t step = 0;   // optimiser steps in all
    std::vector<std::pair<std::string, std::vector<double>>> series;
    // Processes of a data-parallel run (distributed::Session::size()). Saved;
    // load_run refuses a file written by another number, because the data
    // slices and the ranks' generators depend on it.
    std::size_t world_size = 1;
    // Saved as text; load_run compares each with the file's before changing
    // anything and refuses a differing value (ValueError naming the option
    // and both values) or a file that does not record it (one saved before
    // runs recorded their options cannot be checked, so it is refused too).
    // The file may not hold options the run does not list.
    std::vector<RunOption> options;

    void check() const;
};

template <class T> void save_run(const std::string& path, const RunState<T>& run);
template <class T> void load_run(const std::string& path, RunState<T>& run);

}  // namespace tapegrad::nn
