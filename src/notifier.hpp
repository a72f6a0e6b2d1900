// SPDX-License-Identifier: MIT
// Delivers change batches to subscribers, in order, over Boost.Signals2.
#pragma once

// Thread safety: every member may be called from any thread, including from
// inside a callback. `publish` delivers on the calling thread unless another
// thread is delivering already, in which case the batch joins that thread's queue
// and `publish` returns at once.
//
// Invariants:
//  1. `queue_mu_` guards `queue_` and `draining_`; it is never held while a callback runs.
//  2. At most one thread drains at a time (`draining_`), so batches reach every
//     subscriber in the order `publish` received them.
//  3. A subscription's `state::mu_` guards its `connected_` flag, its running-call
//     list and its callback object; a call starts only while `connected_`, so once
//     `unsubscribe` has set it false and seen no call running on another thread, the
//     callback never runs again.

#include <deque>
#include <functional>
#include <mutex>
#include <string>

#include <boost/signals2/signal.hpp>

#include "cfgreg/error.hpp"
#include "cfgreg/subscription.hpp"

namespace cfgreg::detail {

class notifier {
  public:
    /// `report` receives the failure of a callback that threw; it must not throw.
    explicit notifier(std::function<void(const error&)> report);
    ~notifier();
    notifier(const notifier&) = delete;
    notifier& operator=(const notifier&) = delete;

    /// Calls `fn` for each change of `key` (exact match) or, with `prefix`, of `key`
    /// and every key under it; an empty prefix matches every key.
    subscription subscribe(std::string key, bool prefix,
                           std::function<void(const change_event&)> fn);

    /// Calls `fn` once per batch with every change of it.
    subscription subscribe_batch(std::function<void(const change_batch&)> fn);

    /// True when no callback is subscribed: a publisher may skip building its batch.
    bool idle() const noexcept { return signal_.empty(); }

    /// Delivers `batch` to every subscriber (see the thread-safety note).
    void publish(change_batch batch) {
        enqueue(std::move(batch));
        drain();
    }

    /// Queues `batch` behind those queued before; runs no callback, so a caller may hold
    /// its own lock to fix the order of batches.
    void enqueue(change_batch batch);

    /// Delivers the queued batches, in order, unless another thread is delivering them.
    /// Call it with no lock held.
    void drain();

    /// True when `key` equals `prefix` or lies under it, in canonical key-path text.
    static bool under(const std::string& key, const std::string& prefix) noexcept;

  private:
    subscription connect(std::function<void(const change_batch&)> deliver);

    std::function<void(const error&)> report_;
    boost::signals2::signal<void(const change_batch&)> signal_;

    std::mutex queue_mu_;
    std::deque<change_batch> queue_;  // guarded by queue_mu_
    bool draining_ = false;           // guarded by queue_mu_
};

}  // namespace cfgreg::detail
