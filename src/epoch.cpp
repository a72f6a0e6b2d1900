// SPDX-License-Identifier: MIT
// Registration, retirement and collection for the epoch reclamation domain.
#include "cfgreg/detail/epoch.hpp"

#include <chrono>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace cfgreg::detail::epoch {
namespace {

struct retired {
    void* p;
    deleter_fn deleter;
    std::size_t bytes;
    std::uint64_t epoch;
};

struct bag {
    std::vector<retired> items;  // epochs never decrease along the vector
    std::size_t bytes = 0;
    bool gave_up = false;  // waited limit_wait_ms in vain; no more waiting until freed
};

// Written by writers only; readers never touch these counters. Every access is relaxed:
// they are statistics for `unreclaimed_*`, and no other memory is ordered by them.
std::atomic<std::size_t> total_bytes{0};
std::atomic<std::size_t> total_objects{0};

// Bags of exited threads. Never destroyed: threads may exit after static destruction began.
struct orphanage {
    std::mutex mu;
    std::vector<retired> items;
    std::atomic<bool> nonempty{false};
};
orphanage& orphans() {
    static orphanage* o = new orphanage;
    return *o;
}

bool kernel_has_membarrier() {
#if defined(__linux__) && !defined(CFGREG_EPOCH_SEQ_CST) && !defined(CFGREG_TSAN)
    const long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
    return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#else
    return false;
#endif
}

// The reclaimer's half of invariant 2: after it, every pin that some
// reader had stored before is visible, and every reader pinning later sees
// the writer's earlier unlinks.
void heavy_fence() {
#if defined(__linux__) && !defined(CFGREG_EPOCH_SEQ_CST) && !defined(CFGREG_TSAN)
    if (domain.asymmetric) {
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
        return;
    }
#endif
#if defined(CFGREG_TSAN)
    // Pairs with the seq_cst exchange in pin_fence(); a fence would be invisible to TSan.
    domain.global_epoch.fetch_add(0, std::memory_order_seq_cst);
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with pin_fence()
#endif
}

// Reads the epoch to stamp a retired object with. The full fence orders the
// caller's unlink (a store) before this load, so the stamp is never older
// than the unlink (invariant 3).
std::uint64_t retire_stamp() {
#if defined(CFGREG_TSAN)
    return domain.global_epoch.fetch_add(0, std::memory_order_seq_cst);
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with pin_fence()
    return domain.global_epoch.load(std::memory_order_relaxed);
#endif
}

// Moves the global epoch forward by one when every pinned thread has seen the current one.
void try_advance() {
    heavy_fence();
    // Acquire pairs with the acq_rel CAS below, as made by other reclaimers.
    std::uint64_t e = domain.global_epoch.load(std::memory_order_acquire);
    // Acquire pairs with the release CAS in register_thread(): records are complete.
    for (thread_record* r = domain.records.load(std::memory_order_acquire); r != nullptr;
         r = r->next) {
        // Acquire pairs with the release stores of guard and pin_fence (invariant 1).
        const std::uint64_t s = r->state.load(std::memory_order_acquire);
        if ((s & 1) != 0 && (s >> 1) != e) return;
    }
    // Losing this race means another reclaimer advanced: equally good.
    domain.global_epoch.compare_exchange_strong(e, e + 1, std::memory_order_acq_rel,
                                                std::memory_order_relaxed);
}

// Frees the prefix of `items` whose epoch is at least two behind the global one.
std::size_t free_ready(std::vector<retired>& items, std::size_t& bytes) {
    // Acquire pairs with the acq_rel CAS of try_advance().
    const std::uint64_t now = domain.global_epoch.load(std::memory_order_acquire);
    std::size_t n = 0;
    std::size_t freed_bytes = 0;
    while (n < items.size() && items[n].epoch + 2 <= now) {
        freed_bytes += items[n].bytes;
        items[n].deleter(items[n].p);
        ++n;
    }
    items.erase(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(n));
    bytes -= freed_bytes;
    total_bytes.fetch_sub(freed_bytes, std::memory_order_relaxed);
    total_objects.fetch_sub(n, std::memory_order_relaxed);
    return n;
}

void collect_orphans() {
    orphanage& o = orphans();
    // Acquire pairs with the release stores of `nonempty`; a stale false only delays
    // collection to the next call, and the items themselves are read under `o.mu`.
    if (!o.nonempty.load(std::memory_order_acquire)) return;
    std::unique_lock lock(o.mu, std::try_to_lock);
    if (!lock.owns_lock()) return;  // another thread is collecting them
    ++thread_lock_count;
    std::size_t unused = 0;
    free_ready(o.items, unused);
    o.nonempty.store(!o.items.empty(), std::memory_order_release);
}

bag& bag_of(thread_record* rec) {
    if (rec->bag == nullptr) rec->bag = new bag;
    return *static_cast<bag*>(rec->bag);
}

bool over_limit(const bag& b) {
    return b.items.size() >= limit_objects || b.bytes >= limit_bytes;
}

void collect_bag(bag& b) {
    try_advance();
    if (free_ready(b.items, b.bytes) > 0) b.gave_up = false;
    collect_orphans();
    if (!over_limit(b) || b.gave_up) return;

    // Writers, never readers, wait: give pinned readers (often just descheduled)
    // time to leave their epoch so that memory stays bounded.
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(limit_wait_ms);
    while (over_limit(b) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
        try_advance();
        free_ready(b.items, b.bytes);
    }
    b.gave_up = over_limit(b);
}

// Releases the thread's record at thread exit (invariant 5).
struct thread_exit_hook {
    thread_record* rec = nullptr;
    ~thread_exit_hook() {
        if (rec == nullptr) return;
        if (rec->bag != nullptr) {
            bag& b = *static_cast<bag*>(rec->bag);
            try_advance();
            free_ready(b.items, b.bytes);
            if (!b.items.empty()) {
                orphanage& o = orphans();
                std::lock_guard lock(o.mu);
                o.items.insert(o.items.end(), b.items.begin(), b.items.end());
                o.nonempty.store(true, std::memory_order_release);
            }
            delete &b;
            rec->bag = nullptr;
        }
        this_thread_record = nullptr;
        rec->in_use.store(false, std::memory_order_release);  // pairs with the claim's acq_rel
    }
};
thread_local thread_exit_hook exit_hook;

}  // namespace

thread_record* register_thread() {
    static std::once_flag membarrier_once;
    std::call_once(membarrier_once, [] { domain.asymmetric = kernel_has_membarrier(); });

    // Recycle a record left by an exited thread, else publish a new one.
    thread_record* rec = nullptr;
    // Acquire pairs with the release CAS that published each record, below.
    for (thread_record* r = domain.records.load(std::memory_order_acquire); r != nullptr;
         r = r->next) {
        bool expected = false;
        // Relaxed pre-check: a stale value only costs a failed or skipped CAS; the
        // acq_rel CAS pairs with the release store of `in_use` at thread exit.
        if (!r->in_use.load(std::memory_order_relaxed) &&
            r->in_use.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
            rec = r;
            break;
        }
    }
    if (rec == nullptr) {
        rec = new thread_record;
        rec->in_use.store(true, std::memory_order_relaxed);  // published by the CAS below
        // Relaxed: only the CAS's expected value; a failed CAS reloads it.
        thread_record* head = domain.records.load(std::memory_order_relaxed);
        do {
            rec->next = head;
            // Release publishes the record's fields to reclaimers walking the list.
        } while (!domain.records.compare_exchange_weak(head, rec, std::memory_order_release,
                                                       std::memory_order_relaxed));
    }
    this_thread_record = rec;
    exit_hook.rec = rec;
    return rec;
}

void retire(void* p, deleter_fn deleter, std::size_t bytes) noexcept {
    thread_record* rec = this_thread_record;
    try {
        if (rec == nullptr) rec = register_thread();
        bag_of(rec).items.push_back({p, deleter, bytes, retire_stamp()});
    } catch (const std::bad_alloc&) {
        // Out of memory: a reader may still hold `p`, so it is never freed (see the header).
        leaked_objects.fetch_add(1, std::memory_order_relaxed);  // a statistic only
        return;
    }
    bag& b = bag_of(rec);
    b.bytes += bytes;
    total_bytes.fetch_add(bytes, std::memory_order_relaxed);
    total_objects.fetch_add(1, std::memory_order_relaxed);
    // Never free while this thread is pinned: a deleter might release what the caller reads.
    if (!pinned(rec) && (b.items.size() >= collect_objects || b.bytes >= collect_bytes)) {
        collect_bag(b);
    }
}

void collect() {
    thread_record* rec = this_thread_record;
    if (rec == nullptr) rec = register_thread();
    if (pinned(rec)) return;
    bag& b = bag_of(rec);
    try_advance();
    free_ready(b.items, b.bytes);
    collect_orphans();
}

void synchronize() {
    thread_record* rec = this_thread_record;
    if (rec == nullptr) rec = register_thread();
    bag& b = bag_of(rec);
    orphanage& o = orphans();
    for (;;) {
        try_advance();
        free_ready(b.items, b.bytes);
        {
            std::lock_guard lock(o.mu);
            ++thread_lock_count;
            std::size_t unused = 0;
            free_ready(o.items, unused);
            o.nonempty.store(!o.items.empty(), std::memory_order_release);
            if (b.items.empty() && o.items.empty()) return;
        }
        std::this_thread::yield();
    }
}

std::size_t unreclaimed_bytes() noexcept {
    return total_bytes.load(std::memory_order_relaxed);
}
std::size_t unreclaimed_objects() noexcept {
    return total_objects.load(std::memory_order_relaxed);
}

}  // namespace cfgreg::detail::epoch
