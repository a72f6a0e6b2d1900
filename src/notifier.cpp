// SPDX-License-Identifier: MIT
// Ordered delivery of change batches, and subscriptions whose end waits for running calls.
#include "notifier.hpp"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <thread>
#include <utility>
#include <vector>

namespace cfgreg {

struct subscription::state {
    std::mutex mu_;
    std::condition_variable idle_;
    bool connected_ = true;                             // guarded by mu_
    std::vector<std::thread::id> running_;              // threads inside `deliver_`; guarded by mu_
    std::function<void(const change_batch&)> deliver_;  // dropped once disconnected and idle
    boost::signals2::connection connection_;            // set once, before the first delivery
};

const char* to_string(change_kind k) noexcept {
    switch (k) {
        case change_kind::added:
            return "added";
        case change_kind::changed:
            return "changed";
        case change_kind::removed:
            return "removed";
    }
    return "unknown";
}

void subscription::unsubscribe() noexcept {
    if (state_ == nullptr) return;
    std::shared_ptr<state> st = std::move(state_);
    st->connection_.disconnect();

    std::function<void(const change_batch&)> doomed;
    {
        std::unique_lock lock(st->mu_);
        st->connected_ = false;
        // Wait for calls on other threads; a call on this thread is the caller itself.
        const std::thread::id self = std::this_thread::get_id();
        st->idle_.wait(lock, [&] {
            return std::all_of(st->running_.begin(), st->running_.end(),
                               [&](std::thread::id id) { return id == self; });
        });
        if (st->running_.empty()) doomed = std::move(st->deliver_);
    }
    // The callback object is destroyed here, with no lock held: its captures may unsubscribe.
}

bool subscription::active() const noexcept {
    if (state_ == nullptr) return false;
    std::lock_guard lock(state_->mu_);
    return state_->connected_;
}

namespace detail {

notifier::notifier(std::function<void(const error&)> report) : report_(std::move(report)) {}

notifier::~notifier() {
    signal_.disconnect_all_slots();
}

bool notifier::under(const std::string& key, const std::string& prefix) noexcept {
    if (prefix.empty()) return true;
    if (key.size() < prefix.size() || key.compare(0, prefix.size(), prefix) != 0) return false;
    if (key.size() == prefix.size()) return true;
    const char next = key[prefix.size()];
    return next == '.' || next == '[';
}

subscription notifier::subscribe(std::string key, bool prefix,
                                 std::function<void(const change_event&)> fn) {
    return connect([key = std::move(key), prefix, fn = std::move(fn)](const change_batch& b) {
        for (const change_event& e : b.changes) {
            if (prefix ? under(e.key, key) : e.key == key) fn(e);
        }
    });
}

subscription notifier::subscribe_batch(std::function<void(const change_batch&)> fn) {
    return connect(std::move(fn));
}

subscription notifier::connect(std::function<void(const change_batch&)> deliver) {
    auto st = std::make_shared<subscription::state>();
    st->deliver_ = std::move(deliver);
    // The slot holds only a weak reference: the handle owns the state.
    std::weak_ptr<subscription::state> weak = st;
    st->connection_ = signal_.connect([this, weak](const change_batch& batch) {
        std::shared_ptr<subscription::state> s = weak.lock();
        if (s == nullptr) return;
        {
            std::lock_guard lock(s->mu_);
            if (!s->connected_) return;  // invariant 3
            s->running_.push_back(std::this_thread::get_id());
        }
        try {
            s->deliver_(batch);
        } catch (const std::exception& e) {
            report_(error(errc::callback_failed, std::string("subscriber threw: ") + e.what()));
        } catch (...) {
            report_(error(errc::callback_failed, "subscriber threw a non-standard exception"));
        }
        std::function<void(const change_batch&)> doomed;
        {
            std::lock_guard lock(s->mu_);
            s->running_.erase(
                std::find(s->running_.begin(), s->running_.end(), std::this_thread::get_id()));
            // Unsubscribed from inside this very call: drop the callback now that it returned.
            if (!s->connected_ && s->running_.empty()) doomed = std::move(s->deliver_);
        }
        s->idle_.notify_all();
    });
    return subscription(std::move(st));
}

void notifier::enqueue(change_batch batch) {
    std::lock_guard lock(queue_mu_);
    queue_.push_back(std::move(batch));
}

void notifier::drain() {
    {
        std::lock_guard lock(queue_mu_);
        if (draining_ || queue_.empty()) return;  // the draining thread delivers the rest
        draining_ = true;
    }
    for (;;) {
        change_batch next;
        {
            std::lock_guard lock(queue_mu_);
            if (queue_.empty()) {
                draining_ = false;
                return;
            }
            next = std::move(queue_.front());
            queue_.pop_front();
        }
        try {
            signal_(next);  // invariant 1: no lock of ours is held here
        } catch (...) {     // only allocation failures inside Signals2 get here
            std::lock_guard lock(queue_mu_);
            draining_ = false;
            throw;
        }
    }
}

}  // namespace detail
}  // namespace cfgreg
