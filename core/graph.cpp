// Graph lifetime (non-recursive release), tape numbering, the thread-local
// modes, and small helpers shared by every op.
#include <algorithm>
#include <cmath>
#include <sstream>

#include <tapegrad/core/node.hpp>
#include <tapegrad/core/numel.hpp>
#include <tapegrad/core/op.hpp>

namespace tapegrad {

namespace {
thread_local bool t_grad_enabled = true;
thread_local bool t_anomaly_enabled = false;
std::atomic<std::uint64_t> g_tape_position{0};
}  // namespace

bool grad_enabled() noexcept { return t_grad_enabled; }
void set_grad_enabled(bool enabled) noexcept { t_grad_enabled = enabled; }
bool anomaly_enabled() noexcept { return t_anomaly_enabled; }
void set_anomaly_enabled(bool enabled) noexcept { t_anomaly_enabled = enabled; }

namespace detail {

std::uint64_t next_tape_position() noexcept {
    return g_tape_position.fetch_add(1, std::memory_order_relaxed) + 1;
}

// Nodes whose last owner went away wait on a work list to be destroyed one
// at a time, so freeing a chain of a million nodes never recurses: a node's
// destructor gives up its inputs, which are pushed onto the list being
// drained instead of being destroyed inside it.
//
// The list being drained is found through a plain thread-local pointer
// (trivially destructible, so still usable while static objects are
// destroyed at program exit, after the thread's other thread-locals). The
// list itself is a thread-local spare kept for its capacity; once that spare
// is gone (thread or program exit), a list on the stack takes its place.
// Either way release never falls back to recursion.
template <class T>
struct ReleaseList {
    using List = std::vector<std::shared_ptr<Node<T>>>;
    static thread_local List* draining;  // the list being drained, if any
    static thread_local List* spare;     // kept between releases (no allocation per release)
    static thread_local bool spare_gone;
    struct SpareOwner {
        ~SpareOwner() {
            delete spare;
            spare = nullptr;
            spare_gone = true;
        }
    };
    // A function-local thread_local is constructed (and its destructor
    // registered) when control first passes here; a thread_local static
    // member was not reliably, and each thread's list leaked.
    static List* take_spare() {
        if (spare_gone) return nullptr;
        if (!spare) {
            static thread_local SpareOwner owner;
            (void)owner;
            spare = new List();
        }
        return spare;
    }
};
template <class T>
thread_local typename ReleaseList<T>::List* ReleaseList<T>::draining = nullptr;
template <class T>
thread_local typename ReleaseList<T>::List* ReleaseList<T>::spare = nullptr;
template <class T>
thread_local bool ReleaseList<T>::spare_gone = false;

template <class T>
void release_node(std::shared_ptr<Node<T>>&& node) noexcept {
    using R = ReleaseList<T>;
    if (!node) return;
    if (node.use_count() != 1) {  // someone else still owns it: just drop our reference
        node.reset();
        return;
    }
    if (R::draining) {  // inside a node's destructor: let the outer loop destroy it
        R::draining->push_back(std::move(node));
        return;
    }
    typename R::List on_stack;
    typename R::List* list = R::take_spare();
    if (!list) list = &on_stack;
    R::draining = list;
    list->push_back(std::move(node));
    while (!list->empty()) {
        auto next = std::move(list->back());
        list->pop_back();
        next.reset();  // its destructor may push more nodes onto the list
    }
    R::draining = nullptr;
}

namespace {
std::atomic<std::int64_t> g_live_nodes{0};
}

template <class T>
Node<T>::Node() {
    g_live_nodes.fetch_add(1, std::memory_order_relaxed);
}

template <class T>
Node<T>::~Node() {
    g_live_nodes.fetch_sub(1, std::memory_order_relaxed);
    for (auto& e : inputs) release_node(std::move(e.fn));
}

template <class T>
TensorImpl<T>::~TensorImpl() {
    release_node(std::move(grad_fn));
}

std::string shape_str(const Shape& shape) {
    std::ostringstream os;
    os << '[';
    for (std::size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
    os << ']';
    return os.str();
}

std::size_t checked_numel(const char* op, const Shape& shape) {
    std::size_t nonzero = 1;
    bool empty = false;
    for (std::size_t d : shape) {
        if (d == 0) {
            empty = true;
        } else if (nonzero > max_numel / d) {
            throw ValueError(std::string(op) + ": shape " + shape_str(shape) + " has too many elements (more than " +
                             std::to_string(max_numel) + ", counting non-zero dimensions only)");
        } else {
            nonzero *= d;
        }
    }
    return empty ? 0 : nonzero;
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
    Shape out(std::max(a.size(), b.size()));
    for (std::size_t i = 0; i < out.size(); ++i) {
        std::size_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
        std::size_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
        if (da != db && da != 1 && db != 1)
            throw ShapeError(std::string(op) + ": shapes " + shape_str(a) + " and " + shape_str(b) +
                             " cannot be broadcast together (dimension " + std::to_string(da) + " vs " +
                             std::to_string(db) + ")");
        out[out.size() - 1 - i] = da == 1 ? db : da;
    }
    checked_numel(op, out);  // [2^40, 1] and [1, 2^40] are valid shapes; their broadcast is not
    return out;
}

void check_broadcast_shapes(const char* op, const Shape& a, const Shape& b) { (void)broadcast_shapes(op, a, b); }

std::size_t normalize_axis(const char* op, std::ptrdiff_t axis, std::size_t ndim) {
    auto n = static_cast<std::ptrdiff_t>(ndim);
    if (axis < -n || axis >= n)
        throw ValueError(std::string(op) + ": axis " + std::to_string(axis) + " is out of range for a tensor with " +
                         std::to_string(ndim) + " dimension" + (ndim == 1 ? "" : "s"));
    return static_cast<std::size_t>(axis < 0 ? axis + n : axis);
}

template <class T>
void check_finite(const Array<T>& value, const std::string& what) {
    const T* p = value.data();
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (!std::isfinite(p[i])) {
            std::ostringstream os;
            os << "anomaly: " << what << " holds " << (std::isnan(p[i]) ? "NaN" : "Inf") << " at flat index "
               << i << " of shape " << shape_str(value.shape());
            throw AnomalyError(os.str());
        }
    }
}

#define TAPEGRAD_INSTANTIATE(T)                                                   \
    template void release_node<T>(std::shared_ptr<Node<T>> &&) noexcept;         \
    template struct Node<T>;                                                      \
    template struct TensorImpl<T>;                                                \
    template void check_finite<T>(const Array<T>&, const std::string&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace detail

std::int64_t live_graph_nodes() noexcept { return detail::g_live_nodes.load(std::memory_order_relaxed); }

}  // namespace tapegrad
