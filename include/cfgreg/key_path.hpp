// SPDX-License-Identifier: MIT
// Key paths in TOML's own syntax (`a.b`, `a."x.y"`, `'lit'.z`, `servers[1].host`).
#pragma once

// Thread safety: a `key_path` is a plain value; concurrent reads of one
// object are safe, and writes (assignment, `push_*`) need external
// synchronization. Segments, and the views returned by `name()` and `str()`, live
// as long as the object is not modified or destroyed.

#include <compare>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

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
    /// One step of a path: a view into the `key_path` it came from (or, from
    /// `key`, into the caller's text), valid while that is neither modified nor
    /// destroyed.
    class segment {
      public:
        static segment key(std::string_view name) { return segment(name, 0, false); }
        static segment at(std::size_t index) { return segment({}, index, true); }

        bool is_index() const noexcept { return is_index_; }
        /// The table key (unquoted); empty for an index.
        std::string_view name() const noexcept { return name_; }
        /// The array index; 0 for a table key.
        std::size_t index() const noexcept { return index_; }

        /// Indices order before keys; keys order byte-wise, indices numerically.
        friend std::strong_ordering operator<=>(const segment& a, const segment& b) noexcept;
        friend bool operator==(const segment& a, const segment& b) noexcept = default;

      private:
        segment(std::string_view name, std::size_t index, bool is_index)
            : name_(name), index_(index), is_index_(is_index) {}

        std::string_view name_;
        std::size_t index_;
        bool is_index_;
    };

    /// The segments of a path, in order, as a forward range of `segment` values.
    class segment_range {
      public:
        class iterator {
          public:
            using iterator_category = std::input_iterator_tag;  // yields values
            using iterator_concept = std::forward_iterator_tag;
            using value_type = segment;
            using difference_type = std::ptrdiff_t;
            using pointer = void;
            using reference = segment;

            iterator() = default;
            iterator(const key_path* path, std::size_t i) noexcept : path_(path), i_(i) {}
            segment operator*() const noexcept { return (*path_)[i_]; }
            iterator& operator++() noexcept { return ++i_, *this; }
            iterator operator++(int) noexcept { return iterator(path_, i_++); }
            friend bool operator==(const iterator& a, const iterator& b) noexcept {
                return a.i_ == b.i_;
            }

          private:
            const key_path* path_ = nullptr;
            std::size_t i_ = 0;
        };

        explicit segment_range(const key_path* path) noexcept : path_(path) {}
        iterator begin() const noexcept { return iterator(path_, 0); }
        iterator end() const noexcept { return iterator(path_, path_->size()); }
        std::size_t size() const noexcept { return path_->size(); }
        bool empty() const noexcept { return path_->empty(); }
        segment operator[](std::size_t i) const noexcept { return (*path_)[i]; }

      private:
        const key_path* path_;
    };

    /// The empty path: the root table.
    key_path() = default;

    /// Parses `text`; throws `cfgreg::error` with `errc::invalid_key` when it is not
    /// a key path. The empty string is the root.
    explicit key_path(std::string_view text);

    /// Parses `text` without throwing.
    static result<key_path> parse(std::string_view text);

    /// Appends a table key or an array index.
    key_path& push_key(std::string_view name);
    key_path& push_index(std::size_t index);

    /// Removes the last segment; precondition: `!empty()`.
    void pop_back() noexcept;

    /// A copy with one more segment.
    key_path child(std::string_view name) const;
    key_path at(std::size_t index) const;

    /// This path without its last segment; precondition: `!empty()`.
    key_path parent() const;

    /// True for the root (no segment).
    bool empty() const noexcept { return size_ == 0; }
    /// The number of segments.
    std::size_t size() const noexcept { return size_; }
    /// The segment at `i`; precondition: `i < size()`.
    segment operator[](std::size_t i) const noexcept;
    /// All segments, root first.
    segment_range segments() const noexcept { return segment_range(this); }
    /// The last segment; precondition: `!empty()`.
    segment back() const noexcept { return (*this)[size_ - 1]; }

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
    // Compact on purpose: a registry keeps one path per leaf. `text_` is the
    // canonical text; `meta_` holds `size_` offsets in `text_`, where each
    // segment's token (a bare key, a quoted key or `[digits]`) ends, `width_`
    // bytes each (2 until the text outgrows 16 bits, then 4), then, for each
    // quoted key in order, a 32-bit length and the unquoted name. Up to seven
    // segments, `meta_` fits in the string's own buffer.
    void add_segment(std::string_view quoted_name, bool quoted);
    void widen();

    std::string text_;
    std::string meta_;
    std::uint32_t size_ = 0;
    std::uint8_t width_ = 2;
};

/// `name` as one key segment: bare when TOML allows it, else a quoted basic string.
std::string quote_key_segment(std::string_view name);

}  // namespace cfgreg
