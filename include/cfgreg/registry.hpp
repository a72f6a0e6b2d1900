// SPDX-License-Identifier: MIT
// `cfgreg::registry`: layered TOML configuration with lock-free typed reads.
#pragma once

// Thread safety: every member may be called from any thread at any time. Reads
// (`get`, `get_or`, `read`, `require`, `contains`, `generation`, `snapshot`, and
// `setting<T>::get`) never take a lock: a leaf is found through the registry's
// `sync_map` and read in place, and arrays, tables and listings come from the
// current immutable snapshot. Writes (`load_*`, `set*`, `unset`, `mark_secret`) are
// serialized by one internal mutex. A read that races a write returns the value
// before or after it, never a mix within one leaf; use `snapshot()` to see several
// keys at one generation. Values returned by reads are copies and stay valid
// forever. Destroying a registry while another thread uses it is undefined, as for
// any object.
//
// Example:
//
//     cfgreg::registry& reg = cfgreg::registry::global();
//     reg.load_file("app.toml").value();           // throws cfgreg::error on a bad file
//     int port = reg.get_or<int>("server.port", 8080);
//     auto timeout = reg.require<std::chrono::milliseconds>("server.timeout");  // "250ms"
//     cfgreg::setting<bool> verbose = reg.setting<bool>("log.verbose", false);
//     if (verbose.get()) { ... }                   // about one atomic load

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "cfgreg/error.hpp"
#include "cfgreg/key_path.hpp"
#include "cfgreg/setting.hpp"
#include "cfgreg/snapshot.hpp"
#include "cfgreg/subscription.hpp"
#include "cfgreg/sync_map.hpp"
#include "cfgreg/value.hpp"
#include "cfgreg/watcher.hpp"

namespace cfgreg {

namespace detail {

/// A non-owning reference to a callable, valid only during the call it is passed to.
template <class Sig>
class function_ref;

template <class R, class... A>
class function_ref<R(A...)> {
  public:
    template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, function_ref>) function_ref(F&& f)
    noexcept  // NOLINT: implicit by design
        : object_(const_cast<void*>(static_cast<const void*>(&f))), call_([](void* o, A... a) -> R {
              return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<A>(a)...);
          }) {}

    R operator()(A... a) const { return call_(object_, std::forward<A>(a)...); }

  private:
    void* object_;
    R (*call_)(void*, A...);
};

}  // namespace detail

/// What `describe` reports about one key: its effective value and what it shadows.
struct description {
    /// One layer's value for the key.
    struct layer_value {
        cfgreg::layer from = layer::defaults;
        source_position where;
        std::optional<value> val;  ///< empty when the key is secret
    };

    std::string key;      ///< canonical
    bool found = false;   ///< the key has an effective value (a leaf, array or table)
    bool secret = false;  ///< the key is secret: values are left out
    std::optional<layer_value> effective;  ///< the winning layer (leaves only)
    std::vector<layer_value> shadowed;     ///< lower layers' values for the same key, highest first

    /// A few human-readable lines: value, layer and source, then each shadowed value.
    std::string to_string() const;
};

/// Process-wide or local configuration: layered sources, typed reads, typed handles.
///
/// Layers, lowest precedence first: defaults (`set_default`), files and strings in
/// load order (`load_file`, `load_string`), the environment (`load_env`), runtime
/// overrides (`set`, `unset`). The effective value of a key is the highest layer's.
/// Tables merge across layers; a scalar or an array in a higher layer replaces the
/// whole subtree at its key (so an array from a later file replaces an earlier
/// file's array instead of merging element-wise).
class registry {
  public:
    /// An empty registry, independent of `global()`.
    registry();
    /// Stops and joins every watch of this registry. No other thread may still be
    /// using the registry; `setting` handles may outlive it (see `setting`).
    ~registry();
    /// Not copyable or movable: handles and subscriptions refer to this object.
    registry(const registry&) = delete;
    registry& operator=(const registry&) = delete;

    /// The process-wide instance; created on first use and never destroyed.
    static registry& global();

    // ---- Reading (never locks) -----------------------------------------------------------

    /// `key` converted to `T`, or a failure whose code tells `missing`,
    /// `type_mismatch`, `out_of_range` and `invalid_key` apart; its message names
    /// the key, the types and the value's source.
    template <class T>
    result<T> read(std::string_view key) const {
        // Hit path, inline: `key` is a leaf's canonical text (read in place, no copy).
        std::optional<result<T>> out;
        const auto take = [&](const snapshot_entry* e) { out.emplace(convert<T>(e->val)); };
        if (leaves_->visit(key, take)) {
            if (*out) [[likely]]
                return std::move(*out);
            return annotate(key, out->error());
        }
        return read_slow<T>(key);
    }

    /// `key` converted to `T`, or nothing on any failure.
    template <class T>
    std::optional<T> get(std::string_view key) const {
        if constexpr (std::is_same_v<T, bool> || detail::is_integer_v<T>) {
            // Built here so that, once `get` is inlined, the optional stays in
            // registers: get_integral writes a plain `T`. An optional filled inside
            // the lookup is stored as a value and a flag, then reloaded as one word:
            // a store-forwarding stall on every hit (seen with g++ 12, -O2).
            T out{};
            if (get_integral(key, out)) return out;
        } else {
            std::optional<T> out;
            const auto take = [&](const value& v) {
                if (auto r = convert<T>(v)) out.emplace(std::move(*r));
            };
            if (leaves_->visit(key, [&](const snapshot_entry* e) { take(e->val); })) return out;
            visit_value(key, take);
            return out;
        }
        return std::nullopt;
    }

    /// `key` converted to `T`, or `fallback` on any failure.
    template <class T>
    T get_or(std::string_view key, T fallback) const {
        if (std::optional<T> v = get<T>(key)) return std::move(*v);
        return fallback;
    }

    /// `key` converted to `T`; throws `cfgreg::error` naming the key, the expected
    /// and the actual type, and the value's source.
    template <class T>
    T require(std::string_view key) const {
        return read<T>(key).value();
    }

    /// True when `key` has a leaf or any leaves under it.
    bool contains(std::string_view key) const;

    /// Canonical keys of the leaves at or under `prefix` ("" for all), in key order.
    std::vector<std::string> keys(std::string_view prefix = {}) const;

    /// Every effective value at the current generation.
    cfgreg::snapshot snapshot() const;

    /// Grows by one with every change of any effective value.
    std::uint64_t generation() const noexcept;

    /// A typed handle on `key`; see `setting<T>`. Takes the write mutex once; keep the handle.
    template <class T>
    cfgreg::setting<T> setting(std::string_view key, T fallback) {
        auto slot = std::make_shared<detail::setting_slot<T>>(std::move(fallback));
        auto canonical = attach_slot(key, slot);
        return cfgreg::setting<T>(std::move(slot), std::move(canonical));
    }

    // ---- Writing --------------------------------------------------------------------------

    /// Parses `path` and puts it in a file layer after the files loaded before it;
    /// loading the same path again replaces that layer's content in place. All or
    /// nothing: on a parse or I/O error the registry is unchanged and the failure
    /// carries file, line and column.
    status load_file(const std::filesystem::path& path);

    /// As `load_file`, with `name` standing for the file name in positions and provenance.
    status load_string(std::string_view text, std::string_view name);

    /// Reads variables named `PREFIX__A__B` into the env layer as key `a.b` (see
    /// README for the case rules); values parse as TOML literals when they can, else
    /// as strings. Replaces what an earlier `load_env` with the same prefix loaded.
    status load_env(std::string_view prefix);
    /// As above, from the given (name, value) pairs instead of the process environment.
    status load_env(std::string_view prefix,
                    const std::vector<std::pair<std::string, std::string>>& variables);

    /// Sets `key` in the defaults layer (below every file).
    status set_default(std::string_view key, value v);

    /// Sets `key` in the runtime layer (above everything); arrays and tables replace
    /// the whole subtree at `key`.
    status set(std::string_view key, value v);

    /// Removes the runtime layer's value at and under `key`, uncovering lower layers.
    status unset(std::string_view key);

    /// Marks `key` and everything under it secret: `dump`, `describe`, error
    /// messages and the CLI never print its values.
    status mark_secret(std::string_view key);

    /// True when `key` or an ancestor is marked secret.
    bool is_secret(std::string_view key) const;

    /// The effective value of `key`, its layer and source, and the values it shadows.
    description describe(std::string_view key) const;

    /// The effective configuration as text; see `snapshot::dump`.
    std::string dump(dump_format format = dump_format::toml, bool reveal_secrets = false) const;

    // ---- Hot reload, validation and notifications -------------------------------------------

    /// Reloads `files` whenever their content changes on disk, until the handle
    /// ends. Each file is (re)loaded once now, as by `load_file` under the same
    /// spelling, so a file loaded before keeps its place among the layers. A reload
    /// replaces that file's layer: keys removed from the file disappear unless
    /// another layer provides them. A file that fails to read, parse or validate is
    /// reported to the error handler and its last good content stays in effect; the
    /// watch goes on and applies the next good version.
    watch_handle watch(const std::filesystem::path& file, watch_options options = {});
    /// As above, for several files: files saved within one debounce window are
    /// validated and applied together, as one reload.
    watch_handle watch(const std::vector<std::filesystem::path>& files, watch_options options = {});

    /// Calls `fn` for each change of the effective value at `key` exactly;
    /// `set`, `unset`, loads and reloads all notify. See
    /// `cfgreg/subscription.hpp` for the threading rules.
    subscription subscribe(std::string_view key, std::function<void(const change_event&)> fn);
    /// As `subscribe`, for `prefix` and every key under it ("" for every key).
    subscription subscribe_prefix(std::string_view prefix,
                                  std::function<void(const change_event&)> fn);
    /// Calls `fn` once per change of the registry with all of its changes.
    subscription subscribe_batch(std::function<void(const change_batch&)> fn);

    /// A check of a candidate configuration: return an error message to reject it,
    /// or nothing to accept it; throwing rejects it too.
    using validator = std::function<std::optional<std::string>(const cfgreg::snapshot& candidate)>;

    /// Runs `fn` on every candidate that changes `key_or_prefix` or a key under it
    /// ("" for every candidate), before anything is applied. A rejection leaves the
    /// registry exactly as it was: the failing `set` or `load_*` returns
    /// errc::rejected, a failing reload is reported to the error handler.
    /// Validators run with the registry's write lock held: they may read the
    /// registry and the candidate, but must not write to the registry. They stay
    /// for the registry's lifetime.
    void validate(std::string_view key_or_prefix, validator fn);

    /// Receives errors that no caller can receive: failed reloads (with file, line
    /// and column), validation rejections of reloads, subscriber callbacks that
    /// threw, and a watch falling back to polling. Called on the thread that met the
    /// error, with no lock held. An empty function restores the default, which
    /// writes one line to stderr.
    void on_error(std::function<void(const error&)> handler);

    /// Private state; defined in src/registry_impl.hpp.
    struct impl;

  private:
    // read<T> once the map has missed `key` as given: the leaf or the table or array
    // that visit_value finds, or the failure that says why there is none.
    template <class T>
    result<T> read_slow(std::string_view key) const {
        std::optional<result<T>> out;
        if (!visit_value(key, [&](const value& v) { out.emplace(convert<T>(v)); })) {
            // An invalid key or a missing one; or, if a write came in since, the value.
            auto composite = lookup_composite(key);
            if (!composite) return composite.error();
            out.emplace(convert<T>(*composite));
        }
        if (!*out) return annotate(key, out->error());
        return std::move(*out);
    }

    // get<T> for bool and the integer types: true with `out` set on success, false
    // with `out` untouched otherwise. The same rules as convert<T>, without building a
    // `result` on the hit path.
    template <class T>
    bool get_integral(std::string_view key, T& out) const {
        bool ok = false;
        const auto take = [&](const value& v) {
            if constexpr (std::is_same_v<T, bool>) {
                if (const bool* b = v.as_bool()) {
                    out = *b;
                    ok = true;
                }
            } else if (const std::int64_t* i = v.as_integer()) {
                if (std::in_range<T>(*i)) {
                    out = static_cast<T>(*i);
                    ok = true;
                }
            }
        };

        // A table or an array never converts to a bool or an integer: it is not built.
        if (!leaves_->visit(key, [&](const snapshot_entry* e) { take(e->val); }))
            visit_value(key, take, composites::skipped);
        return ok;
    }

    // Whether visit_value builds a table or an array to pass to `f`, or only reports it.
    enum class composites { built, skipped };
    // The path of get, read and contains once the map has missed `key` as given: true when
    // `key` names a leaf (`f` gets it) or a table or an array (`f` gets it if `with`
    // says built). Unlike read_slow it builds no error text, so that a missing key
    // costs a parse of `key` and a binary search.
    bool visit_value(std::string_view key, detail::function_ref<void(const value&)> f,
                     composites with = composites::built) const;
    result<value> lookup_composite(std::string_view key) const;
    failure annotate(std::string_view key, failure f) const;
    std::shared_ptr<const std::string> attach_slot(std::string_view key,
                                                   std::shared_ptr<detail::slot_base> slot);

    std::unique_ptr<impl> impl_;
    // impl_'s map of every effective leaf, by canonical key; each points into a layer's
    // list of leaves, which stays alive while a reader that found it is pinned.
    const sync_map<std::string, const snapshot_entry*>* leaves_;
};

}  // namespace cfgreg
