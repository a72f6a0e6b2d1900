// SPDX-License-Identifier: MIT
// Hot reload: the options of `registry::watch` and the handle that keeps a watch running.
#pragma once

// Thread safety: a `watch_handle` is move-only; distinct handles may be used from
// different threads, one handle not from two threads at once, except that `active()`
// and `polling()` may be called while another thread runs `stop()`. Each watch owns one
// background thread. Reloads, their notifications and their errors run on that
// thread. `stop()` and the destructor join it: once they return, no reload, callback
// or error report of this watch runs, and none starts later. Do not destroy a handle
// from inside one of its own callbacks; call `stop()` there instead, which returns
// at once and lets the thread end by itself.

#include <chrono>
#include <memory>
#include <utility>

namespace cfgreg {

class registry;

/// How a watch notices and applies changes. The defaults suit editors, config
/// management tools and Kubernetes ConfigMap volumes.
struct watch_options {
    /// Quiet time after the last change before reloading (the trailing edge).
    std::chrono::milliseconds debounce{50};
    /// Longest time a stream of changes may delay a reload.
    std::chrono::milliseconds max_wait{500};
    /// Two reads of a changed file this far apart must agree before it is applied,
    /// so that a file caught mid-write is never applied. Most of a reload's latency.
    std::chrono::milliseconds settle{20};
    /// How long an empty or missing file must stay so before it counts: editors and
    /// tools truncate before writing.
    std::chrono::milliseconds empty_grace{1000};
    /// Interval of the polling fallback, used when inotify is not available.
    std::chrono::milliseconds poll_interval{1000};
    /// Poll even when inotify is available (network file systems, or to test the fallback).
    bool force_polling = false;
};

/// Keeps a watch running; ending it stops and joins the watch's thread.
class [[nodiscard]] watch_handle {
  public:
    /// State shared with the registry; defined in the library.
    struct state;

    /// An inactive handle; only `registry::watch` makes active ones.
    watch_handle() noexcept = default;
    /// Takes over `other`'s watch; `other` becomes inactive.
    watch_handle(watch_handle&&) noexcept = default;
    /// Stops this handle's own watch first, then takes over `other`'s.
    watch_handle& operator=(watch_handle&& other) noexcept {
        if (this != &other) {
            stop();
            state_ = std::move(other.state_);
        }
        return *this;
    }
    /// Stops and joins the watch (see `stop`).
    ~watch_handle() { stop(); }

    /// Stops watching and joins the thread (see the header comment). Idempotent.
    void stop() noexcept;

    /// True while the watch runs.
    bool active() const noexcept;

    /// True when the watch fell back to polling (inotify unavailable or refused).
    bool polling() const noexcept;

  private:
    friend class registry;
    explicit watch_handle(std::shared_ptr<state> s) noexcept : state_(std::move(s)) {}

    std::shared_ptr<state> state_;
};

}  // namespace cfgreg
