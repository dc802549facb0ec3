// GradientAverager (distributed.hpp): bucketed all-reduce of gradients,
// started from grad-ready hooks during backward.
#include <tapegrad/nn/distributed/distributed.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include <tapegrad/core/op.hpp>

#include "comm.hpp"

namespace tapegrad::distributed {

template <class T>
struct GradientAverager<T>::State {
    struct Slot {
        BasicTensor<T> param;
        std::size_t bucket = 0, offset = 0, flag = 0;  // flag: element counting ranks that had a gradient
        bool ready = false;
    };
    struct Bucket {
        std::vector<T> data;  // the gradients, then one flag per slot
        std::vector<std::size_t> slots;
        std::size_t ready = 0;
        comm::Pending pending;
        bool started = false;
    };
    std::vector<Slot> slots;
    std::vector<Bucket> buckets;
    std::size_t next_start = 0;  // buckets start in index order on every rank (MPI needs the same order)
    double weight = 1;
    double waited = 0;
    std::size_t max_in_flight = 0;  // bytes: twice the bucket size
    bool overlap = false;  // more than one rank: there is something to average
    bool hooked = false;   // gradients arrive through grad-ready hooks during backward
    std::vector<HookHandle> hooks;

    void write(Slot& s, const BasicTensor<T>* g) {
        auto& b = buckets[s.bucket];
        T* out = b.data.data() + s.offset;
        const std::size_t n = s.param.value().size();
        if (g) {
            if (g->value().size() != n)
                throw ShapeError("GradientAverager: a gradient of " + std::to_string(g->value().size()) +
                                 " elements for a parameter of " + std::to_string(n));
            const T* in = g->value().data();
            const T w = static_cast<T>(weight);
            for (std::size_t i = 0; i < n; ++i) out[i] = w * in[i];
        } else {
            std::fill(out, out + n, T(0));
        }
        b.data[s.flag] = g ? T(1) : T(0);
        s.ready = true;
        ++b.ready;
    }

    // Bytes of the all-reduces still in flight (testing them, which is also
    // what moves them forward: MPI progresses only inside MPI calls).
    std::size_t bytes_in_flight() {
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < next_start; ++i)
            if (!buckets[i].pending.done()) bytes += buckets[i].data.size() * sizeof(T);
        return bytes;
    }

    // Starts the complete buckets in index order, keeping the bytes in
    // flight within `max_in_flight` (a larger bucket starts alone). With
    // OpenMPI 4.1 on 2 local ranks, two 4 MiB all-reduces in flight at once
    // took several times longer than one after the other (the 1024 MLP's
    // 8.4 MB in 4 buckets: 38-56 ms all at once, 5-12 ms as one bucket),
    // while the 784 MLP's 0.27 + 0.8 MB were not consistently faster in
    // turn (docs/distributed.md). `wait` (in finish()) waits for room instead of
    // returning.
    void start_ready_buckets(bool wait = false) {
        while (next_start < buckets.size() && buckets[next_start].ready == buckets[next_start].slots.size()) {
            const std::size_t flying = bytes_in_flight(), mine = buckets[next_start].data.size() * sizeof(T);
            if (flying > 0 && flying + mine > max_in_flight) {
                if (!wait) return;
                for (std::size_t i = 0; i < next_start; ++i)
                    if (buckets[i].pending.active()) {
                        buckets[i].pending.wait();  // the oldest
                        break;
                    }
                continue;
            }
            auto& b = buckets[next_start++];
            b.pending = comm::Pending::start_sum(b.data.data(), b.data.size());
            b.started = true;
        }
    }

    // Whether a backward has delivered gradients that finish() has not
    // collected: the other ranks then take part in (or wait for) this pass's
    // all-reduces.
    bool mid_pass() const {
        return std::any_of(slots.begin(), slots.end(), [](const Slot& s) { return s.ready; });
    }

    std::string pass_state() const {
        return std::to_string(next_start) + " of " + std::to_string(buckets.size()) +
               " buckets had started their all-reduce";
    }

    void on_ready(std::size_t index, const BasicTensor<T>& g) {
        auto& s = slots[index];
        // A rank cannot drop an unfinished pass and go on: the other ranks
        // wait for the rest of its all-reduces, or would pair them with this
        // pass's. So the job ends, naming this rank.
        if (s.ready)
            comm::abort_job(1, "GradientAverager: a parameter of shape " + detail::shape_str(s.param.shape()) +
                                   " got a gradient again before finish(): the previous backward did not finish "
                                   "(it threw?) or finish() was not called (" +
                                   pass_state() + "); the other ranks cannot go on");
        write(s, &g);
        start_ready_buckets();
    }
};

template <class T>
GradientAverager<T>::GradientAverager(std::vector<BasicTensor<T>> params, std::size_t bucket_bytes,
                                      bool during_backward)
    : s_(std::make_unique<State>()) {
    s_->weight = 1.0 / comm::size();
    s_->max_in_flight = 2 * bucket_bytes;
    // Every rank must build the same buckets, or the all-reduces pair up
    // buffers of different lengths (MPI_ERR_TRUNCATE) or different parameters.
    if (auto m = comm::first_different(params.size()); m.rank >= 0)
        throw ValueError("GradientAverager: rank " + std::to_string(m.rank) + " has " + std::to_string(m.theirs) +
                         " parameters, rank 0 " + std::to_string(m.roots) + "; every rank must pass the same list");
    std::vector<std::uint64_t> sizes;
    for (const auto& p : params) sizes.push_back(p.defined() ? p.value().size() : 0);
    const auto all = comm::all_gather(sizes);
    for (std::size_t k = sizes.size(); k < all.size(); ++k)
        if (all[k] != all[k % sizes.size()])
            throw ValueError("GradientAverager: parameter " + std::to_string(k % sizes.size()) + " has " +
                             std::to_string(all[k]) + " elements on rank " + std::to_string(k / sizes.size()) +
                             " but " + std::to_string(all[k % sizes.size()]) +
                             " on rank 0; every rank must pass the same list");
    // Reverse registration order: the order backward finishes the gradients
    // of a feed-forward model, so the first bucket fills first.
    std::size_t bytes = 0;
    for (auto it = params.rbegin(); it != params.rend(); ++it) {
        if (!it->defined() || !it->requires_grad())
            throw ValueError("GradientAverager: every parameter must be a defined tensor that requires grad");
        const std::size_t size = it->value().size() * sizeof(T);
        if (s_->buckets.empty() || (bytes > 0 && bytes + size > bucket_bytes)) {
            s_->buckets.emplace_back();
            bytes = 0;
        }
        bytes += size;
        auto& b = s_->buckets.back();
        typename State::Slot slot;
        slot.param = *it;
        slot.bucket = s_->buckets.size() - 1;
        slot.offset = b.data.size();
        b.data.resize(b.data.size() + it->value().size());
        b.slots.push_back(s_->slots.size());
        s_->slots.push_back(std::move(slot));
    }
    for (auto& b : s_->buckets) {  // the flags go after the gradients
        for (std::size_t k = 0; k < b.slots.size(); ++k) s_->slots[b.slots[k]].flag = b.data.size() + k;
        b.data.resize(b.data.size() + b.slots.size());
    }
    // One process has nothing to average: no hooks, finish() does nothing.
    s_->overlap = comm::size() > 1;
    s_->hooked = s_->overlap && during_backward;
    if (s_->hooked) {
        for (std::size_t i = 0; i < s_->slots.size(); ++i) {
            s_->hooks.push_back(s_->slots[i].param.register_grad_ready_hook(
                [state = s_.get(), i](const BasicTensor<T>& g) { state->on_ready(i, g); }));
        }
    }
}

template <class T>
GradientAverager<T>::~GradientAverager() {
    for (auto& h : s_->hooks) h.remove();  // they point into this averager
    if (!s_->overlap || !s_->mid_pass()) return;
    const std::string what = "a backward pass was left unfinished (" + s_->pass_state() + ")";
    if (std::uncaught_exceptions() > 0) {
        // An exception, most likely from backward, is on its way to a handler
        // that can name it (Session::abort). The all-reduces in flight still
        // write into the buckets, so they stay allocated; the next
        // communication, or the Session's end, ends the job.
        comm::mark_unfinished(what + " by an exception");
        s_.release();  // NOLINT: leaked on purpose, see above
        return;
    }
    comm::abort_job(1, "GradientAverager destroyed while " + what + "; the other ranks would wait for it forever");
}

template <class T>
void GradientAverager<T>::set_weight(double w) {
    s_->weight = w;
}

template <class T>
std::size_t GradientAverager<T>::bucket_count() const {
    return s_->buckets.size();
}

template <class T>
std::vector<std::size_t> GradientAverager<T>::bucket_bytes() const {
    std::vector<std::size_t> bytes;
    for (const auto& b : s_->buckets) bytes.push_back((b.data.size() - b.slots.size()) * sizeof(T));
    return bytes;
}

template <class T>
bool GradientAverager<T>::overlaps_backward() const {
    return s_->hooked;
}

template <class T>
double GradientAverager<T>::wait_seconds() const {
    return s_->waited;
}

template <class T>
void GradientAverager<T>::finish() {
    auto& s = *s_;
    if (!s.overlap) return;  // one process: the local gradient is the answer
    // Without hooks every gradient is read now. With them, parameters
    // backward did not reach on this rank count as zero here.
    for (auto& slot : s.slots) {
        if (slot.ready) continue;
        const auto g = s.hooked ? BasicTensor<T>() : slot.param.grad();
        s.write(slot, g.defined() ? &g : nullptr);
    }
    const auto t0 = std::chrono::steady_clock::now();
    s.start_ready_buckets(true);
    for (auto& b : s.buckets) b.pending.wait();
    s.waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    for (auto& slot : s.slots) {
        const auto& b = s.buckets[slot.bucket];
        const T* sum = b.data.data() + slot.offset;
        if (b.data[slot.flag] == T(0)) {
            slot.param.zero_grad();  // no rank had a gradient: the optimiser skips it
        } else {
            auto g = slot.param.grad();
            if (g.defined() && g.shape() == slot.param.shape()) {
                g.modify([&](Array<T>& v) { std::memcpy(v.data(), sum, v.size() * sizeof(T)); });
            } else {
                Array<T> v = Array<T>::from_shape(slot.param.shape());
                std::memcpy(v.data(), sum, v.size() * sizeof(T));
                slot.param.set_grad(BasicTensor<T>(std::move(v)));
            }
        }
        slot.ready = false;
    }
    for (auto& b : s.buckets) {
        b.ready = 0;
        b.started = false;
    }
    s.next_start = 0;
}

template class GradientAverager<float>;
template class GradientAverager<double>;

}  // namespace tapegrad::distributed
