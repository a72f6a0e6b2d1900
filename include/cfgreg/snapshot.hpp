// SPDX-License-Identifier: MIT
// An immutable view of every effective value of a registry at one generation.
#pragma once

// Thread safety: a `snapshot` is immutable. Any number of threads may read one
// snapshot or copies of it concurrently, while the registry keeps changing; the
// snapshot never changes. Copying one costs a reference-count increment. References
// obtained from a snapshot (entries, keys, values) stay valid as long as that
// snapshot or a copy of it is alive.

#include <compare>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cfgreg/error.hpp"
#include "cfgreg/key_path.hpp"
#include "cfgreg/value.hpp"

namespace cfgreg {

/// The layers of a registry, lowest precedence first.
enum class layer : std::uint8_t { defaults, file, env, runtime };

/// "defaults", "file", "env" or "runtime".
const char* to_string(layer l) noexcept;

/// Output formats of `dump`. `json` is plain JSON (date-times as strings);
/// `tagged_json` keeps every TOML type, in the notation of the toml-test suite
/// (`{"type": "integer", "value": "42"}`).
enum class dump_format : std::uint8_t { toml, json, tagged_json };

/// One effective leaf: a scalar, an empty array or an empty table, with its provenance:
/// `path` is its key, `val` its effective value and `from` the layer that provides it.
struct snapshot_entry {
    key_path path;
    value val;
    cfgreg::layer from = layer::defaults;
    /// File, line and column for files; layer or variable name otherwise. The text it
    /// views lives as long as the snapshot (convert to `source_position` to keep it).
    source_view where;
    bool secret = false;  ///< marked secret; `dump` and `describe` never print `val`
};

namespace detail {

/// The leaves of one layer, sorted by `key_path` and immutable once a commit holds
/// them. A layer, every snapshot that shows its leaves and the registry's map of
/// leaves all share this one list; none copies a leaf.
struct leaf_list {
    std::vector<snapshot_entry> entries;
    /// The texts that the leaves' `where` views: one per source (file, variable, layer).
    std::vector<std::shared_ptr<const std::string>> sources;
};

/// The shared state behind snapshots. `entries`, sorted by `key_path` order, point
/// into the layers' lists that `lists` keeps alive, or into `secret_copies` for the
/// leaves marked secret (the lists are shared with states that mark other keys).
struct snapshot_state {
    std::uint64_t generation = 0;
    std::vector<const snapshot_entry*> entries;
    std::vector<key_path> secrets;
    std::vector<std::shared_ptr<const leaf_list>> lists;
    std::vector<std::unique_ptr<const snapshot_entry>> secret_copies;

    using const_iterator = std::vector<const snapshot_entry*>::const_iterator;

    /// The first entry at or under `prefix`, or `entries.end()`.
    const_iterator lower_bound(const key_path& prefix) const;
    /// The leaf at `path`, a composite assembled from the leaves under it, or `missing`.
    result<value> lookup(const key_path& path) const;
    /// True when `path` or an ancestor is marked secret.
    bool is_secret(const key_path& path) const;
};

}  // namespace detail

/// Every effective value at one generation, in key order (see `key_path`'s ordering).
///
///     cfgreg::snapshot s = reg.snapshot();
///     for (const cfgreg::snapshot_entry& e : s) print(e.path.str(), e.val.to_toml());
///     auto port = s.get<int>("server.port");   // the same generation as every other read
class snapshot {
  public:
    /// A random-access iterator over the entries, yielding `const snapshot_entry&`.
    class const_iterator {
      public:
        using iterator_category = std::random_access_iterator_tag;
        using iterator_concept = std::random_access_iterator_tag;
        using value_type = snapshot_entry;
        using difference_type = std::ptrdiff_t;
        using pointer = const snapshot_entry*;
        using reference = const snapshot_entry&;

        const_iterator() = default;
        explicit const_iterator(const snapshot_entry* const* at) noexcept : at_(at) {}

        reference operator*() const noexcept { return **at_; }
        pointer operator->() const noexcept { return *at_; }
        reference operator[](difference_type n) const noexcept { return *at_[n]; }

        const_iterator& operator++() noexcept { return ++at_, *this; }
        const_iterator& operator--() noexcept { return --at_, *this; }
        const_iterator operator++(int) noexcept { return const_iterator(at_++); }
        const_iterator operator--(int) noexcept { return const_iterator(at_--); }
        const_iterator& operator+=(difference_type n) noexcept { return at_ += n, *this; }
        const_iterator& operator-=(difference_type n) noexcept { return at_ -= n, *this; }
        friend const_iterator operator+(const_iterator i, difference_type n) noexcept {
            return i += n;
        }
        friend const_iterator operator+(difference_type n, const_iterator i) noexcept {
            return i += n;
        }
        friend const_iterator operator-(const_iterator i, difference_type n) noexcept {
            return i -= n;
        }
        friend difference_type operator-(const_iterator a, const_iterator b) noexcept {
            return a.at_ - b.at_;
        }
        friend bool operator==(const_iterator, const_iterator) noexcept = default;
        friend auto operator<=>(const_iterator, const_iterator) noexcept = default;

      private:
        const snapshot_entry* const* at_ = nullptr;
    };

    /// An empty snapshot at generation 0.
    snapshot();
    /// Shares `state` (made by the registry); precondition: not null.
    explicit snapshot(std::shared_ptr<const detail::snapshot_state> state)
        : state_(std::move(state)) {}

    /// The registry's generation when this was taken; it grows by one with every change.
    std::uint64_t generation() const noexcept { return state_->generation; }
    /// The number of effective leaves.
    std::size_t size() const noexcept { return state_->entries.size(); }
    /// True when no key has a value.
    bool empty() const noexcept { return state_->entries.empty(); }
    /// The entries in key order; valid as long as any copy of this snapshot lives.
    const_iterator begin() const noexcept { return const_iterator(state_->entries.data()); }
    /// The end of the entries.
    const_iterator end() const noexcept {
        return const_iterator(state_->entries.data() + state_->entries.size());
    }

    /// The leaf at `key`, or the array or table assembled from the leaves under it;
    /// fails with `missing` or `invalid_key`.
    result<value> lookup(std::string_view key) const;

    /// `key` converted to `T`; failures as in `registry::read`.
    template <class T>
    result<T> read(std::string_view key) const {
        auto v = lookup(key);
        if (!v) return v.error();
        auto out = convert<T>(*v);
        if (!out) return annotate(key, out.error());
        return out;
    }

    /// `key` converted to `T`, or nothing on any failure.
    template <class T>
    std::optional<T> get(std::string_view key) const {
        auto r = read<T>(key);
        if (!r) return std::nullopt;
        return std::move(*r);
    }

    /// Canonical keys of the leaves at or under `prefix` (all leaves for ""), in key order.
    std::vector<std::string> keys(std::string_view prefix = {}) const;

    /// True when `key` or one of its ancestors is marked secret.
    bool is_secret(std::string_view key) const;

    /// The configuration as text; secret values print as the string "<secret>"
    /// unless `reveal_secrets` is set.
    std::string dump(dump_format format = dump_format::toml, bool reveal_secrets = false) const;

  private:
    failure annotate(std::string_view key, failure f) const;

    std::shared_ptr<const detail::snapshot_state> state_;
};

}  // namespace cfgreg
