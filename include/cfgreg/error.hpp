// SPDX-License-Identifier: MIT
// The one error model of cfgreg: an error code, a message and where the input came from.
#pragma once

// Thread safety: `error`, `failure` and `result` are plain values. Distinct objects
// may be used from different threads freely; one object needs external
// synchronization only if a thread assigns to it while others read it. Nothing here
// refers to registry state, so a `result` stays valid after the registry it came
// from changes or is destroyed.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace cfgreg {

/// What went wrong. Reads produce `missing`, `type_mismatch` and `out_of_range`;
/// loading produces `parse_error` and `io_error`; `invalid_key` and
/// `invalid_argument` report bad input to any member; `rejected`, `callback_failed`
/// and `watch_degraded` reach the error handler.
enum class errc : std::uint8_t {
    missing = 1,       ///< no value at the key (in any layer)
    type_mismatch,     ///< a value exists, but its TOML type does not convert to the request
    out_of_range,      ///< the type converts, but this value does not fit (or is not exact)
    parse_error,       ///< the TOML input is malformed
    io_error,          ///< a file could not be read
    invalid_key,       ///< the key path is not valid TOML key syntax
    invalid_argument,  ///< any other unusable argument
    rejected,          ///< a validator rejected a candidate configuration
    callback_failed,   ///< a subscriber's callback threw
    watch_degraded,    ///< file watching fell back to polling
};

/// A short lower-case name of `code` ("missing", "type mismatch", ...).
const char* to_string(errc code) noexcept;

/// Where a value or an error came from. `line` and `column` are 1-based; 0 means unknown.
struct source_position {
    std::string source;  ///< file path, a name given to load_string, or a layer name
    std::uint32_t line = 0;
    std::uint32_t column = 0;

    /// "source:line:column", "source:line" or "source", whichever parts are known.
    std::string to_string() const;

    friend bool operator==(const source_position&, const source_position&) = default;
};

/// A `source_position` whose source text lives elsewhere. A snapshot's entries
/// hold these: every leaf of one file views one copy of the file's name, which
/// lives as long as the snapshot.
struct source_view {
    std::string_view source;
    std::uint32_t line = 0;
    std::uint32_t column = 0;

    /// As `source_position::to_string`.
    std::string to_string() const;
    /// A position that owns a copy of the source text.
    operator source_position() const { return {std::string(source), line, column}; }

    friend bool operator==(const source_view&, const source_view&) = default;
};

/// The exception thrown by `require`, by `result::value` on failure, and by loading
/// members that are documented to throw. `what()` reads "source:line:column:
/// message" when the position is known.
class error : public std::runtime_error {
  public:
    /// An error of kind `code`; `what()` is built from `where` and `message`.
    error(errc code, std::string message, source_position where = {});

    /// The kind of failure, to branch on.
    errc code() const noexcept { return code_; }
    /// The message without the position prefix.
    const std::string& message() const noexcept { return message_; }
    /// Where the failure was found; empty parts are unknown.
    const source_position& where() const noexcept { return where_; }

  private:
    errc code_;
    std::string message_;
    source_position where_;
};

/// A failed outcome without an exception: the code to branch on and a message for people.
struct failure {
    errc code = errc::missing;  ///< the kind of failure
    std::string message;        ///< one line for people, without the position
    source_position where;      ///< where it was found, when known
};

/// Either a `T` or a `failure`; the library's `expected`. Test it with `if (r)`,
/// then read `*r`; or call `value()`, which throws `cfgreg::error` on failure.
template <class T>
class result {
  public:
    /// A success holding `v`, or a failure holding `f`; both implicit, so a function
    /// returning `result<T>` may return either.
    result(T v) : state_(std::in_place_index<0>, std::move(v)) {}
    result(failure f) : state_(std::in_place_index<1>, std::move(f)) {}

    /// True on success; `if (r)` tests the same.
    bool has_value() const noexcept { return state_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    /// The value; precondition: `has_value()`.
    const T& operator*() const& noexcept { return *std::get_if<0>(&state_); }
    T&& operator*() && noexcept { return std::move(*std::get_if<0>(&state_)); }
    T& operator*() & noexcept { return *std::get_if<0>(&state_); }
    const T* operator->() const noexcept { return std::get_if<0>(&state_); }
    T* operator->() noexcept { return std::get_if<0>(&state_); }

    /// The value, or throws `cfgreg::error` carrying the failure.
    const T& value() const& {
        throw_if_failed();
        return **this;
    }
    T&& value() && {
        throw_if_failed();
        return std::move(*std::get_if<0>(&state_));
    }

    /// A copy of the value, or `fallback` converted to `T` on failure. Never throws
    /// beyond what copying or converting throws.
    template <class U>
    T value_or(U&& fallback) const& {
        return has_value() ? **this : static_cast<T>(std::forward<U>(fallback));
    }

    /// The failure; precondition: `!has_value()`.
    const failure& error() const noexcept { return *std::get_if<1>(&state_); }
    /// The failure's code, or `errc{}` (zero) when there is a value.
    errc code() const noexcept { return has_value() ? errc{} : error().code; }

  private:
    void throw_if_failed() const {
        if (!has_value()) {
            const failure& f = error();
            throw cfgreg::error(f.code, f.message, f.where);
        }
    }

    std::variant<T, failure> state_;
};

/// The outcome of an operation that produces nothing but may fail.
using status = result<std::monostate>;

}  // namespace cfgreg
