// SPDX-License-Identifier: MIT
// Private text helpers shared by the value, key path and TOML/JSON output code (and tests).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cfgreg/value.hpp"

namespace cfgreg::detail {

/// Appends the code point `cp` (at most U+10FFFF) encoded as UTF-8.
void append_utf8(std::string& out, std::uint32_t cp);

/// Appends `s` as a TOML basic string (also valid JSON): quotes, escapes,
/// control characters as \uXXXX.
void append_quoted(std::string& out, std::string_view s);

/// Appends a date, time or date-time in TOML notation (RFC 3339 with a `T`).
void append_date_time(std::string& out, const value& v);

/// Appends a float as a TOML literal that reads back to the same double (`nan`, `inf`, `1.0`).
void append_float(std::string& out, double d);

/// Appends `v` in toml-test's tagged JSON: scalars as {"type": ..., "value": "..."}.
void append_tagged_json(std::string& out, const value& v);

}  // namespace cfgreg::detail
