// The planned memory of a replayed program: see core/arena.hpp.
#include <tapegrad/core/arena.hpp>

#include <algorithm>
#include <limits>
#include <new>

#include <tapegrad/core/buffer_header.hpp>
#include <tapegrad/core/memory.hpp>

namespace tapegrad::detail {

namespace {
constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
constexpr std::uint64_t never = std::numeric_limits<std::uint64_t>::max();
// Plans that left in a row before the arena stops planning (a program whose
// requests change from replay to replay gains nothing from one).
constexpr std::size_t kGiveUp = 3;

// A buffer's bytes in the block: its header's line, then its requested
// bytes rounded to whole lines, so every buffer starts on a line.
std::size_t region(std::size_t bytes) {
    return kBufferAlignment + (bytes + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
}
}  // namespace

Arena::Plan::~Plan() {
    if (!block) return;
    unpoison(block, bytes);
    ::operator delete(block, std::align_val_t(kBufferAlignment));
}

Arena::~Arena() { retire(); }

// The plan goes now, or with the last buffer served from it.
void Arena::retire() noexcept {
    if (!plan_) return;
    if (plan_->references.fetch_sub(1, std::memory_order_acq_rel) == 1) delete plan_;
    plan_ = nullptr;
}

std::size_t Arena::bytes() const { return plan_ ? plan_->bytes : 0; }
std::size_t Arena::planned() const { return plan_ ? plan_->planned : 0; }

void Arena::begin() {
    mode_ = Mode::off;
    // Off with the buffer cache (the sanitizer builds' default), so that
    // AddressSanitizer's quarantine sees every buffer of a replay freed; off
    // in a replay inside another's (one arena per thread at a time); off for
    // good when plans keep being left.
    if (!buffer_cache_enabled() || thread_arena() || misses_in_a_row_ >= kGiveUp) return;
    if (stale_) {
        retire();
        recording_.clear();
        open_.clear();
        retiring_.clear();
        clock_ = 0;
        mode_ = Mode::recording;
    } else {
        mode_ = Mode::serving;
        missed_ = false;
    }
    next_ = 0;
    set_thread_arena(this);
}

void Arena::keep(const void* p) {
    if (mode_ != Mode::recording || !p) return;
    auto it = open_.find(p);
    if (it == open_.end()) return;
    recording_[it->second].released = clock_;  // alive to the end: after every other event
    open_.erase(it);
    retiring_.push_back(p);
}

void Arena::end() noexcept {
    if (mode_ == Mode::off) return;
    set_thread_arena(nullptr);
    if (mode_ == Mode::recording) {
        open_.clear();
        try {
            for (auto& r : recording_)
                if (r.released == clock_) r.released = clock_ + 1;  // kept: outlives every release
            make_plan(std::move(recording_));
            stale_ = false;
        } catch (const std::bad_alloc&) {  // no block: this replay's way, from the cache, next time too
            retire();
        }
        recording_ = {};
    } else if (missed_ || next_ != plan_->requests.size()) {
        ++misses_;
        ++misses_in_a_row_;
        stale_ = true;
        if (misses_in_a_row_ >= kGiveUp) retire();  // no more plans: its block goes (when no buffer holds it)
    } else {
        misses_in_a_row_ = 0;
    }
    if (mode_ == Mode::serving) retiring_.clear();  // those still held are the caller's, for the cache
    mode_ = Mode::off;
}

void* Arena::allocate(std::size_t bytes) {
    if (mode_ == Mode::recording) {
        void* p = cache_allocate(bytes);
        recording_.push_back({bytes, clock_++, never, none, {}, {}, nullptr});
        open_[p] = static_cast<std::uint32_t>(recording_.size() - 1);
        return p;
    }
    auto& requests = plan_->requests;
    const std::size_t k = next_++;
    if (!missed_ && k < requests.size() && requests[k].bytes == bytes) {
        Request& r = requests[k];
        if (r.offset == none) return cache_allocate(bytes);
        // Served only if no buffer lives in its bytes: neither its own of
        // the last replay (a .grad the caller kept) nor any other planned
        // there. Else this request alone takes the cache, and the plan goes
        // on: a kept gradient costs one buffer, not a new plan (and block).
        bool free = !r.live.on.load(std::memory_order_acquire);
        for (auto j : r.overlapping) free = free && !requests[j].live.on.load(std::memory_order_acquire);
        if (!free) {
            ++held_;
            return cache_allocate(bytes);
        }
        void* p = plan_->block + r.offset + kBufferAlignment;
        unpoison(static_cast<char*>(p) - sizeof(BufferHeader), sizeof(BufferHeader) + bytes);
        buffer_header(p) = BufferHeader{kArenaOwner, &r};
        r.live.on.store(true, std::memory_order_relaxed);
        plan_->references.fetch_add(1, std::memory_order_relaxed);
        return p;
    }
    // Another size at this position: the requests are not the recorded
    // ones; the rest of the replay takes the cache and the next one plans.
    missed_ = true;
    return cache_allocate(bytes);
}

bool Arena::note_release(void* p) noexcept {
    if (mode_ == Mode::serving) {
        // The recorded replay's outputs and gradients, released by the
        // first replay served: their bytes are in the block now.
        auto it = std::find(retiring_.begin(), retiring_.end(), p);
        if (it == retiring_.end()) return false;
        retiring_.erase(it);
        return true;
    }
    if (mode_ != Mode::recording) return false;
    auto it = open_.find(p);
    if (it == open_.end()) return false;  // made before the replay (a gradient of the last one, say)
    recording_[it->second].released = clock_++;
    open_.erase(it);
    return true;
}

void Arena::release(void* p) noexcept {
    auto* r = static_cast<Request*>(buffer_header(p).raw);
    Plan* plan = r->plan;
    poison(p, r->bytes);
    r->live.on.store(false, std::memory_order_release);  // the buffer's last use happens before its reuse
    if (plan->references.fetch_sub(1, std::memory_order_acq_rel) == 1) delete plan;
}

// Offsets for the requests released within the recorded replay or kept to
// its end: largest first, each at the lowest offset where it shares no byte
// with a placed request alive at the same time (first fit; lifetimes are
// half-open [made, released) on the recording's clock).
void Arena::make_plan(std::vector<Request> requests) {
    auto plan = std::make_unique<Plan>();
    plan->requests = std::move(requests);
    auto& rs = plan->requests;
    std::vector<std::uint32_t> order;
    for (std::uint32_t i = 0; i < rs.size(); ++i) {
        rs[i].plan = plan.get();
        if (rs[i].released != never) order.push_back(i);
    }
    std::stable_sort(order.begin(), order.end(),
                     [&](std::uint32_t a, std::uint32_t b) { return region(rs[a].bytes) > region(rs[b].bytes); });
    auto together = [&](const Request& a, const Request& b) { return a.made < b.released && b.made < a.released; };
    std::vector<std::uint32_t> placed;
    std::vector<std::pair<std::size_t, std::size_t>> taken;  // [begin, end) of placed requests alive with this one
    std::size_t total = 0;
    for (auto i : order) {
        Request& r = rs[i];
        taken.clear();
        for (auto j : placed)
            if (together(r, rs[j])) taken.emplace_back(rs[j].offset, rs[j].offset + region(rs[j].bytes));
        std::sort(taken.begin(), taken.end());
        std::size_t offset = 0;
        for (const auto& [b, e] : taken) {
            if (offset + region(r.bytes) <= b) break;
            offset = std::max(offset, e);
        }
        r.offset = offset;
        total = std::max(total, offset + region(r.bytes));
        placed.push_back(i);
    }
    for (auto k : placed)
        for (auto j : placed) {
            Request& a = rs[k];
            const Request& b = rs[j];
            if (j != k && b.offset < a.offset + region(a.bytes) && a.offset < b.offset + region(b.bytes))
                a.overlapping.push_back(j);
        }
    if (total > 0) {
        plan->block = static_cast<char*>(::operator new(total, std::align_val_t(kBufferAlignment)));
        plan->bytes = total;
        poison(plan->block, total);
    }
    plan->planned = placed.size();
    retire();
    plan_ = plan.release();
}

}  // namespace tapegrad::detail
