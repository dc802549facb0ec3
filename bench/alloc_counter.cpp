// Replacement malloc family that counts (see alloc_counter.hpp). Linked into
// the benchmark executables only, never into the library.
//
// The replacements forward to glibc's allocator through its exported
// __libc_* entry points, and measure blocks with malloc_usable_size, so a
// free needs no bookkeeping of its own. Nothing here may allocate.
#include "alloc_counter.hpp"

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>

#include <malloc.h>

extern "C" {
void* __libc_malloc(std::size_t);
void __libc_free(void*);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void* __libc_valloc(std::size_t);
void* __libc_pvalloc(std::size_t);
}

namespace {

std::atomic<bool> g_on{false};
std::atomic<std::int64_t> g_allocs{0}, g_frees{0}, g_bytes{0}, g_live{0}, g_peak{0};

inline bool counting() { return g_on.load(std::memory_order_relaxed); }

void note_alloc(void* p) {
    if (!p || !counting()) return;
    const auto n = static_cast<std::int64_t>(malloc_usable_size(p));
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    g_bytes.fetch_add(n, std::memory_order_relaxed);
    const std::int64_t live = g_live.fetch_add(n, std::memory_order_relaxed) + n;
    std::int64_t peak = g_peak.load(std::memory_order_relaxed);
    while (live > peak && !g_peak.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
    }
}

void note_free(void* p) {
    if (!p || !counting()) return;
    g_frees.fetch_add(1, std::memory_order_relaxed);
    g_live.fetch_sub(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
}

bool valid_alignment(std::size_t a) { return a != 0 && (a & (a - 1)) == 0; }

}  // namespace

extern "C" {

void* malloc(std::size_t n) noexcept {
    void* p = __libc_malloc(n);
    note_alloc(p);
    return p;
}

void free(void* p) noexcept {
    note_free(p);
    __libc_free(p);
}

void* calloc(std::size_t count, std::size_t n) noexcept {
    void* p = __libc_calloc(count, n);
    note_alloc(p);
    return p;
}

void* realloc(void* old, std::size_t n) noexcept {
    if (!old) return malloc(n);
    if (n == 0) {
        free(old);
        return nullptr;
    }
    const bool on = counting();
    const auto before = on ? static_cast<std::int64_t>(malloc_usable_size(old)) : 0;
    void* p = __libc_realloc(old, n);
    if (p && on) {  // counted as a free of the old block and an allocation of the new
        g_frees.fetch_add(1, std::memory_order_relaxed);
        g_live.fetch_sub(before, std::memory_order_relaxed);
        note_alloc(p);
    }
    return p;
}

void* reallocarray(void* old, std::size_t count, std::size_t n) noexcept {
    std::size_t total;
    if (__builtin_mul_overflow(count, n, &total)) {
        errno = ENOMEM;
        return nullptr;
    }
    return realloc(old, total);
}

void* memalign(std::size_t alignment, std::size_t n) noexcept {
    void* p = __libc_memalign(alignment, n);
    note_alloc(p);
    return p;
}

void* aligned_alloc(std::size_t alignment, std::size_t n) noexcept {
    if (!valid_alignment(alignment)) {
        errno = EINVAL;
        return nullptr;
    }
    return memalign(alignment, n);
}

int posix_memalign(void** out, std::size_t alignment, std::size_t n) noexcept {
    if (!valid_alignment(alignment) || alignment % sizeof(void*) != 0) return EINVAL;
    void* p = __libc_memalign(alignment, n);
    if (!p) return ENOMEM;
    note_alloc(p);
    *out = p;
    return 0;
}

void* valloc(std::size_t n) noexcept {
    void* p = __libc_valloc(n);
    note_alloc(p);
    return p;
}

void* pvalloc(std::size_t n) noexcept {
    void* p = __libc_pvalloc(n);
    note_alloc(p);
    return p;
}

}  // extern "C"

namespace bench {

void alloc_counting(bool on) {
    if (on) {
        g_allocs = 0;
        g_frees = 0;
        g_bytes = 0;
        g_live = 0;
        g_peak = 0;
    }
    g_on.store(on, std::memory_order_seq_cst);
}

AllocStats alloc_stats() {
    AllocStats s;
    s.allocs = g_allocs.load();
    s.frees = g_frees.load();
    s.bytes = g_bytes.load();
    s.live = g_live.load();
    s.peak = g_peak.load();
    return s;
}

void alloc_reset_peak() { g_peak.store(g_live.load()); }

std::int64_t heap_in_use() {
    struct mallinfo2 m = mallinfo2();
    return static_cast<std::int64_t>(m.uordblks + m.hblkhd);
}

}  // namespace bench
