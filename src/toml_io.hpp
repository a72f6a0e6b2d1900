// SPDX-License-Identifier: MIT
// Private: TOML parsing (through toml++), flattening into leaves, and TOML/JSON output.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cfgreg/error.hpp"
#include "cfgreg/key_path.hpp"
#include "cfgreg/snapshot.hpp"
#include "cfgreg/value.hpp"

namespace cfgreg::detail {

/// One stored value at its canonical path: a scalar, an empty array or an empty table.
/// Parsing and flattening fill in its path, value, line and column (0 when unknown);
/// the layer that takes it sets its source and layer.
using leaf = snapshot_entry;

/// A parsed document, flattened.
struct document {
    std::vector<leaf> leaves;
    /// Paths whose whole subtree this document replaces in lower layers, besides its
    /// leaves other than tables: each outermost array that is not empty. Tables are
    /// not roots: they merge.
    std::vector<key_path> roots;
};

/// Parses a TOML document. On failure the position is `source_name:line:column`.
result<document> parse_toml(std::string_view text, std::string_view source_name);

/// Parses `text` as one TOML value (`42`, `"x"`, `[1, 2]`, `{ a = 1 }`, `1979-05-27`).
result<value> parse_toml_literal(std::string_view text);

/// Appends the leaves of `v` placed at `base` to `out` (arrays and tables are split
/// down to scalars; empty ones stay as leaves), at no line or column.
void flatten(const key_path& base, const value& v, std::vector<leaf>& out);

/// Builds a composite value from leaves given relative to their common
/// prefix (the relative path of a leaf at the prefix itself is empty). Gaps
/// in array indices are closed up.
value assemble(const std::vector<std::pair<key_path, const value*>>& leaves);

/// The table `root` as a TOML document that parses back to the same values and types.
std::string dump_toml(const value& root);

/// The table `root` as JSON: plain (`tagged == false`) or in toml-test's typed notation.
std::string dump_json(const value& root, bool tagged);

}  // namespace cfgreg::detail
