// SPDX-License-Identifier: MIT
// `setting<T>`: a typed handle on one key whose reads cost about one atomic load.
#pragma once

// Thread safety: `setting<T>::get` and `visit` may be called from any number of
// threads concurrently with every registry operation; they never lock, never hash,
// and never write a shared cache line; `get` allocates only to copy a `T` that does
// not fit a word, `visit` never. Each returns a value the key had at some moment at
// or after the handle was made. Copies of a handle share one slot. Assigning to or
// destroying one handle object while another thread uses that same object needs
// external synchronization, as for any object. A handle may outlive its registry; it
// then keeps the last value it saw.
//
// Invariants of `detail::setting_slot<T>`:
//  1. Only the registry writes a slot, under the registry's write mutex, in
//     `update`; readers only load.
//  2. Word-sized trivially copyable `T` lives in `word_`: readers do one acquire
//     load that pairs with the writer's release store.
//  3. Any other `T` lives behind `ptr_`, never null. The writer publishes a new
//     object with a release store (paired with the reader's acquire load) and hands
//     the old one to the epoch domain; a reader copies the object while pinned, so
//     it is freed only after every reader that could hold it has unpinned.
//  4. `state_` is the outcome of the last conversion (0, missing, type
//     mismatch, out of range, or invalid argument when converting threw). It is
//     advisory: a reader may see it one update ahead of or behind the value.
//  5. A slot lives as long as its longest-lived handle: every handle holds a
//     `shared_ptr` to it, the registry only a `weak_ptr` (locked for the length of
//     one `update`). The destructor therefore runs when no handle, and so no
//     reader, remains.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "cfgreg/detail/epoch.hpp"
#include "cfgreg/value.hpp"

namespace cfgreg {

class registry;

namespace detail {

/// What the registry sees of a slot: refreshed with the key's new effective value
/// (or null when the key has none) every time that value changes.
class slot_base {
  public:
    virtual ~slot_base() = default;
    virtual void update(const value* v) noexcept = 0;
};

template <class T>
constexpr bool fits_in_word() {
    if constexpr (std::is_trivially_copyable_v<T> && sizeof(T) <= 8) {
        return std::atomic<T>::is_always_lock_free;
    } else {
        return false;
    }
}

template <class T>
inline constexpr bool stored_in_word = fits_in_word<T>();

template <class T>
class setting_slot final : public slot_base {
  public:
    explicit setting_slot(T fallback) : fallback_(std::move(fallback)) {
        if constexpr (stored_in_word<T>) {
            word_.store(fallback_, std::memory_order_relaxed);  // not yet shared
        } else {
            ptr_.store(new T(fallback_), std::memory_order_relaxed);  // not yet shared
        }
    }

    ~setting_slot() override {
        // No reader remains: every reader holds a shared_ptr to this slot (invariant 5).
        // Relaxed: the release of the last shared_ptr orders every store before this load.
        if constexpr (!stored_in_word<T>) delete ptr_.load(std::memory_order_relaxed);
    }

    T get() const {
        if constexpr (stored_in_word<T>) {
            return word_.load(std::memory_order_acquire);  // pairs with update()'s release store
        } else {
            epoch::guard pin;
            // Acquire pairs with update()'s release store: the pointee is fully built.
            return *ptr_.load(std::memory_order_acquire);
        }
    }

    template <class F>
    auto visit(F&& f) const {
        if constexpr (stored_in_word<T>) {
            const T v = word_.load(std::memory_order_acquire);  // as in get()
            return std::invoke(std::forward<F>(f), v);
        } else {
            epoch::guard pin;
            // As in get(); the pin keeps the object alive while `f` runs (invariant 3).
            return std::invoke(std::forward<F>(f),
                               std::as_const(*ptr_.load(std::memory_order_acquire)));
        }
    }

    errc state() const noexcept {
        // Relaxed: advisory only (invariant 4).
        return static_cast<errc>(state_.load(std::memory_order_relaxed));
    }

    void update(const value* v) noexcept override {
        try {
            if (v == nullptr) {
                publish(fallback_, errc::missing);
                return;
            }
            auto converted = convert<T>(*v);
            if (converted) {
                publish(std::move(*converted), errc{});
            } else {
                publish(fallback_, converted.error().code);
            }
        } catch (...) {
            publish_fallback_noexcept();
        }
    }

  private:
    void publish(T next, errc state) {
        // Relaxed: advisory; a reader may pair it with the previous value (invariant 4).
        state_.store(static_cast<std::uint8_t>(state), std::memory_order_relaxed);
        if constexpr (stored_in_word<T>) {
            word_.store(next, std::memory_order_release);  // pairs with get()'s acquire load
        } else {
            T* fresh = new T(std::move(next));
            // Release pairs with get()'s acquire load. No acquire is needed: the previous
            // store was made under the registry's write mutex (invariant 1), which orders
            // it before this one. The old object goes to the epoch domain.
            T* old = ptr_.exchange(fresh, std::memory_order_release);
            epoch::retire(old, &destroy, sizeof(T));
        }
    }

    // Converting threw (a user's converter, or out of memory): serve the fallback and
    // report `invalid_argument`, so that state() never claims success for it.
    void publish_fallback_noexcept() noexcept {
        try {
            publish(fallback_, errc::invalid_argument);  // cannot throw for a word-sized T
        } catch (...) {
            // Copying the fallback failed too: keep the previous object, and say so.
            // Relaxed: advisory, like every store of the state (invariant 4).
            state_.store(static_cast<std::uint8_t>(errc::invalid_argument),
                         std::memory_order_relaxed);
        }
    }

    static void destroy(void* p) noexcept { delete static_cast<T*>(p); }

    const T fallback_;
    std::atomic<std::uint8_t> state_{static_cast<std::uint8_t>(errc::missing)};
    struct empty {};
    [[no_unique_address]] std::conditional_t<stored_in_word<T>, std::atomic<T>, empty> word_{};
    [[no_unique_address]] std::conditional_t<stored_in_word<T>, empty, std::atomic<T*>> ptr_{};
};

}  // namespace detail

/// A typed handle on one key, made by `registry::setting<T>(key, fallback)`. `get()`
/// returns the key's effective value converted to `T`, or the fallback while the key
/// is missing or does not convert; it follows every later change (set, unset,
/// reload, delete and re-add).
///
///     SAFE:   auto port = reg.setting<int>("server.port", 8080);   // once, at start-up
///             for (;;) serve(port.get());                          // hot path
///     UNSAFE: for (;;) serve(reg.setting<int>("server.port", 8080).get());  // locks each time
template <class T>
class setting {
  public:
    /// The current value (or the fallback). Word-sized trivially copyable types: one
    /// atomic load; others: an epoch pin plus a copy of `T`.
    T get() const { return slot_->get(); }
    /// Same as `get()`.
    T operator*() const { return get(); }

    /// Calls `f(const T&)` with the current value (or the fallback) in place and
    /// returns what `f` returns, by value: no copy of `T`, so reading a string or a
    /// vector allocates nothing. The reference is valid only while `f` runs; keep no
    /// pointer, view or reference into it, and keep `f` short, as for `sync_map::visit`.
    ///
    ///     SAFE:   greeting.visit([&](const std::string& s) { out.append(s); });
    ///     UNSAFE: std::string_view v = greeting.visit([](const std::string& s) {
    ///                 return std::string_view(s); });  // dangles
    template <class F>
    auto visit(F&& f) const {
        return slot_->visit(std::forward<F>(f));
    }

    /// Why `get` returns the fallback: `errc::missing`, `type_mismatch`,
    /// `out_of_range`, or `invalid_argument` when converting threw (then, for a type
    /// not stored in one word, `get` keeps the previous value if even copying the
    /// fallback threw); `errc{}` (zero) when it returns the key's value.
    errc state() const noexcept { return slot_->state(); }

    /// The canonical key this handle follows.
    const std::string& key() const noexcept { return *key_; }

  private:
    friend class registry;
    setting(std::shared_ptr<detail::setting_slot<T>> slot, std::shared_ptr<const std::string> key)
        : slot_(std::move(slot)), key_(std::move(key)) {}

    std::shared_ptr<detail::setting_slot<T>> slot_;
    std::shared_ptr<const std::string> key_;
};

}  // namespace cfgreg
