// SPDX-License-Identifier: MIT
// Snapshots: lookups, listings and dumps over one immutable state.
#include "cfgreg/snapshot.hpp"

#include <algorithm>

#include "toml_io.hpp"

namespace cfgreg {

namespace detail {

snapshot_state::const_iterator snapshot_state::lower_bound(const key_path& prefix) const {
    return std::lower_bound(entries.begin(), entries.end(), prefix,
                            [](const snapshot_entry* e, const key_path& p) { return e->path < p; });
}

result<value> snapshot_state::lookup(const key_path& path) const {
    auto it = lower_bound(path);
    if (it != entries.end() && (*it)->path == path) return (*it)->val;
    if (it == entries.end() || !(*it)->path.starts_with(path)) {
        return failure{errc::missing, "key `" + path.str() + "` has no value", {}};
    }
    std::vector<std::pair<key_path, const value*>> under;
    for (; it != entries.end() && (*it)->path.starts_with(path); ++it) {
        key_path relative;
        for (std::size_t i = path.size(); i < (*it)->path.size(); ++i) {
            const auto& seg = (*it)->path[i];
            if (seg.is_index())
                relative.push_index(seg.index());
            else
                relative.push_key(seg.name());
        }
        under.emplace_back(std::move(relative), &(*it)->val);
    }
    return assemble(under);
}

bool snapshot_state::is_secret(const key_path& path) const {
    return std::any_of(secrets.begin(), secrets.end(),
                       [&](const key_path& s) { return path.starts_with(s); });
}

}  // namespace detail

snapshot::snapshot() : state_(std::make_shared<detail::snapshot_state>()) {}

result<value> snapshot::lookup(std::string_view key) const {
    auto path = key_path::parse(key);
    if (!path) return path.error();
    return state_->lookup(*path);
}

failure snapshot::annotate(std::string_view key, failure f) const {
    auto path = key_path::parse(key);
    f.message = "key `" + (path ? path->str() : std::string(key)) + "`: " + f.message;
    if (path) {
        auto it = state_->lower_bound(*path);
        if (it != state_->entries.end() && (*it)->path == *path) f.where = (*it)->where;
    }
    return f;
}

std::vector<std::string> snapshot::keys(std::string_view prefix) const {
    std::vector<std::string> out;
    auto path = key_path::parse(prefix);
    if (!path) return out;
    for (auto it = state_->lower_bound(*path);
         it != state_->entries.end() && (*it)->path.starts_with(*path); ++it)
        out.push_back((*it)->path.str());
    return out;
}

bool snapshot::is_secret(std::string_view key) const {
    auto path = key_path::parse(key);
    return path && state_->is_secret(*path);
}

std::string snapshot::dump(dump_format format, bool reveal_secrets) const {
    const value hidden("<secret>");
    std::vector<std::pair<key_path, const value*>> all;
    all.reserve(state_->entries.size());
    for (const snapshot_entry& e : *this)
        all.emplace_back(e.path, e.secret && !reveal_secrets ? &hidden : &e.val);
    const value root = detail::assemble(all);
    switch (format) {
        case dump_format::toml:
            return detail::dump_toml(root);
        case dump_format::json:
            return detail::dump_json(root, false);
        case dump_format::tagged_json:
            return detail::dump_json(root, true);
    }
    return {};
}

}  // namespace cfgreg
