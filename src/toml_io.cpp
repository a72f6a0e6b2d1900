// SPDX-License-Identifier: MIT
// The only translation unit that includes toml++: parsing, flattening and output.
#include "toml_io.hpp"

#include <toml++/toml.h>
#include <algorithm>
#include <map>
#include <optional>

#include "text.hpp"

namespace cfgreg::detail {

namespace {

local_date to_date(const toml::date& d) {
    return local_date{d.year, d.month, d.day};
}

local_time to_time(const toml::time& t) {
    return local_time{t.hour, t.minute, t.second, t.nanosecond};
}

/// Appends the leaf `path` = `v` at the line and column where `n` begins.
void add_leaf(document& doc, const key_path& path, value v, const toml::node& n) {
    const auto& begin = n.source().begin;
    leaf& added = doc.leaves.emplace_back();  // built in place: no move of a whole leaf
    added.path = path;
    added.val = std::move(v);
    added.where = source_view{{}, begin.line, begin.column};
}

/// The value of `n`, its strings moved out (the caller owns the parsed tree and drops it).
value to_value(toml::node& n) {
    switch (n.type()) {
        case toml::node_type::boolean:
            return value(n.as_boolean()->get());
        case toml::node_type::integer:
            return value(n.as_integer()->get());
        case toml::node_type::floating_point:
            return value(n.as_floating_point()->get());
        case toml::node_type::string:
            return value(std::move(n.as_string()->get()));
        case toml::node_type::date:
            return value(to_date(n.as_date()->get()));
        case toml::node_type::time:
            return value(to_time(n.as_time()->get()));
        case toml::node_type::date_time: {
            const toml::date_time& dt = n.as_date_time()->get();
            if (dt.offset)
                return value(
                    offset_date_time{to_date(dt.date), to_time(dt.time), dt.offset->minutes});
            return value(local_date_time{to_date(dt.date), to_time(dt.time)});
        }
        case toml::node_type::array: {
            array elements;
            for (toml::node& e : *n.as_array())
                elements.push_back(to_value(e));
            return value(std::move(elements));
        }
        case toml::node_type::table: {
            table entries;
            for (auto&& [k, e] : *n.as_table())
                entries.emplace_back(std::string(k.str()), to_value(e));
            return value(std::move(entries));
        }
        default:
            return value();
    }
}

/// The number of leaves `flatten_node` makes of `n`.
std::size_t count_leaves(const toml::node& n) {
    std::size_t count = 0;
    if (const toml::table* t = n.as_table()) {
        for (const auto& [k, e] : *t)
            count += count_leaves(e);
        return t->empty() ? 1 : count;
    }
    if (const toml::array* a = n.as_array()) {
        for (const toml::node& e : *a)
            count += count_leaves(e);
        return a->empty() ? 1 : count;
    }
    return 1;
}

// `path` is the node's path; it is restored before returning. Strings are moved out of `n`.
void flatten_node(key_path& path, toml::node& n, bool inside_array, document& doc) {
    if (toml::table* t = n.as_table()) {
        if (t->empty()) add_leaf(doc, path, value(), n);
        for (auto&& [k, e] : *t) {
            path.push_key(k.str());
            flatten_node(path, e, inside_array, doc);
            path.pop_back();
        }
        return;
    }
    if (toml::array* a = n.as_array()) {
        if (a->empty()) add_leaf(doc, path, value(array{}), n);
        if (!inside_array && !a->empty()) doc.roots.push_back(path);
        for (std::size_t i = 0; i < a->size(); ++i) {
            path.push_index(i);
            flatten_node(path, *a->get(i), true, doc);
            path.pop_back();
        }
        return;
    }
    add_leaf(doc, path, to_value(n), n);
}

}  // namespace

result<document> parse_toml(std::string_view text, std::string_view source_name) {
    toml::table root;
    try {
        root = toml::parse(text, source_name);
    } catch (const toml::parse_error& e) {
        const auto& begin = e.source().begin;
        return failure{errc::parse_error, std::string(e.description()),
                       source_position{std::string(source_name), begin.line, begin.column}};
    }
    document doc;
    if (root.empty()) return doc;            // no leaves (the root is not an empty-table leaf)
    doc.leaves.reserve(count_leaves(root));  // the layer keeps this vector: no spare room
    key_path path;
    flatten_node(path, root, false, doc);
    return doc;
}

result<value> parse_toml_literal(std::string_view text) {
    std::string doc = "v = ";
    doc += text;
    toml::table root;
    try {
        root = toml::parse(doc, std::string_view{"literal"});
    } catch (const toml::parse_error& e) {
        return failure{errc::parse_error, std::string(e.description()), {}};
    }
    toml::node* v = root.get("v");
    if (root.size() != 1 || v == nullptr)
        return failure{errc::parse_error, "not a single TOML value", {}};
    return to_value(*v);
}

void flatten(const key_path& base, const value& v, std::vector<leaf>& out) {
    if (const table* t = v.as_table(); t != nullptr && !t->empty()) {
        for (const auto& [k, e] : *t)
            flatten(base.child(k), e, out);
        return;
    }
    if (const array* a = v.as_array(); a != nullptr && !a->empty()) {
        for (std::size_t i = 0; i < a->size(); ++i)
            flatten(base.at(i), (*a)[i], out);
        return;
    }
    out.push_back({base, v, layer::file, {}});
}

namespace {

/// A mutable tree used only while assembling.
struct build_node {
    const value* scalar = nullptr;
    std::map<key_path::segment, build_node> children;

    value finish() const {
        if (children.empty()) return scalar != nullptr ? *scalar : value();
        if (children.begin()->first.is_index()) {
            array elements;
            for (const auto& [seg, child] : children)
                if (seg.is_index()) elements.push_back(child.finish());
            return value(std::move(elements));
        }
        table entries;
        for (const auto& [seg, child] : children)
            if (!seg.is_index()) entries.emplace_back(seg.name(), child.finish());
        return value(std::move(entries));
    }
};

}  // namespace

value assemble(const std::vector<std::pair<key_path, const value*>>& leaves) {
    build_node root;
    for (const auto& [path, v] : leaves) {
        build_node* n = &root;
        for (const auto& seg : path.segments())
            n = &n->children[seg];
        n->scalar = v;
    }
    return root.finish();
}

namespace {

bool is_table_array(const value& v) {
    const array* a = v.as_array();
    if (a == nullptr || a->empty()) return false;
    for (const value& e : *a)
        if (!e.is_table()) return false;
    return true;
}

void emit_table(std::string& out, const std::string& header, const table& t) {
    for (const auto& [k, v] : t) {
        const table* sub = v.as_table();
        if ((sub != nullptr && !sub->empty()) || is_table_array(v)) continue;
        out += quote_key_segment(k);
        out += " = ";
        out += v.to_toml();
        out += '\n';
    }
    for (const auto& [k, v] : t) {
        const std::string path =
            header.empty() ? quote_key_segment(k) : header + "." + quote_key_segment(k);
        if (const table* sub = v.as_table(); sub != nullptr && !sub->empty()) {
            // A table holding only tables needs no header: its children's headers define it.
            const bool only_tables = std::all_of(sub->begin(), sub->end(), [](const auto& e) {
                const table* inner = e.second.as_table();
                return (inner != nullptr && !inner->empty()) || is_table_array(e.second);
            });
            if (!only_tables) out += "\n[" + path + "]\n";
            emit_table(out, path, *sub);
        } else if (is_table_array(v)) {
            for (const value& e : *v.as_array()) {
                out += "\n[[" + path + "]]\n";
                emit_table(out, path, *e.as_table());
            }
        }
    }
}

}  // namespace

std::string dump_toml(const value& root) {
    std::string out;
    if (const table* t = root.as_table()) emit_table(out, "", *t);
    // A document without top-level keys starts with a table header, not a blank line.
    if (out.starts_with('\n')) out.erase(0, 1);
    return out;
}

std::string dump_json(const value& root, bool tagged) {
    if (!tagged) return root.to_json();
    std::string out;
    append_tagged_json(out, root);
    return out;
}

}  // namespace cfgreg::detail

namespace cfgreg {

result<value> parse_value(std::string_view text) {
    return detail::parse_toml_literal(text);
}

}  // namespace cfgreg
