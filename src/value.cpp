// SPDX-License-Identifier: MIT
// The value type: construction, comparison, literal output and duration parsing.
#include "cfgreg/value.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "cfgreg/key_path.hpp"
#include "text.hpp"

namespace cfgreg {

const char* to_string(value_type t) noexcept {
    switch (t) {
        case value_type::boolean:
            return "boolean";
        case value_type::integer:
            return "integer";
        case value_type::floating:
            return "float";
        case value_type::string:
            return "string";
        case value_type::offset_date_time:
            return "offset date-time";
        case value_type::local_date_time:
            return "local date-time";
        case value_type::local_date:
            return "local date";
        case value_type::local_time:
            return "local time";
        case value_type::array:
            return "array";
        case value_type::table:
            return "table";
    }
    return "unknown";
}

std::chrono::sys_time<std::chrono::nanoseconds> offset_date_time::to_sys_time() const {
    using namespace std::chrono;
    const sys_days d{year_month_day{year{date.year}, month{date.month}, day{date.day}}};
    return d + hours{time.hour} + minutes{time.minute} + seconds{time.second} +
           nanoseconds{time.nanosecond} - minutes{offset_minutes};
}

namespace {

const array empty_array;
const table empty_table;

}  // namespace

value::value() : data_(std::shared_ptr<const table>{}) {}

value::value(array elements)
    : data_(elements.empty() ? std::shared_ptr<const array>{}
                             : std::make_shared<const array>(std::move(elements))) {}

value::value(table entries) : data_(std::shared_ptr<const table>{}) {
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (std::size_t i = 1; i < entries.size(); ++i) {
        if (entries[i - 1].first == entries[i].first)
            throw error(errc::invalid_argument, "duplicate key in table: " + entries[i].first);
    }
    if (!entries.empty()) data_ = std::make_shared<const table>(std::move(entries));
}

const array* value::as_array() const noexcept {
    const auto* p = std::get_if<std::shared_ptr<const array>>(&data_);
    if (p == nullptr) return nullptr;
    return *p ? p->get() : &empty_array;
}

const table* value::as_table() const noexcept {
    const auto* p = std::get_if<std::shared_ptr<const table>>(&data_);
    if (p == nullptr) return nullptr;
    return *p ? p->get() : &empty_table;
}

const value* value::find(std::string_view key) const noexcept {
    const table* t = as_table();
    if (t == nullptr) return nullptr;
    auto it =
        std::lower_bound(t->begin(), t->end(), key,
                         [](const auto& entry, std::string_view k) { return entry.first < k; });
    return it != t->end() && it->first == key ? &it->second : nullptr;
}

namespace {

template <class Leaf>
bool deep_equal(const value& a, const value& b, Leaf leaf_equal) {
    if (a.type() != b.type()) return false;
    if (const array* x = a.as_array()) {
        const array* y = b.as_array();
        if (x->size() != y->size()) return false;
        for (std::size_t i = 0; i < x->size(); ++i)
            if (!deep_equal((*x)[i], (*y)[i], leaf_equal)) return false;
        return true;
    }
    if (const table* x = a.as_table()) {
        const table* y = b.as_table();
        if (x->size() != y->size()) return false;
        for (std::size_t i = 0; i < x->size(); ++i) {
            if ((*x)[i].first != (*y)[i].first) return false;
            if (!deep_equal((*x)[i].second, (*y)[i].second, leaf_equal)) return false;
        }
        return true;
    }
    return leaf_equal(a, b);
}

bool scalar_equal(const value& a, const value& b) {
    switch (a.type()) {
        case value_type::boolean:
            return *a.as_bool() == *b.as_bool();
        case value_type::integer:
            return *a.as_integer() == *b.as_integer();
        case value_type::floating:
            return *a.as_floating() == *b.as_floating();
        case value_type::string:
            return *a.as_string() == *b.as_string();
        case value_type::offset_date_time:
            return *a.as_offset_date_time() == *b.as_offset_date_time();
        case value_type::local_date_time:
            return *a.as_local_date_time() == *b.as_local_date_time();
        case value_type::local_date:
            return *a.as_local_date() == *b.as_local_date();
        case value_type::local_time:
            return *a.as_local_time() == *b.as_local_time();
        default:
            return false;
    }
}

bool scalar_same(const value& a, const value& b) {
    if (const double* x = a.as_floating()) {
        const double y = *b.as_floating();
        if (std::isnan(*x) || std::isnan(y)) return std::isnan(*x) && std::isnan(y);
        return *x == y && std::signbit(*x) == std::signbit(y);
    }
    return scalar_equal(a, b);
}

}  // namespace

bool operator==(const value& a, const value& b) noexcept {
    return deep_equal(a, b, scalar_equal);
}

bool value::same_as(const value& other) const noexcept {
    return deep_equal(*this, other, scalar_same);
}

// ---- Text output -------------------------------------------------------------------------

namespace detail {

void append_quoted(std::string& out, std::string_view s) {
    out += '"';
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\f':
                out += "\\f";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                if (u < 0x20 || u == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04X", u);
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    out += '"';
}

namespace {

void append_padded(std::string& out, long v, int width) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%0*ld", width, v);
    out += buf;
}

void append_date(std::string& out, const local_date& d) {
    append_padded(out, d.year, 4);
    out += '-';
    append_padded(out, d.month, 2);
    out += '-';
    append_padded(out, d.day, 2);
}

void append_time(std::string& out, const local_time& t) {
    append_padded(out, t.hour, 2);
    out += ':';
    append_padded(out, t.minute, 2);
    out += ':';
    append_padded(out, t.second, 2);
    if (t.nanosecond != 0) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%09u", static_cast<unsigned>(t.nanosecond));
        std::size_t n = 9;
        while (n > 1 && buf[n - 1] == '0')
            --n;
        out += '.';
        out.append(buf, n);
    }
}

}  // namespace

void append_date_time(std::string& out, const value& v) {
    if (const auto* odt = v.as_offset_date_time()) {
        append_date(out, odt->date);
        out += 'T';
        append_time(out, odt->time);
        if (odt->offset_minutes == 0) {
            out += 'Z';
        } else {
            const int m = odt->offset_minutes < 0 ? -odt->offset_minutes : odt->offset_minutes;
            out += odt->offset_minutes < 0 ? '-' : '+';
            append_padded(out, m / 60, 2);
            out += ':';
            append_padded(out, m % 60, 2);
        }
    } else if (const auto* ldt = v.as_local_date_time()) {
        append_date(out, ldt->date);
        out += 'T';
        append_time(out, ldt->time);
    } else if (const auto* ld = v.as_local_date()) {
        append_date(out, *ld);
    } else if (const auto* lt = v.as_local_time()) {
        append_time(out, *lt);
    }
}

void append_float(std::string& out, double d) {
    if (std::isnan(d)) {
        out += std::signbit(d) ? "-nan" : "nan";
        return;
    }
    if (std::isinf(d)) {
        out += d < 0 ? "-inf" : "inf";
        return;
    }
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
    std::string_view text(buf, static_cast<std::size_t>(end - buf));
    out += text;
    if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

void append_tagged_json(std::string& out, const value& v) {
    if (const array* a = v.as_array()) {
        out += '[';
        for (std::size_t i = 0; i < a->size(); ++i) {
            if (i != 0) out += ',';
            append_tagged_json(out, (*a)[i]);
        }
        out += ']';
        return;
    }
    if (const table* t = v.as_table()) {
        out += '{';
        for (std::size_t i = 0; i < t->size(); ++i) {
            if (i != 0) out += ',';
            append_quoted(out, (*t)[i].first);
            out += ':';
            append_tagged_json(out, (*t)[i].second);
        }
        out += '}';
        return;
    }
    static constexpr const char* tags[] = {"bool",       "integer",   "float",
                                           "string",     "datetime",  "datetime-local",
                                           "date-local", "time-local"};
    out += "{\"type\":\"";
    out += tags[static_cast<int>(v.type())];
    out += "\",\"value\":";
    if (const std::string* s = v.as_string()) {
        append_quoted(out, *s);
    } else {
        std::string text;
        if (const bool* b = v.as_bool()) {
            text = *b ? "true" : "false";
        } else if (const std::int64_t* i = v.as_integer()) {
            text = std::to_string(*i);
        } else if (const double* d = v.as_floating()) {
            append_float(text, *d);
        } else {
            append_date_time(text, v);
        }
        append_quoted(out, text);
    }
    out += '}';
}

}  // namespace detail

namespace {

void append_toml(std::string& out, const value& v) {
    switch (v.type()) {
        case value_type::boolean:
            out += *v.as_bool() ? "true" : "false";
            return;
        case value_type::integer:
            out += std::to_string(*v.as_integer());
            return;
        case value_type::floating:
            detail::append_float(out, *v.as_floating());
            return;
        case value_type::string:
            detail::append_quoted(out, *v.as_string());
            return;
        case value_type::array: {
            const array& a = *v.as_array();
            out += '[';
            for (std::size_t i = 0; i < a.size(); ++i) {
                if (i != 0) out += ", ";
                append_toml(out, a[i]);
            }
            out += ']';
            return;
        }
        case value_type::table: {
            const table& t = *v.as_table();
            if (t.empty()) {
                out += "{}";
                return;
            }
            out += "{ ";
            for (std::size_t i = 0; i < t.size(); ++i) {
                if (i != 0) out += ", ";
                out += quote_key_segment(t[i].first);
                out += " = ";
                append_toml(out, t[i].second);
            }
            out += " }";
            return;
        }
        default:
            detail::append_date_time(out, v);
            return;
    }
}

void append_json(std::string& out, const value& v) {
    switch (v.type()) {
        case value_type::boolean:
            out += *v.as_bool() ? "true" : "false";
            return;
        case value_type::integer:
            out += std::to_string(*v.as_integer());
            return;
        case value_type::floating: {
            const double d = *v.as_floating();
            if (std::isnan(d) || std::isinf(d)) {
                out += '"';
                detail::append_float(out, d);
                out += '"';
            } else {
                detail::append_float(out, d);
            }
            return;
        }
        case value_type::string:
            detail::append_quoted(out, *v.as_string());
            return;
        case value_type::array: {
            const array& a = *v.as_array();
            out += '[';
            for (std::size_t i = 0; i < a.size(); ++i) {
                if (i != 0) out += ',';
                append_json(out, a[i]);
            }
            out += ']';
            return;
        }
        case value_type::table: {
            const table& t = *v.as_table();
            out += '{';
            for (std::size_t i = 0; i < t.size(); ++i) {
                if (i != 0) out += ',';
                detail::append_quoted(out, t[i].first);
                out += ':';
                append_json(out, t[i].second);
            }
            out += '}';
            return;
        }
        default:
            out += '"';
            detail::append_date_time(out, v);
            out += '"';
            return;
    }
}

}  // namespace

std::string value::to_toml() const {
    std::string out;
    append_toml(out, *this);
    return out;
}

std::string value::to_json() const {
    std::string out;
    append_json(out, *this);
    return out;
}

// ---- Conversions -------------------------------------------------------------------------

namespace detail {

failure mismatch(const value& v, std::string_view wanted) {
    std::string message = "expected ";
    message += wanted;
    message += ", found ";
    message += to_string(v.type());
    return failure{errc::type_mismatch, std::move(message), {}};
}

failure out_of_range(std::string_view what) {
    return failure{errc::out_of_range, std::string(what), {}};
}

}  // namespace detail

namespace {
__extension__ typedef __int128 wide_int;
}  // namespace

result<std::chrono::nanoseconds> parse_duration(std::string_view text) {
    const auto bad = [&] {
        return failure{
            errc::type_mismatch, "expected a duration such as \"250ms\" or \"1h30m\"", {}};
    };
    const auto too_big = [] {
        return failure{errc::out_of_range, "duration exceeds the nanosecond range", {}};
    };
    bool negative = false;
    if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
        negative = text.front() == '-';
        text.remove_prefix(1);
    }
    if (text.empty()) return bad();

    // 128-bit accumulation: each term is checked against the 64-bit range as it is added.
    wide_int total = 0;
    while (!text.empty()) {
        std::size_t n = 0;
        wide_int whole = 0;
        while (n < text.size() && text[n] >= '0' && text[n] <= '9') {
            whole = whole * 10 + (text[n] - '0');
            if (whole > (wide_int{1} << 80)) return too_big();
            ++n;
        }
        std::string_view fraction;
        if (n < text.size() && text[n] == '.') {
            const std::size_t start = ++n;
            while (n < text.size() && text[n] >= '0' && text[n] <= '9')
                ++n;
            fraction = text.substr(start, n - start);
            if (fraction.empty() && start == 1) return bad();
        }
        if (n == 0) return bad();
        text.remove_prefix(n);

        static constexpr std::pair<std::string_view, std::int64_t> units[] = {
            {"ns", 1},
            {"us", 1'000},
            {"\xC2\xB5s", 1'000},
            {"ms", 1'000'000},
            {"s", 1'000'000'000},
            {"m", 60'000'000'000},
            {"h", 3'600'000'000'000},
            {"d", 86'400'000'000'000},
        };
        std::int64_t scale = 0;
        for (const auto& [name, ns] : units) {
            if (text.starts_with(name)) {
                const bool longer_unit = name == "m" && text.starts_with("ms");
                if (longer_unit) continue;
                scale = ns;
                text.remove_prefix(name.size());
                break;
            }
        }
        if (scale == 0) return bad();

        total += whole * scale;
        wide_int frac_scale = scale;
        for (const char c : fraction) {
            if (frac_scale < 10) break;  // digits finer than a nanosecond are dropped
            frac_scale /= 10;
            total += (c - '0') * frac_scale;
        }
        if (total > std::numeric_limits<std::int64_t>::max()) return too_big();
    }
    const auto count = static_cast<std::int64_t>(total);
    return std::chrono::nanoseconds{negative ? -count : count};
}

}  // namespace cfgreg
