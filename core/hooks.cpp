// Registering and removing tensor hooks. Where they run is core/backward.cpp
// (docs/engine.md, "Hooks").
#include <algorithm>

#include <tapegrad/core/node.hpp>
#include <tapegrad/core/op.hpp>

namespace tapegrad {

namespace detail {

namespace {
// Hooks objects alive, on any thread: while it is 0 a pass does no hook work.
std::atomic<std::int64_t> g_hook_lists{0};
}  // namespace

template <class T>
Hooks<T>::Hooks() {
    g_hook_lists.fetch_add(1, std::memory_order_relaxed);
}

template <class T>
Hooks<T>::~Hooks() {
    g_hook_lists.fetch_sub(1, std::memory_order_relaxed);
}

bool any_hooks() noexcept { return g_hook_lists.load(std::memory_order_relaxed) != 0; }

template struct Hooks<float>;
template struct Hooks<double>;

}  // namespace detail

void HookHandle::remove() noexcept {
    if (auto e = entry_.lock()) e->removed.store(true, std::memory_order_relaxed);
    entry_.reset();
}

bool HookHandle::active() const noexcept {
    auto e = entry_.lock();
    return e && !e->removed.load(std::memory_order_relaxed);
}

template <class T>
HookHandle BasicTensor<T>::add_hook(HookFn fn, bool ready) {
    auto& impl = checked();
    const char* what = ready ? "register_grad_ready_hook" : "register_hook";
    if (!impl.requires_grad)
        throw GraphError(std::string(what) + ": the tensor does not require grad, so no gradient flows into it");
    if (ready && impl.grad_fn)
        throw GraphError("register_grad_ready_hook: the tensor was produced by '" + std::string(impl.grad_fn->name) +
                         "', not a leaf; only a leaf's gradient is completed and kept (use register_hook to see a "
                         "non-leaf's gradient)");
    auto& hooks = impl.grad_fn ? impl.grad_fn->hooks : impl.hooks;
    if (!hooks) hooks = std::make_shared<detail::Hooks<T>>();
    auto& list = ready ? hooks->on_ready : hooks->on_grad;
    // Removed hooks are dropped here, on the registering thread (a pass only reads the lists).
    list.erase(std::remove_if(list.begin(), list.end(), [](const auto& e) { return e->removed.load(); }), list.end());
    auto entry = std::make_shared<typename detail::Hooks<T>::Entry>();
    entry->fn = std::move(fn);
    list.push_back(entry);
    return HookHandle(entry);
}

template HookHandle BasicTensor<float>::add_hook(HookFn, bool);
template HookHandle BasicTensor<double>::add_hook(HookFn, bool);

}  // namespace tapegrad
