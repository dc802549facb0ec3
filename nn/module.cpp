#include <tapegrad/nn/module.hpp>

#include <algorithm>
#include <ostream>
#include <sstream>

namespace tapegrad::nn {

namespace {
void check_name(const std::string& owner, const std::string& what, const std::string& name) {
    // A dot would make the dotted names ambiguous; '/' is reserved for
    // non-parameter entries of checkpoints.
    if (name.empty() || name.find_first_of("./") != std::string::npos)
        throw ValueError(owner + ": " + what + " name '" + name + "' must be non-empty and contain no '.' or '/'");
}

std::string count_note(std::size_t n) {
    return n ? "  # " + std::to_string(n) + (n == 1 ? " parameter" : " parameters") : "";
}
}  // namespace

template <class T>
void ModuleBase<T>::register_parameter(const std::string& name, BasicTensor<T>& slot, BasicTensor<T> init) {
    check_name(type_name_, "parameter", name);
    for (const auto& p : params_)
        if (p.first == name) throw ValueError(type_name_ + ": parameter '" + name + "' registered twice");
    slot = std::move(init);
    slot.requires_grad_(true);
    params_.emplace_back(name, &slot);
}

template <class T>
void ModuleBase<T>::register_generator(const std::string& name, Generator& gen) {
    check_name(type_name_, "generator", name);
    for (const auto& g : generators_)
        if (g.first == name) throw ValueError(type_name_ + ": generator '" + name + "' registered twice");
    generators_.emplace_back(name, &gen);
}

template <class T>
void ModuleBase<T>::collect_generators(const std::string& prefix,
                                       std::vector<std::pair<std::string, Generator*>>& out) const {
    for (const auto& g : generators_)  // a module used twice lists its generator once
        if (std::none_of(out.begin(), out.end(), [&](const auto& o) { return o.second == g.second; }))
            out.emplace_back(prefix + g.first, g.second);
    for (const auto& c : children_) c.second->collect_generators(prefix + c.first + ".", out);
}

template <class T>
std::vector<std::pair<std::string, Generator*>> ModuleBase<T>::named_generators() const {
    std::vector<std::pair<std::string, Generator*>> out;
    collect_generators("", out);
    return out;
}

template <class T>
void ModuleBase<T>::add_child(const std::string& name, std::shared_ptr<ModuleBase> child) {
    check_name(type_name_, "submodule", name);
    if (!child) throw ValueError(type_name_ + ": submodule '" + name + "' is null");
    for (const auto& c : children_)
        if (c.first == name) throw ValueError(type_name_ + ": submodule '" + name + "' registered twice");
    child->train(training_);
    children_.emplace_back(name, std::move(child));
}

template <class T>
void ModuleBase<T>::collect(const std::string& prefix, std::vector<NamedTensor<T>>& out) const {
    for (const auto& p : params_) out.emplace_back(prefix + p.first, *p.second);
    for (const auto& c : children_) c.second->collect(prefix + c.first + ".", out);
}

template <class T>
std::vector<NamedTensor<T>> ModuleBase<T>::named_parameters() const {
    std::vector<NamedTensor<T>> all, out;
    collect("", all);
    // A module used in two places (tied weights, a block applied twice)
    // lists its parameters once, under the first name, as PyTorch does: an
    // optimiser or clip_grad_norm_ must not treat them twice.
    for (auto& p : all)
        if (std::none_of(out.begin(), out.end(), [&](const auto& q) { return q.second.same(p.second); }))
            out.push_back(std::move(p));
    return out;
}

template <class T>
std::vector<BasicTensor<T>> ModuleBase<T>::parameters() const {
    std::vector<BasicTensor<T>> out;
    for (auto& p : named_parameters()) out.push_back(std::move(p.second));
    return out;
}

template <class T>
std::size_t ModuleBase<T>::num_parameters() const {
    std::size_t n = 0;
    for (const auto& p : named_parameters()) n += p.second.size();
    return n;
}

template <class T>
BasicTensor<T>* ModuleBase<T>::find_parameter(const std::string& name) {
    for (auto& p : params_)
        if (p.first == name) return p.second;
    auto dot = name.find('.');
    if (dot != std::string::npos)
        for (auto& c : children_)
            if (c.first == name.substr(0, dot)) return c.second->find_parameter(name.substr(dot + 1));
    return nullptr;
}

template <class T>
BasicTensor<T>& ModuleBase<T>::parameter(const std::string& name) {
    if (auto* p = find_parameter(name)) return *p;
    throw ValueError(type_name_ + ": no parameter named '" + name + "'");
}

template <class T>
void ModuleBase<T>::zero_grad() {
    for (auto& p : named_parameters()) p.second.zero_grad();
}

template <class T>
void ModuleBase<T>::train(bool on) {
    training_ = on;
    for (auto& c : children_) c.second->train(on);
}

template <class T>
void ModuleBase<T>::print(std::ostream& os, const std::string& name, int indent) const {
    const std::string pad(static_cast<std::size_t>(indent) * 2, ' ');
    os << pad << (name.empty() ? "" : "(" + name + "): ") << type_name_ << "(" << extra_repr();
    if (children_.empty()) {
        os << ")" << count_note(num_parameters()) << "\n";
        return;
    }
    os << "\n";
    for (const auto& c : children_) c.second->print(os, c.first, indent + 1);
    os << pad << ")" << count_note(num_parameters()) << "\n";
}

template <class T>
std::string ModuleBase<T>::str() const {
    std::ostringstream os;
    print(os, "", 0);
    os << "Total parameters: " << num_parameters() << (training_ ? " (training mode)" : " (evaluation mode)");
    return os.str();
}

template <class T>
std::ostream& operator<<(std::ostream& os, const ModuleBase<T>& m) {
    return os << m.str();
}

template class ModuleBase<float>;
template class ModuleBase<double>;
template std::ostream& operator<<(std::ostream&, const ModuleBase<float>&);
template std::ostream& operator<<(std::ostream&, const ModuleBase<double>&);

}  // namespace tapegrad::nn

namespace tapegrad::detail {
void replayed_in_eval_mode(const char* module) {
    throw GraphError(std::string("compiled step: ") + module +
                     " was captured in training mode and is in evaluation mode now; a program replays the mode "
                     "it was captured in: capture another program after eval() (for evaluation, running the "
                     "forward eagerly is enough)");
}
}  // namespace tapegrad::detail
