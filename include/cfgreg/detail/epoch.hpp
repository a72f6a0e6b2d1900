// SPDX-License-Identifier: MIT
// Epoch-based memory reclamation behind every lock-free read path of cfgreg.
#pragma once

// Thread safety: every function here may be called from any thread at any time. A
// `guard` pins the calling thread; while it lives, nothing retired after the pin
// began is freed, so pointers loaded under the guard stay valid until it ends.
// Guards nest. Nothing here is part of the public API: users see its effects
// through `sync_map` and `registry`.
//
// Invariants:
//  1. `thread_record::state` is 0 while its thread is unpinned, and
//     `(epoch << 1) | 1` while it is pinned at `epoch`. Only the owning thread
//     writes it; reclaimers only read it.
//  2. The global epoch moves from e to e + 1 only after a reclaimer has seen
//     every pinned thread at e (after a full fence on both sides: see
//     `pin_fence` and `heavy_fence`).
//  3. An object retired while the global epoch was e is freed once the global
//     epoch is at least e + 2. A reader that could still hold a pointer to it
//     pinned at e or earlier, and such a reader blocks the second advance, so no
//     reader can see freed memory.
//  4. Readers never lock, spin or write a cache line another thread writes: a
//     pin writes only the caller's own cache-line-aligned record. All waiting
//     and freeing is done by writers, inside `retire`, `collect` and
//     `synchronize`, never by a reader.
//  5. Retire bags belong to their thread; at thread exit the bag moves to a
//     global orphan list (under a mutex) and the record is recycled by the
//     next thread that registers.
//
// Fences: when the kernel offers
// `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, a pin costs a plain store
// plus a compiler barrier and the reclaimer pays a membarrier system call
// instead. Otherwise, with CFGREG_EPOCH_SEQ_CST, and under ThreadSanitizer
// (which does not model membarrier), the pin issues a full fence itself.

#include <atomic>
#include <cstddef>
#include <cstdint>

#if defined(__SANITIZE_THREAD__)
#define CFGREG_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CFGREG_TSAN 1
#endif
#endif

namespace cfgreg::detail::epoch {

/// Frees one retired object. Must not throw and must not pin.
using deleter_fn = void (*)(void*) noexcept;

/// Per-thread reclamation state; one cache line of its own so that pins never share a line.
struct alignas(64) thread_record {
    std::atomic<std::uint64_t> state{0};  // invariant 1; nonzero while pinned, so guards nest
    std::atomic<bool> in_use{false};      // claimed by a live thread
    thread_record* next = nullptr;        // registry list; immutable once published
    void* bag = nullptr;                  // retired objects; owner thread only
};

/// The process-wide epoch. Constant-initialized, never destroyed.
struct domain_state {
    alignas(64) std::atomic<std::uint64_t> global_epoch{1};
    alignas(64) std::atomic<thread_record*> records{nullptr};
    bool asymmetric = false;  // membarrier available; written once before any record exists
};

inline constinit domain_state domain;
inline constinit thread_local thread_record* this_thread_record = nullptr;

/// Registers the calling thread (first use only); allocates or recycles a record.
thread_record* register_thread();

/// Orders the pin's store before the reader's following loads (invariant 2, reader side).
[[gnu::always_inline]] inline void pin_fence(thread_record* rec, std::uint64_t pinned) noexcept {
#if defined(CFGREG_TSAN)
    // Pairs with heavy_fence(): a seq_cst read-modify-write is a full barrier that TSan models.
    rec->state.exchange(pinned, std::memory_order_seq_cst);
#else
    // Release: a reclaimer that acquires this value also sees everything
    // this thread did before the pin, so its accesses from an earlier
    // pin happen-before any free.
    rec->state.store(pinned, std::memory_order_release);
#if defined(CFGREG_EPOCH_SEQ_CST)
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with heavy_fence()
#else
    if (domain.asymmetric) {
        // Pairs with membarrier() in heavy_fence(): only the compiler must keep the order.
        std::atomic_signal_fence(std::memory_order_seq_cst);
    } else {
        std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with heavy_fence()
    }
#endif
#endif
}

/// True while the calling thread holds a guard. Relaxed: only this thread writes its
/// own `state` (invariant 1), so it reads its own latest value.
inline bool pinned(const thread_record* rec) noexcept {
    return rec->state.load(std::memory_order_relaxed) != 0;
}

/// RAII pin. Cheap (a thread-local load, a load and a store of the caller's own
/// record, and a compiler barrier); never blocks, never spins. An inner guard of
/// the same thread does nothing.
class guard {
  public:
    [[gnu::always_inline]] guard() {
        thread_record* rec = this_thread_record;
        if (rec == nullptr) [[unlikely]]
            rec = register_thread();
        rec_ = rec;
        outer_ = !pinned(rec);
        if (outer_) {
            // Relaxed: a stale epoch only makes this pin hold back reclamation a
            // little longer; invariant 2 checks the pinned value, whatever it is.
            const std::uint64_t e = domain.global_epoch.load(std::memory_order_relaxed);
            pin_fence(rec, (e << 1) | 1);
        }
    }
    [[gnu::always_inline]] ~guard() {
        if (outer_) {
            // Release pairs with the reclaimer's acquire load of `state`: every read
            // made under this pin happens-before the reclaimer frees what it read.
            rec_->state.store(0, std::memory_order_release);
        }
    }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;

  private:
    thread_record* rec_;
    bool outer_;
};

/// Hands `p` to the domain; `deleter(p)` runs once no reader can still hold
/// it. `bytes` feeds the accounting and the collection thresholds. May free
/// older objects of this thread, so it must not be called while holding a
/// lock that a deleter could need. Never throws: when memory to record `p`
/// cannot be allocated, `p` is leaked (counted by `leaked_objects`), never
/// freed early, so that a write that has published its change can finish.
void retire(void* p, deleter_fn deleter, std::size_t bytes) noexcept;

/// Objects `retire` could not record for lack of memory, and so never freed.
inline constinit std::atomic<std::size_t> leaked_objects{0};

/// Tries to advance the epoch and frees what this thread and exited threads retired
/// that is now safe to free. Never waits.
void collect();

/// Frees everything this thread and exited threads retired before the call,
/// waiting (by yielding) for readers pinned at older epochs to move on. Must
/// not be called while pinned.
void synchronize();

/// Bytes and objects retired but not yet freed, over all threads.
std::size_t unreclaimed_bytes() noexcept;
std::size_t unreclaimed_objects() noexcept;

/// Collection thresholds. A thread collects once its bag holds `collect_objects`
/// objects or `collect_bytes` bytes. Past `limit_objects` or `limit_bytes` it
/// yields to pinned readers for up to `limit_wait_ms` before letting the bag grow:
/// with no reader pinned for that long, a thread's unreclaimed memory stays within
/// those limits plus one object.
inline constexpr std::size_t collect_objects = 128;
inline constexpr std::size_t collect_bytes = std::size_t{256} << 10;
inline constexpr std::size_t limit_objects = 4096;
inline constexpr std::size_t limit_bytes = std::size_t{8} << 20;
inline constexpr int limit_wait_ms = 100;

/// Lock acquisitions made by the calling thread inside cfgreg (map mutexes, the
/// orphan list). Tests use it to show that read paths take no lock.
inline constinit thread_local std::uint64_t thread_lock_count = 0;

}  // namespace cfgreg::detail::epoch
