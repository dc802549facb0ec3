#include <tapegrad/core/memory.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <new>
#include <unordered_map>
#include <vector>

#include <tapegrad/core/allocator.hpp>
#include <tapegrad/core/arena.hpp>
#include <tapegrad/core/buffer_header.hpp>


namespace tapegrad {
namespace {

using detail::poison;
using detail::unpoison;
constexpr std::size_t kAlignment = detail::kBufferAlignment;
constexpr std::size_t kSmall = 4096;  // sizes up to this are rounded to 64 bytes

// Under AddressSanitizer the cache is off unless asked for: every buffer
// then goes straight back to malloc, and ASan's quarantine catches a use
// after free however late it comes. With the cache on, cached buffers are
// poisoned, so a use after free is caught until the buffer is handed out again.
#ifdef TAPEGRAD_ASAN
constexpr bool kCacheByDefault = false;
#else
constexpr bool kCacheByDefault = true;
#endif

bool read_cache_switch() {
    const char* env = std::getenv("TAPEGRAD_BUFFER_CACHE");
    if (!env || !*env) return kCacheByDefault;
    if (!std::strcmp(env, "0")) return false;
    if (!std::strcmp(env, "1")) return true;
    std::fprintf(stderr, "tapegrad: TAPEGRAD_BUFFER_CACHE must be 0 or 1, got '%s'; the buffer cache stays %s\n", env,
                 kCacheByDefault ? "on" : "off");
    return kCacheByDefault;
}

bool cache_enabled() {
    static const bool enabled = read_cache_switch();  // read once, on first use
    return enabled;
}

// Each buffer is preceded by its header (core/buffer_header.hpp): the
// pointer malloc returned, and the id of the thread cache that may keep it.
using Header = detail::BufferHeader;
constexpr std::size_t kSlack = sizeof(Header) + kAlignment - 1;  // header plus worst-case alignment gap

Header& header(void* p) { return detail::buffer_header(p); }

// The end of the malloc block behind a buffer of size class `cls`.
const char* block_end(void* p, std::size_t cls) { return static_cast<const char*>(header(p).raw) + cls + kSlack; }

void* aligned_malloc(std::size_t cls, std::uint64_t owner) {
    void* raw = std::malloc(cls + kSlack);
    if (!raw) throw std::bad_alloc();
    auto aligned = (reinterpret_cast<std::uintptr_t>(raw) + kSlack) & ~std::uintptr_t(kAlignment - 1);
    void* p = reinterpret_cast<void*>(aligned);
    header(p) = Header{owner, raw};
    return p;
}

void aligned_free(void* p) noexcept { std::free(header(p).raw); }

// The size a request is served with: small ones share 64-byte classes.
std::size_t size_class(std::size_t bytes) {
    return bytes <= kSmall ? (bytes + kAlignment - 1) / kAlignment * kAlignment : bytes;
}

struct Cache {
    std::uint64_t id;
    std::vector<void*> small[kSmall / kAlignment + 1];
    std::unordered_map<std::size_t, std::vector<void*>> large;
    std::size_t bytes = 0;

    explicit Cache(std::uint64_t id) : id(id) {}
    std::vector<void*>& list(std::size_t cls) { return cls <= kSmall ? small[cls / kAlignment] : large[cls]; }
    void clear() noexcept {
        for (std::size_t i = 0; i < std::size(small); ++i) {
            for (void* p : small[i]) free_cached(p, i * kAlignment);
            small[i].clear();
        }
        for (auto& [cls, l] : large)
            for (void* p : l) free_cached(p, cls);
        large.clear();
        bytes = 0;
    }
    static void free_cached(void* p, std::size_t cls) noexcept {
        unpoison(p, static_cast<std::size_t>(block_end(p, cls) - static_cast<char*>(p)));
        aligned_free(p);
    }
    ~Cache() { clear(); }
};

// Ids are never reused, so a buffer outliving its thread is never mistaken
// for one of a later thread's.
std::atomic<std::uint64_t> g_next_cache_id{1};

// A thread keeps two caches of the same kind: tensor buffers, and the small
// records of tensors and graphs (nodes, edge lists, tensor headers; see
// docs/engine.md). Kept apart so that cached_bytes() and the bound per size
// speak of buffers only, and a long graph's records never crowd them out.
struct Caches {
    Cache buffers{g_next_cache_id.fetch_add(1, std::memory_order_relaxed)};
    Cache records{g_next_cache_id.fetch_add(1, std::memory_order_relaxed)};
};

// A plain pointer, still safe to test after the thread's thread-local
// objects are destroyed (tensors in static storage die later).
thread_local Caches* t_caches = nullptr;
thread_local bool t_cache_dead = false;
struct CacheOwner {
    ~CacheOwner() {
        delete t_caches;
        t_caches = nullptr;
        t_cache_dead = true;
    }
};
thread_local CacheOwner t_cache_owner;

Caches* caches() {
    if (t_cache_dead || !cache_enabled()) return nullptr;
    if (!t_caches) {
        (void)&t_cache_owner;  // constructs the owner, which frees the caches at thread exit
        t_caches = new Caches();
    }
    return t_caches;
}

void* allocate_from(Cache* c, std::size_t bytes) {
    const std::size_t cls = size_class(bytes);
    void* p = nullptr;
    if (c) {
        auto& l = c->list(cls);
        if (!l.empty()) {
            p = l.back();
            l.pop_back();
            c->bytes -= cls;
        }
    }
    if (!p) p = aligned_malloc(cls, c ? c->id : 0);
    // Only the requested bytes are usable: an overrun into the size class's
    // rounding or the block's slack is an ASan report.
    unpoison(p, bytes);
    poison(static_cast<char*>(p) + bytes, static_cast<std::size_t>(block_end(p, cls) - static_cast<char*>(p)) - bytes);
    return p;
}

// Only the allocating thread keeps a block: one freed on another thread (a
// graph handed over, a producer's tensors) goes back to malloc, so one
// thread's allocations never pile up in another's cache.
void release_to(Cache* c, void* p, std::size_t bytes, std::size_t max_per_size) noexcept {
    if (!p) return;
    const std::size_t cls = size_class(bytes);
    if (c && header(p).owner == c->id && c->bytes + cls <= max_cached_bytes) {
        try {
            auto& l = c->list(cls);
            if (l.size() < max_per_size) {
                l.push_back(p);
                c->bytes += cls;
                poison(p, static_cast<std::size_t>(block_end(p, cls) - static_cast<char*>(p)));
                return;
            }
        } catch (...) {  // no memory for the list itself: just free
        }
    }
    Cache::free_cached(p, cls);
}

// A graph of a few thousand nodes is freed and rebuilt every step; records
// are small, so many more of one size are kept than buffers.
constexpr std::size_t kMaxRecordsPerSize = 8192;

}  // namespace

namespace detail {

// The arena of the replay running on this thread (core/arena.hpp), if any.
thread_local Arena* t_arena = nullptr;

void set_thread_arena(Arena* arena) noexcept { t_arena = arena; }
Arena* thread_arena() noexcept { return t_arena; }

void* cache_allocate(std::size_t bytes) {
    Caches* c = caches();
    return allocate_from(c ? &c->buffers : nullptr, bytes);
}

void* buffer_allocate(std::size_t bytes) { return t_arena ? t_arena->allocate(bytes) : cache_allocate(bytes); }

void buffer_release(void* p, std::size_t bytes) noexcept {
    if (!p) return;
    if (header(p).owner == kArenaOwner) return Arena::release(p);
    // A buffer a replay's recording saw released will live in its arena from
    // the next replay on: malloc gets it back rather than the cache keeping it.
    Caches* c = t_arena && t_arena->note_release(p) ? nullptr : t_caches;  // a thread without caches owns no block
    release_to(c ? &c->buffers : nullptr, p, bytes, max_cached_per_size);
}

void* record_allocate(std::size_t bytes) {
    Caches* c = caches();
    return allocate_from(c ? &c->records : nullptr, bytes);
}

void record_release(void* p, std::size_t bytes) noexcept {
    Caches* c = t_caches;
    release_to(c ? &c->records : nullptr, p, bytes, kMaxRecordsPerSize);
}

}  // namespace detail

bool buffer_cache_enabled() noexcept { return cache_enabled(); }

std::size_t cached_bytes() noexcept { return t_caches ? t_caches->buffers.bytes : 0; }

void release_cached_memory() noexcept {
    if (!t_caches) return;
    t_caches->buffers.clear();
    t_caches->records.clear();
}

}  // namespace tapegrad
