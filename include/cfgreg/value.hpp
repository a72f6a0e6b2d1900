// SPDX-License-Identifier: MIT
// The immutable value type that holds anything TOML can express, and typed conversions from it.
#pragma once

// Thread safety: a `value` is immutable after construction. Any number of threads
// may read the same `value`, copy it and convert it concurrently without
// synchronization; arrays and tables share their elements between copies, which is
// safe because nobody can modify them. References returned by accessors
// (`as_string`, `as_array`, ...) live as long as the `value` they came from (or any
// copy of it, for arrays and tables).

#include <chrono>
#include <compare>
#include <cstdint>
#include <limits>
#include <memory>
#include <ratio>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "cfgreg/error.hpp"

namespace cfgreg {

/// The TOML type of a value.
enum class value_type : std::uint8_t {
    boolean,
    integer,
    floating,
    string,
    offset_date_time,
    local_date_time,
    local_date,
    local_time,
    array,
    table,
};

/// TOML's name for `t` ("boolean", "integer", "float", "string", "offset date-time", ...).
const char* to_string(value_type t) noexcept;

/// A calendar date without a time zone, as TOML's local date.
struct local_date {
    std::int32_t year = 1970;  ///< Gregorian calendar year, as written
    std::uint8_t month = 1;    ///< 1..12
    std::uint8_t day = 1;      ///< 1..31
    friend auto operator<=>(const local_date&, const local_date&) = default;
};

/// A time of day without a date or time zone, as TOML's local time.
struct local_time {
    std::uint8_t hour = 0;         ///< 0..23
    std::uint8_t minute = 0;       ///< 0..59
    std::uint8_t second = 0;       ///< seconds within the minute, as written
    std::uint32_t nanosecond = 0;  ///< 0..999'999'999
    friend auto operator<=>(const local_time&, const local_time&) = default;
};

/// A date and a time without a time zone, as TOML's local date-time.
struct local_date_time {
    local_date date;  ///< the calendar date
    local_time time;  ///< the time on that date
    friend auto operator<=>(const local_date_time&, const local_date_time&) = default;
};

/// A date and a time at a UTC offset, as TOML's offset date-time. Two values are
/// equal only when date, time and offset all are; compare `to_sys_time()`
/// results to compare instants.
struct offset_date_time {
    local_date date;                  ///< the calendar date at the offset
    local_time time;                  ///< the time of day at the offset
    std::int16_t offset_minutes = 0;  ///< east of UTC; `Z` is 0
    friend bool operator==(const offset_date_time&, const offset_date_time&) = default;

    /// The instant this denotes.
    std::chrono::sys_time<std::chrono::nanoseconds> to_sys_time() const;
};

class value;

/// The elements of an array value.
using array = std::vector<value>;

/// The entries of a table value, sorted by key (byte-wise); keys are unique.
using table = std::vector<std::pair<std::string, value>>;

namespace detail {

/// The character types: integral, but not the numbers that TOML integers are.
template <class T, class U = std::remove_cv_t<T>>
inline constexpr bool is_character_v =
    std::is_same_v<U, char> || std::is_same_v<U, wchar_t> || std::is_same_v<U, char8_t> ||
    std::is_same_v<U, char16_t> || std::is_same_v<U, char32_t>;

/// The integer types that TOML integers convert to and from, range-checked.
template <class T>
inline constexpr bool is_integer_v =
    std::is_integral_v<T> && !std::is_same_v<std::remove_cv_t<T>, bool> && !is_character_v<T>;

}  // namespace detail

/// One TOML value. Default-constructed, it is an empty table.
class value {
  public:
    /// An empty table.
    value();
    /// A value of the matching TOML type; implicit, so `reg.set("k", 8080)` reads naturally.
    value(bool b) : data_(b) {}
    value(std::int64_t i) : data_(i) {}
    /// Any other integer type is widened to 64 bits; unsigned values above
    /// INT64_MAX throw `cfgreg::error` with `errc::out_of_range` (TOML
    /// integers are signed 64-bit). A character (`'x'`) is not a number: store
    /// it as a string.
    template <class I>
    requires(detail::is_integer_v<I> && !std::is_same_v<I, std::int64_t>) value(I i)
        : data_(checked_integer(i)) {}
    /// Deleted so that `'x'` fails here, by name, rather than as an ambiguous conversion.
    template <class C>
    requires detail::is_character_v<C> value(C)
    = delete;
    /// A float; `float` is widened to `double`.
    value(double d) : data_(d) {}
    value(float f) : data_(static_cast<double>(f)) {}
    /// A string, copied.
    value(std::string s) : data_(std::move(s)) {}
    value(std::string_view s) : data_(std::string(s)) {}
    value(const char* s) : data_(std::string(s)) {}
    /// A date, a time or a date-time, of the matching TOML type.
    value(offset_date_time v) : data_(v) {}
    value(local_date_time v) : data_(v) {}
    value(local_date v) : data_(v) {}
    value(local_time v) : data_(v) {}
    /// An array of `elements`, in order; TOML 1.0 allows mixed types.
    value(array elements);
    /// Sorts `entries` by key; throws `cfgreg::error` (`invalid_argument`) on a duplicate key.
    value(table entries);

    /// The TOML type.
    value_type type() const noexcept { return static_cast<value_type>(data_.index()); }
    /// True for an array (`is_table` likewise for a table).
    bool is_array() const noexcept { return type() == value_type::array; }
    bool is_table() const noexcept { return type() == value_type::table; }
    /// True for everything but arrays and tables.
    bool is_scalar() const noexcept { return !is_array() && !is_table(); }

    /// The stored object when the type matches exactly, else nullptr. No conversion.
    const bool* as_bool() const noexcept { return std::get_if<bool>(&data_); }
    const std::int64_t* as_integer() const noexcept { return std::get_if<std::int64_t>(&data_); }
    const double* as_floating() const noexcept { return std::get_if<double>(&data_); }
    const std::string* as_string() const noexcept { return std::get_if<std::string>(&data_); }
    const offset_date_time* as_offset_date_time() const noexcept {
        return std::get_if<offset_date_time>(&data_);
    }
    const local_date_time* as_local_date_time() const noexcept {
        return std::get_if<local_date_time>(&data_);
    }
    const local_date* as_local_date() const noexcept { return std::get_if<local_date>(&data_); }
    const local_time* as_local_time() const noexcept { return std::get_if<local_time>(&data_); }
    /// The elements, or nullptr when this is not an array.
    const array* as_array() const noexcept;
    /// The entries, or nullptr when this is not a table.
    const table* as_table() const noexcept;

    /// The entry `key` of a table, or nullptr (also when this is not a table).
    const value* find(std::string_view key) const noexcept;

    /// Deep equality. Floats compare as doubles, so a NaN never equals anything; use
    /// `same_as` to treat NaN as equal to NaN.
    friend bool operator==(const value& a, const value& b) noexcept;
    /// Deep equality where NaN equals NaN (and -0.0 differs from 0.0): "loads back the same".
    bool same_as(const value& other) const noexcept;

    /// This value as a TOML literal: `42`, `"text"`, `[1, 2]`, `{ a = 1 }`, `1979-05-27`.
    std::string to_toml() const;
    /// This value as plain JSON: numbers, strings, booleans, arrays and
    /// objects; date-times become strings in TOML's notation, and `nan`/`inf`
    /// become the strings "nan", "inf".
    std::string to_json() const;

  private:
    template <class I>
    static std::int64_t checked_integer(I i) {
        if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
            if (i > static_cast<I>(std::numeric_limits<std::int64_t>::max()))
                throw error(errc::out_of_range, "integer does not fit in a TOML integer");
        }
        return static_cast<std::int64_t>(i);
    }

    std::variant<bool, std::int64_t, double, std::string, offset_date_time, local_date_time,
                 local_date, local_time, std::shared_ptr<const array>, std::shared_ptr<const table>>
        data_;
};

/// Parses `text` as one TOML value (`42`, `"x"`, `[1, 2]`, `{ a = 1 }`,
/// `1979-05-27`); fails with `parse_error`.
result<value> parse_value(std::string_view text);

/// Parses a duration such as "250ms", "10s", "1h30m", "1.5h" or "-2m": one or more
/// decimal numbers, each followed by a unit of ns, us (or µs), ms, s, m, h or d.
/// Fails with `type_mismatch` on bad syntax and `out_of_range` past about 292 years.
result<std::chrono::nanoseconds> parse_duration(std::string_view text);

/// Conversion from a `value` to `T`; the library defines it for bool, every
/// integer type (not the character types: `char`, `wchar_t`, `char8_t` and so
/// on), float and double, std::string, the four date/time types, std::chrono
/// durations (from duration strings), std::chrono::year_month_day and sys_days
/// (from a local date), std::chrono::sys_time (from an offset date-time),
/// std::chrono::local_time (from a local date-time), std::vector of any of
/// these, and `value` itself. Users may specialize it for their own types with
/// `static result<T> from(const value&)`.
template <class T, class = void>
struct converter;

/// Converts `v` to `T`: `missing` never, `type_mismatch` when the TOML type does not
/// convert, `out_of_range` when the type does but the value does not fit exactly.
/// Messages name the types and never contain the value itself (keys may be secret).
template <class T>
result<T> convert(const value& v) {
    return converter<T>::from(v);
}

namespace detail {

failure mismatch(const value& v, std::string_view wanted);
failure out_of_range(std::string_view what);

template <class I>
std::string integer_label() {
    return std::string(std::is_signed_v<I> ? "int" : "uint") + std::to_string(sizeof(I) * 8);
}

template <class T>
struct is_duration : std::false_type {};
template <class R, class P>
struct is_duration<std::chrono::duration<R, P>> : std::true_type {};

template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};

}  // namespace detail

template <>
struct converter<value> {
    static result<value> from(const value& v) { return v; }
};

template <>
struct converter<bool> {
    static result<bool> from(const value& v) {
        if (const bool* b = v.as_bool()) return *b;
        return detail::mismatch(v, "boolean");
    }
};

template <class C>
struct converter<C, std::enable_if_t<detail::is_character_v<C>>> {
    static_assert(!detail::is_character_v<C>,
                  "cfgreg: a character type is not a number; read std::int8_t or "
                  "std::uint8_t for a small integer, std::string for text");
};

template <class I>
struct converter<I, std::enable_if_t<detail::is_integer_v<I>>> {
    static result<I> from(const value& v) {
        const std::int64_t* i = v.as_integer();
        if (i == nullptr)
            return detail::mismatch(v, "integer (" + detail::integer_label<I>() + ")");
        if (!std::in_range<I>(*i))
            return detail::out_of_range("integer does not fit in " + detail::integer_label<I>());
        return static_cast<I>(*i);
    }
};

template <class F>
struct converter<F, std::enable_if_t<std::is_floating_point_v<F>>> {
    static result<F> from(const value& v) {
        double d = 0;
        if (const double* p = v.as_floating()) {
            d = *p;
        } else if (const std::int64_t* i = v.as_integer()) {
            d = static_cast<double>(*i);
        } else {
            return detail::mismatch(v, "float");
        }
        if constexpr (sizeof(F) < sizeof(double)) {
            const double limit = static_cast<double>(std::numeric_limits<F>::max());
            if (d == d && (d > limit || d < -limit) &&
                d != std::numeric_limits<double>::infinity() &&
                d != -std::numeric_limits<double>::infinity())
                return detail::out_of_range("float does not fit in a 32-bit float");
        }
        return static_cast<F>(d);
    }
};

template <>
struct converter<std::string> {
    static result<std::string> from(const value& v) {
        if (const std::string* s = v.as_string()) return *s;
        return detail::mismatch(v, "string");
    }
};

template <>
struct converter<offset_date_time> {
    static result<offset_date_time> from(const value& v) {
        if (const auto* p = v.as_offset_date_time()) return *p;
        return detail::mismatch(v, "offset date-time");
    }
};

template <>
struct converter<local_date_time> {
    static result<local_date_time> from(const value& v) {
        if (const auto* p = v.as_local_date_time()) return *p;
        return detail::mismatch(v, "local date-time");
    }
};

template <>
struct converter<local_date> {
    static result<local_date> from(const value& v) {
        if (const auto* p = v.as_local_date()) return *p;
        return detail::mismatch(v, "local date");
    }
};

template <>
struct converter<local_time> {
    static result<local_time> from(const value& v) {
        if (const auto* p = v.as_local_time()) return *p;
        return detail::mismatch(v, "local time");
    }
};

template <>
struct converter<std::chrono::year_month_day> {
    static result<std::chrono::year_month_day> from(const value& v) {
        const local_date* d = v.as_local_date();
        if (d == nullptr) return detail::mismatch(v, "local date");
        return std::chrono::year_month_day{std::chrono::year{d->year}, std::chrono::month{d->month},
                                           std::chrono::day{d->day}};
    }
};

template <>
struct converter<std::chrono::sys_days> {
    static result<std::chrono::sys_days> from(const value& v) {
        auto ymd = converter<std::chrono::year_month_day>::from(v);
        if (!ymd) return ymd.error();
        return std::chrono::sys_days{*ymd};
    }
};

namespace detail {

/// `whole` seconds plus `sub` (under a second) as a duration of type `D`: `out_of_range` when
/// `D` cannot hold it exactly, instead of overflowing for dates far from 1970.
template <class D>
result<D> exact_ticks(std::chrono::seconds whole, std::chrono::nanoseconds sub) {
    using namespace std::chrono;
    using rep = typename D::rep;
    if constexpr (std::is_floating_point_v<rep>) {
        return duration_cast<D>(whole) + duration_cast<D>(sub);
    } else if constexpr (std::ratio_less_v<typename D::period, std::ratio<1>>) {
        const D fraction = duration_cast<D>(sub);
        if (duration_cast<nanoseconds>(fraction) != sub)
            return out_of_range("date-time is not a whole number of the clock's ticks");
        constexpr rep per_second = duration_cast<D>(seconds{1}).count();
        // One second of margin keeps the fraction's addition from overflowing as well.
        constexpr rep limit = std::numeric_limits<rep>::max() / per_second - 1;
        if (whole.count() > limit || whole.count() < -limit)
            return out_of_range("date-time is outside the range of the clock");
        return D{static_cast<rep>(whole.count()) * per_second} + fraction;
    } else {
        if (sub.count() != 0)
            return out_of_range("date-time is not a whole number of the clock's ticks");
        const D cast = duration_cast<D>(whole);
        if (duration_cast<seconds>(cast) != whole)
            return out_of_range("date-time is not a whole number of the clock's ticks");
        return cast;
    }
}

}  // namespace detail

template <class D>
struct converter<std::chrono::sys_time<D>,
                 std::enable_if_t<!std::is_same_v<D, std::chrono::days>>> {
    static result<std::chrono::sys_time<D>> from(const value& v) {
        const offset_date_time* p = v.as_offset_date_time();
        if (p == nullptr) return detail::mismatch(v, "offset date-time");
        using namespace std::chrono;
        const sys_days day_part{
            year_month_day{year{p->date.year}, month{p->date.month}, day{p->date.day}}};
        const sys_seconds whole = day_part + hours{p->time.hour} + minutes{p->time.minute} +
                                  seconds{p->time.second} - minutes{p->offset_minutes};
        auto ticks =
            detail::exact_ticks<D>(whole.time_since_epoch(), nanoseconds{p->time.nanosecond});
        if (!ticks) return ticks.error();
        return std::chrono::sys_time<D>{*ticks};
    }
};

template <class D>
struct converter<std::chrono::local_time<D>> {
    static result<std::chrono::local_time<D>> from(const value& v) {
        const local_date_time* p = v.as_local_date_time();
        if (p == nullptr) return detail::mismatch(v, "local date-time");
        using namespace std::chrono;
        const local_days day_part{
            year_month_day{year{p->date.year}, month{p->date.month}, day{p->date.day}}};
        const local_seconds whole =
            day_part + hours{p->time.hour} + minutes{p->time.minute} + seconds{p->time.second};
        auto ticks =
            detail::exact_ticks<D>(whole.time_since_epoch(), nanoseconds{p->time.nanosecond});
        if (!ticks) return ticks.error();
        return std::chrono::local_time<D>{*ticks};
    }
};

template <class R, class P>
struct converter<std::chrono::duration<R, P>> {
    using duration = std::chrono::duration<R, P>;
    static result<duration> from(const value& v) {
        const std::string* s = v.as_string();
        if (s == nullptr) return detail::mismatch(v, "duration string");
        auto ns = parse_duration(*s);
        if (!ns) return ns.error();
        if constexpr (std::is_floating_point_v<R>) {
            return std::chrono::duration_cast<duration>(*ns);
        } else {
            const auto cast = std::chrono::duration_cast<duration>(*ns);
            if (std::chrono::duration_cast<std::chrono::nanoseconds>(cast) != *ns)
                return detail::out_of_range("duration is not a whole number of the unit read");
            return cast;
        }
    }
};

template <class T, class A>
struct converter<std::vector<T, A>> {
    static result<std::vector<T, A>> from(const value& v) {
        const array* elements = v.as_array();
        if (elements == nullptr) return detail::mismatch(v, "array");
        std::vector<T, A> out;
        out.reserve(elements->size());
        for (std::size_t i = 0; i < elements->size(); ++i) {
            auto element = converter<T>::from((*elements)[i]);
            if (!element) {
                failure f = element.error();
                f.message = "element [" + std::to_string(i) + "]: " + f.message;
                return f;
            }
            out.push_back(std::move(*element));
        }
        return out;
    }
};

}  // namespace cfgreg
