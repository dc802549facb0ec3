// Checkpoints: a module's parameters, and optionally an optimiser's state,
// in one numpy .npz file (np.load(path)["layers.0.weight"] works). Saving is
// atomic: the file is written beside the target and renamed over it.
//
// Layout: one array per parameter under its dotted name; optimiser state
// under "optimizer/<entry>" (see Optimizer::state()); a generator's state
// (Generator::state(), text) as bytes under "generator/state", so a resumed
// run draws the same shuffles, dropout masks and noise as an uninterrupted one.
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
#pragma once

#include <string>

#include <tapegrad/nn/module.hpp>
#include <tapegrad/nn/optim.hpp>

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

}  // namespace tapegrad::nn
