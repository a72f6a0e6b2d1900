// SPDX-License-Identifier: MIT
// Change notifications: what a subscriber receives, and the handle that keeps it subscribed.
#pragma once

// Thread safety: callbacks run on the thread that made the change (a `set` caller,
// or the watcher's thread for a reload), after the new values are visible to every
// reader and with no lock of the registry held. Changes are delivered in generation
// order; a change made while callbacks for an earlier one are running is delivered
// after they return, so `set` inside a callback returns before its own subscribers
// hear of it. Because delivery trails publication, a callback that reads the
// registry may see a value newer than the event's.
//
// A `subscription` is a move-only handle. `unsubscribe()` (and the destructor)
// return only once no call of that callback is running on another thread, so the
// callback's captures may be destroyed right after; called from inside the
// callback itself, it returns at once and the running call finishes normally.
// Distinct handles may be used from different threads; one handle must not be
// used from two threads at once.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cfgreg/value.hpp"

namespace cfgreg {

namespace detail {
class notifier;
}  // namespace detail

/// How an effective value changed.
enum class change_kind : std::uint8_t { added, changed, removed };

/// "added", "changed" or "removed".
const char* to_string(change_kind k) noexcept;

/// One effective value that changed.
struct change_event {
    std::string key;                        ///< canonical key path
    change_kind kind = change_kind::added;  ///< added, changed or removed
    std::optional<value> old_value;         ///< empty when added
    std::optional<value> new_value;         ///< empty when removed
    std::uint64_t generation = 0;           ///< the registry generation that holds the change
    std::string source;                     ///< where the new value (or the removal) came from
    bool secret = false;                    ///< the key is secret: never print its values
};

/// Everything one change of the registry (a reload, a `set`, ...) did, in key order.
struct change_batch {
    std::uint64_t generation = 0;       ///< the registry generation after the change
    std::vector<change_event> changes;  ///< one event per changed key, in key order
};

/// Keeps a callback subscribed; see the header comment for the shutdown guarantee.
class [[nodiscard]] subscription {
  public:
    /// State shared with the delivering side; defined in the library.
    struct state;

    /// An inactive handle; only a registry makes active ones.
    subscription() noexcept = default;
    /// Takes over `other`'s callback; `other` becomes inactive.
    subscription(subscription&& other) noexcept = default;
    /// Unsubscribes this handle's own callback first, then takes over `other`'s.
    subscription& operator=(subscription&& other) noexcept {
        if (this != &other) {
            unsubscribe();
            state_ = std::move(other.state_);
        }
        return *this;
    }
    /// Unsubscribes (see `unsubscribe`).
    ~subscription() { unsubscribe(); }

    /// Stops the callback; waits for its calls on other threads to finish. Idempotent.
    void unsubscribe() noexcept;

    /// True until `unsubscribe` (or for a default-constructed handle, never).
    bool active() const noexcept;

  private:
    friend class detail::notifier;
    explicit subscription(std::shared_ptr<state> s) noexcept : state_(std::move(s)) {}

    std::shared_ptr<state> state_;
};

}  // namespace cfgreg
