#include <tapegrad/core/memory.hpp>

#include <cstdint>
#include <cstdlib>
#include <new>
#include <unordered_map>
#include <vector>

#include <tapegrad/core/allocator.hpp>

// Under AddressSanitizer every buffer goes straight back to malloc, so a
// use after free is still caught.
#if defined(__SANITIZE_ADDRESS__)
#define TAPEGRAD_BUFFER_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TAPEGRAD_BUFFER_CACHE 0
#endif
#endif
#ifndef TAPEGRAD_BUFFER_CACHE
#define TAPEGRAD_BUFFER_CACHE 1
#endif

namespace tapegrad {
namespace {

constexpr std::size_t kAlignment = 64;
constexpr std::size_t kSmall = 4096;          // sizes up to this are rounded to 64 bytes
constexpr std::size_t kMaxPerSize = 256;      // buffers kept of one size

void* aligned_malloc(std::size_t bytes) {
    void* raw = std::malloc(bytes + kAlignment);
    if (!raw) throw std::bad_alloc();
    // malloc's 16-byte alignment leaves at least 16 bytes before the aligned
    // address: room to remember the raw pointer.
    auto aligned = (reinterpret_cast<std::uintptr_t>(raw) + kAlignment) & ~std::uintptr_t(kAlignment - 1);
    reinterpret_cast<void**>(aligned)[-1] = raw;
    return reinterpret_cast<void*>(aligned);
}

void aligned_free(void* p) noexcept { std::free(reinterpret_cast<void**>(p)[-1]); }

// The size a request is served with: small ones share 64-byte classes.
std::size_t size_class(std::size_t bytes) {
    return bytes <= kSmall ? (bytes + kAlignment - 1) / kAlignment * kAlignment : bytes;
}

struct Cache {
    std::vector<void*> small[kSmall / kAlignment + 1];
    std::unordered_map<std::size_t, std::vector<void*>> large;
    std::size_t bytes = 0;

    std::vector<void*>& list(std::size_t cls) { return cls <= kSmall ? small[cls / kAlignment] : large[cls]; }
    void clear() noexcept {
        for (auto& l : small) {
            for (void* p : l) aligned_free(p);
            l.clear();
        }
        for (auto& [size, l] : large)
            for (void* p : l) aligned_free(p);
        large.clear();
        bytes = 0;
    }
    ~Cache() { clear(); }
};

// A plain pointer, still safe to test after the thread's thread-local
// objects are destroyed (tensors in static storage die later).
thread_local Cache* t_cache = nullptr;
thread_local bool t_cache_dead = false;
struct CacheOwner {
    ~CacheOwner() {
        delete t_cache;
        t_cache = nullptr;
        t_cache_dead = true;
    }
};
thread_local CacheOwner t_cache_owner;

Cache* cache() {
    if (!TAPEGRAD_BUFFER_CACHE || t_cache_dead) return nullptr;
    if (!t_cache) {
        (void)&t_cache_owner;  // constructs the owner, which frees the cache at thread exit
        t_cache = new Cache();
    }
    return t_cache;
}

}  // namespace

namespace detail {

void* buffer_allocate(std::size_t bytes) {
    const std::size_t cls = size_class(bytes);
    if (Cache* c = cache()) {
        auto& l = c->list(cls);
        if (!l.empty()) {
            void* p = l.back();
            l.pop_back();
            c->bytes -= cls;
            return p;
        }
    }
    return aligned_malloc(cls);
}

void buffer_release(void* p, std::size_t bytes) noexcept {
    if (!p) return;
    const std::size_t cls = size_class(bytes);
    Cache* c = cache();
    if (c && c->bytes + cls <= max_cached_bytes) {
        try {
            auto& l = c->list(cls);
            if (l.size() < kMaxPerSize) {
                l.push_back(p);
                c->bytes += cls;
                return;
            }
        } catch (...) {  // no memory for the list itself: just free
        }
    }
    aligned_free(p);
}

}  // namespace detail

std::size_t cached_bytes() noexcept { return t_cache ? t_cache->bytes : 0; }

void release_cached_memory() noexcept {
    if (t_cache) t_cache->clear();
}

}  // namespace tapegrad
