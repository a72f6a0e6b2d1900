// SPDX-License-Identifier: MIT
// Key paths in TOML's own syntax (`a.b`, `a."x.y"`, `'lit'.z`, `servers[1].host`).
#pragma once

// Thread safety: a `key_path` is a plain value; concurrent reads of one
// object are safe, and writes (assignment, `push_*`) need external
// synchronization. Views returned by `name()` and `str()` live as long as the
// object is not modified or destroyed.

#include <compare>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "cfgreg/error.hpp"

namespace cfgreg {

/// A parsed key: a sequence of table keys and array indices. Keys are
/// case-sensitive, and a quoted key containing dots is one segment, so
/// `a."b.c"` and `a.b.c` never collide.
///
/// Every key path has one canonical text (`str()`): bare keys where TOML allows
/// them, other keys as basic strings, indices as `[n]` with no separator before
/// them. Parsing any spelling and printing gives that text, so `a . "b"`,
/// `'a'.b` and `a.b` are one key.
class key_path {
  public:
    /// One step of a path.
    class segment {
      public:
        static segment key(std::string name) { return segment(std::move(name), 0, false); }
        static segment at(std::size_t index) { return segment({}, index, true); }

        bool is_index() const noexcept { return is_index_; }
        /// The table key (unquoted); empty for an index.
        const std::string& name() const noexcept { return name_; }
        /// The array index; 0 for a table key.
        std::size_t index() const noexcept { return index_; }

        /// Indices order before keys; keys order byte-wise, indices numerically.
        friend std::strong_ordering operator<=>(const segment& a, const segment& b) noexcept;
        friend bool operator==(const segment& a, const segment& b) noexcept = default;

      private:
        segment(std::string name, std::size_t index, bool is_index)
            : name_(std::move(name)), index_(index), is_index_(is_index) {}

        std::string name_;
        std::size_t index_;
        bool is_index_;
    };

    /// The empty path: the root table.
    key_path() = default;

    /// Parses `text`; throws `cfgreg::error` with `errc::invalid_key` when it is not
    /// a key path. The empty string is the root.
    explicit key_path(std::string_view text);

    /// Parses `text` without throwing.
    static result<key_path> parse(std::string_view text);

    /// Appends a table key or an array index.
    key_path& push_key(std::string name);
    key_path& push_index(std::size_t index);

    /// A copy with one more segment.
    key_path child(std::string name) const;
    key_path at(std::size_t index) const;

    /// This path without its last segment; precondition: `!empty()`.
    key_path parent() const;

    /// True for the root (no segment).
    bool empty() const noexcept { return segments_.empty(); }
    /// The number of segments.
    std::size_t size() const noexcept { return segments_.size(); }
    /// The segment at `i`; precondition: `i < size()`.
    const segment& operator[](std::size_t i) const noexcept { return segments_[i]; }
    /// All segments, root first.
    const std::vector<segment>& segments() const noexcept { return segments_; }
    /// The last segment; precondition: `!empty()`.
    const segment& back() const noexcept { return segments_.back(); }

    /// The canonical text.
    const std::string& str() const noexcept { return text_; }

    /// True when `prefix` is this path or one of its ancestors (the root prefixes everything).
    bool starts_with(const key_path& prefix) const noexcept;

    /// Segment-wise order: a parent sorts before its children, siblings by
    /// `segment` order (so `a[2]` before `a[10]`). This is the order of
    /// snapshots, listings and dumps.
    friend std::strong_ordering operator<=>(const key_path& a, const key_path& b) noexcept;
    friend bool operator==(const key_path& a, const key_path& b) noexcept {
        return a.text_ == b.text_;
    }

  private:
    void append_text(const segment& s);

    std::vector<segment> segments_;
    std::string text_;
};

/// `name` as one key segment: bare when TOML allows it, else a quoted basic string.
std::string quote_key_segment(std::string_view name);

}  // namespace cfgreg
