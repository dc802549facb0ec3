// The planned memory of a replayed program (core/compile/capture.cpp;
// docs/compile.md, "Memory plan"). Internal: not part of the API.
//
// A replay makes the same buffer requests in the same order every time: its
// steps run the same kernels on the same shapes. The first replay is
// recorded: each request's size, and when it was released (or that it is
// kept: an output or gradient the replay hands over). plan() then gives each
// of those buffers an offset in one block, so that buffers alive at the same
// time never share a byte and buffers that are not may: the block is as
// large as the most memory the replay holds at once, not the sum of its
// buffers. Later replays are served from the block. Other requests that
// outlive the recorded replay (a value an op keeps for later) come from the
// buffer cache.
//
// Every request served is checked: no buffer planned into any of its bytes
// may be alive, its own of the last replay included (a gradient the caller
// still holds); else that request alone comes from the buffer cache, so a
// byte is never shared, and the plan goes on. A request of another size
// than the recording saw at that position leaves the plan: it and the rest
// of the replay come from the cache, and the next replay records and plans
// afresh (after three such replays in a row the arena stops planning). A block lives until its arena is gone and the
// last buffer served from it is released, so a handed-over gradient stays
// valid however long it is held.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

namespace tapegrad::detail {

class Arena {
public:
    Arena() = default;
    ~Arena();
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;

    // The calling thread's buffer requests between begin() and end() are
    // recorded (no plan yet, or the last replay left it) or served.
    void begin();
    void end() noexcept;
    // While recording, before end(): the buffer p (a value the replay hands
    // over) stays alive after the replay; it is planned to the end.
    void keep(const void* p);

    std::size_t bytes() const;    // the block (0: no plan yet)
    std::size_t planned() const;  // requests each replay takes from it
    std::size_t misses() const { return misses_; }  // replays that left the plan
    std::size_t held() const { return held_; }      // requests the cache served: their bytes were held

    // For core/memory.cpp: a request of the thread whose arena this is; a
    // release on that thread (true: a buffer the recording saw released,
    // which the arena replaces); the release of a buffer an arena served.
    void* allocate(std::size_t bytes);
    bool note_release(void* p) noexcept;
    static void release(void* p) noexcept;

private:
    struct Plan;
    // A buffer's "served and not released" flag: released on any thread
    // (a gradient dropped elsewhere), read by the replaying one.
    struct Live {
        std::atomic<bool> on{false};
        Live() = default;
        Live(const Live& o) : on(o.on.load(std::memory_order_relaxed)) {}
        Live& operator=(const Live& o) {
            on.store(o.on.load(std::memory_order_relaxed), std::memory_order_relaxed);
            return *this;
        }
    };
    struct Request {
        std::size_t bytes;
        std::uint64_t made, released;
        std::size_t offset;                     // in the block; none: not planned
        std::vector<std::uint32_t> overlapping;  // the other planned requests sharing a byte with it
        Live live;
        Plan* plan = nullptr;
    };
    struct Plan {
        std::vector<Request> requests;
        char* block = nullptr;
        std::size_t bytes = 0, planned = 0;
        // Buffers served and not released, plus one while its arena holds
        // it: the plan is freed when the count reaches 0 (any thread).
        std::atomic<std::size_t> references{1};
        ~Plan();
    };
    void make_plan(std::vector<Request> requests);
    void retire() noexcept;

    enum class Mode { off, recording, serving } mode_ = Mode::off;
    bool stale_ = true;    // record at the next begin()
    bool missed_ = false;  // this replay left the plan
    Plan* plan_ = nullptr;
    std::vector<Request> recording_;
    std::unordered_map<const void*, std::uint32_t> open_;  // recording: buffer -> request
    std::vector<const void*> retiring_;  // kept by the recording: released by the next replay
    std::uint64_t clock_ = 0;
    std::size_t next_ = 0, misses_ = 0, misses_in_a_row_ = 0, held_ = 0;
};

// The thread's arena while a replay runs (core/memory.cpp).
void set_thread_arena(Arena* arena) noexcept;
Arena* thread_arena() noexcept;
// A buffer from the thread's cache (or malloc), bypassing any arena.
void* cache_allocate(std::size_t bytes);

}  // namespace tapegrad::detail
