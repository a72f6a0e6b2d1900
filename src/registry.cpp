// SPDX-License-Identifier: MIT
// The registry: layers, the single write path, lock-free reads, env loading and describe.
#include "registry_impl.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>

#include "toml_io.hpp"

extern char** environ;

namespace cfgreg {

using detail::change;
using detail::change_set;
using detail::layer_content;
using detail::layer_update;
using detail::published_state;
using detail::snapshot_state;

namespace {

using detail::leaf_list;

/// Orders pointers to key paths as the paths they point to.
struct path_less {
    bool operator()(const key_path* a, const key_path* b) const noexcept { return *a < *b; }
};

/// Effective leaves while layers are merged, keyed by a path inside a layer's list.
using effective_map = std::map<const key_path*, const snapshot_entry*, path_less>;

void delete_published(void* p) noexcept {
    delete static_cast<const published_state*>(p);
}

void erase_subtree(effective_map& e, const key_path& root) {
    auto it = e.lower_bound(&root);
    while (it != e.end() && it->first->starts_with(root))
        it = e.erase(it);
}

// Removes the leaf of `e` that is an ancestor of `path`, if any. Such a leaf sorts
// right before `path`'s position: keys between an ancestor and `path` would be the
// ancestor's descendants, and a leaf has none in an effective map.
void erase_ancestor(effective_map& e, const key_path& path) {
    auto it = e.lower_bound(&path);
    if (it == e.begin()) return;
    --it;
    if (it->first->size() < path.size() && path.starts_with(*it->first)) e.erase(it);
}

bool has_descendant(const effective_map& e, const key_path& path) {
    auto it = e.upper_bound(&path);
    return it != e.end() && it->first->starts_with(path);
}

bool is_empty_table(const value& v) {
    const table* t = v.as_table();
    return t != nullptr && t->empty();
}

/// The effective leaves of `layers` (lowest first), sorted, each pointing into its
/// layer's list: each layer's roots clear the subtrees they replace, each leaf
/// clears the scalar on its ancestors (and, unless it is a table, its own
/// subtree), then the leaf goes in.
std::vector<const snapshot_entry*> compute_effective(
    const std::vector<const layer_content*>& layers) {
    std::vector<const layer_content*> used;
    for (const layer_content* l : layers)
        if (!l->leaves->entries.empty() || !l->roots.empty()) used.push_back(l);
    std::vector<const snapshot_entry*> out;
    if (used.size() == 1) {
        // One layer (a single file, say): its sorted list is the answer, with no merge.
        out.reserve(used[0]->leaves->entries.size());
        for (const snapshot_entry& leaf : used[0]->leaves->entries)
            out.push_back(&leaf);
        return out;
    }

    effective_map e;
    for (const layer_content* l : used) {
        if (e.empty()) {
            // Nothing below to replace: the layer's own leaves are already
            // consistent, and arrive sorted, so each insertion is amortized O(1).
            for (const snapshot_entry& leaf : l->leaves->entries)
                e.emplace_hint(e.end(), &leaf.path, &leaf);
            continue;
        }
        for (const key_path& root : l->roots) {
            erase_subtree(e, root);
            erase_ancestor(e, root);
        }
        for (const snapshot_entry& leaf : l->leaves->entries) {
            if (!leaf.val.is_table()) erase_subtree(e, leaf.path);
            erase_ancestor(e, leaf.path);
            if (is_empty_table(leaf.val) && has_descendant(e, leaf.path)) continue;
            e.insert_or_assign(&leaf.path, &leaf);
        }
    }
    out.reserve(e.size());
    for (const auto& [path, leaf] : e)
        out.push_back(leaf);
    return out;
}

/// Replaces each entry of `state` under a secret key by a copy marked secret, owned
/// by `state`. Secrets only grow, so an entry already marked stays marked.
void mark_secrets(snapshot_state& state) {
    if (state.secrets.empty()) return;
    for (const snapshot_entry*& entry : state.entries) {
        if (!state.is_secret(entry->path)) continue;
        auto copy = std::make_unique<snapshot_entry>(*entry);
        copy->secret = true;
        entry = copy.get();
        state.secret_copies.push_back(std::move(copy));
    }
}

/// `list` with its entries sorted by path, keeping the last of equal paths (as a
/// later write wins).
std::shared_ptr<const leaf_list> make_list(leaf_list list) {
    auto& leaves = list.entries;
    const auto before = [](const snapshot_entry& a, const snapshot_entry& b) {
        return a.path < b.path;
    };
    if (std::adjacent_find(leaves.begin(), leaves.end(), [&](const auto& a, const auto& b) {
            return !before(a, b);
        }) != leaves.end()) {
        std::stable_sort(leaves.begin(), leaves.end(), before);
        std::reverse(leaves.begin(), leaves.end());
        leaves.erase(std::unique(leaves.begin(), leaves.end(),
                                 [](const auto& a, const auto& b) { return a.path == b.path; }),
                     leaves.end());
        std::reverse(leaves.begin(), leaves.end());
    }
    leaves.shrink_to_fit();
    return std::make_shared<const leaf_list>(std::move(list));
}

using leaf_iterator = std::vector<snapshot_entry>::const_iterator;

/// The first leaf of `list` at or under `path`.
leaf_iterator lower_bound(const leaf_list& list, const key_path& path) {
    return std::lower_bound(list.entries.begin(), list.entries.end(), path,
                            [](const snapshot_entry& e, const key_path& p) { return e.path < p; });
}

/// Past the last leaf of `list` at or under `path`, searching from `from`.
leaf_iterator subtree_end(const leaf_list& list, leaf_iterator from, const key_path& path) {
    return std::find_if(from, list.entries.end(),
                        [&](const snapshot_entry& e) { return !e.path.starts_with(path); });
}

/// The copy of `source` that `list` holds, added if it holds none.
std::string_view intern(leaf_list& list, std::string_view source) {
    for (const auto& s : list.sources)
        if (*s == source) return *s;
    return *list.sources.emplace_back(std::make_shared<const std::string>(source));
}

bool same_entry_value(const snapshot_entry& a, const snapshot_entry& b) {
    return a.val.same_as(b.val);
}

std::string quoted_key(std::string_view key) {
    return "key `" + std::string(key) + "`";
}

}  // namespace

const char* to_string(layer l) noexcept {
    switch (l) {
        case layer::defaults:
            return "defaults";
        case layer::file:
            return "file";
        case layer::env:
            return "env";
        case layer::runtime:
            return "runtime";
    }
    return "unknown";
}

// ---- impl ----------------------------------------------------------------------------------

const snapshot_entry* layer_content::find(const key_path& path) const {
    auto it = lower_bound(*leaves, path);
    return it != leaves->entries.end() && it->path == path ? &*it : nullptr;
}

registry::impl::impl() : current(new published_state{std::make_shared<snapshot_state>()}) {}

registry::impl::~impl() {
    // No reader remains (destroying a registry in use is undefined), so no pin is needed;
    // relaxed, as no writer remains either and the last one's store happened before this.
    delete current.load(std::memory_order_relaxed);
}

layer_content registry::impl::layer_copy_locked(layer kind, const std::string& name) const {
    for (const layer_content& l : layers)
        if (l.kind == kind && l.name == name) return l;
    layer_content fresh;
    fresh.kind = kind;
    fresh.name = name;
    return fresh;
}

std::optional<value> registry::impl::handle_value(const snapshot_state& state,
                                                  const key_path& path) {
    auto v = state.lookup(path);
    if (!v) return std::nullopt;
    return std::move(*v);
}

result<change_set> registry::impl::commit_locked(layer kind, const std::string& name,
                                                 std::optional<layer_content> content) {
    std::vector<layer_update> one;
    one.push_back({kind, name, std::move(content)});
    return commit_locked(std::move(one));
}

namespace {

// Applies `u` to a list of layers (or of pointers to layers): the content replaces
// the layer of the same kind and name in place, goes after the last layer of its
// kind, or the layer is dropped. `place(c)` is what the list stores for content `c`;
// `identity(e)` is its layer.
template <class List, class Place, class Identity>
void apply_update(List& list, const layer_update& u, const layer_content* content, Place place,
                  Identity identity) {
    auto same = std::find_if(list.begin(), list.end(), [&](const auto& e) {
        return identity(e).kind == u.kind && identity(e).name == u.name;
    });
    if (same != list.end()) {
        if (content != nullptr)
            *same = place(content);
        else
            list.erase(same);
        return;
    }
    if (content == nullptr) return;
    auto after = std::find_if(list.begin(), list.end(),
                              [&](const auto& e) { return identity(e).kind > u.kind; });
    list.insert(after, place(content));
}

}  // namespace

// The new value of every handle on a changed key or on an ancestor of one.
std::vector<std::pair<key_path, std::optional<value>>> registry::impl::handle_values(
    const change_set& cs, const snapshot_state& next) const {
    std::set<key_path> touched;
    for (const change& c : cs.changes) {
        key_path prefix;
        for (const auto& seg : c.path().segments()) {
            if (seg.is_index())
                prefix.push_index(seg.index());
            else
                prefix.push_key(seg.name());
            if (slots.count(prefix) != 0) touched.insert(prefix);
        }
    }
    std::vector<std::pair<key_path, std::optional<value>>> out;
    out.reserve(touched.size());
    for (const key_path& path : touched)
        out.emplace_back(path, handle_value(next, path));
    return out;
}

result<change_set> registry::impl::commit_locked(std::vector<layer_update> updates) {
    detail::commit_plan plan = plan_commit_locked(updates);
    if (validate_hook) {
        if (auto rejected = validate_hook(plan.cs)) return std::move(*rejected);
    }
    apply_commit_locked(plan, updates);
    return std::move(plan.cs);
}

detail::commit_plan registry::impl::plan_commit_locked(
    const std::vector<layer_update>& updates) const {
    // Candidate layers, by pointer, so that nothing is copied until the commit succeeds.
    std::vector<const layer_content*> candidate;
    candidate.reserve(layers.size() + updates.size());
    for (const layer_content& l : layers)
        candidate.push_back(&l);
    for (const layer_update& u : updates) {
        apply_update(
            candidate, u, u.content ? &*u.content : nullptr, [](auto* c) { return c; },
            [](const layer_content* l) -> const layer_content& { return *l; });
    }

    // New effective state and the change set against the current one. Its entries
    // point into the candidate layers' lists, which it keeps alive.
    detail::commit_plan plan;
    // Relaxed: only writers store `current`, all under write_mu (inv. 1), so this is never stale.
    std::shared_ptr<const snapshot_state> before = current.load(std::memory_order_relaxed)->state;
    auto next = std::make_shared<snapshot_state>();
    next->generation = before->generation + 1;
    next->secrets = secrets;
    next->entries = compute_effective(candidate);
    next->lists.reserve(candidate.size());
    for (const layer_content* l : candidate)
        next->lists.push_back(l->leaves);
    if (!next->secrets.empty()) plan.shared_leaves = next->entries;
    mark_secrets(*next);

    change_set& cs = plan.cs;
    cs.before = before;
    cs.generation = next->generation;
    for (const layer_update& u : updates) {
        if (!cs.origin.empty()) cs.origin += ", ";
        cs.origin += u.name;
    }
    const auto& olds = before->entries;
    const auto& news = next->entries;
    plan.stores.reserve(news.size());
    cs.changes.reserve(std::max(olds.size(), news.size()));
    for (std::size_t o = 0, n = 0; o < olds.size() || n < news.size();) {
        if (n == news.size() || (o < olds.size() && olds[o]->path < news[n]->path)) {
            cs.changes.push_back({change_kind::removed, olds[o++], nullptr});
        } else if (o == olds.size() || news[n]->path < olds[o]->path) {
            cs.changes.push_back({change_kind::added, nullptr, news[n]});
            plan.adds.push_back(n++);
        } else {
            if (!same_entry_value(*olds[o], *news[n])) {
                cs.changes.push_back({change_kind::changed, olds[o], news[n]});
                plan.stores.push_back(n);
            } else if (olds[o] != news[n]) {
                plan.stores.push_back(n);  // same value from another list: the old one may go
            }
            ++o;
            ++n;
        }
    }
    cs.after = next;
    plan.next = std::move(next);
    return plan;
}

void registry::impl::apply_commit_locked(detail::commit_plan& plan,
                                         std::vector<layer_update>& updates) {
    change_set& cs = plan.cs;
    snapshot_state& next = *plan.next;
    if (cs.changes.empty()) {
        // Provenance may still have moved (same value from another layer
        // or line): publish the new state under the old generation so
        // describe and dumps stay exact.
        next.generation = cs.before->generation;
        cs.generation = cs.before->generation;
    }

    // Everything that can fail comes first (invariant 7): the new holder, room for
    // the layers, the handles' new values, and the map's new keys (all or none).
    // What follows cannot fail for want of memory but in the map's stores of nodes
    // (CFGREG_INLINE_WORDS off), where it terminates: readers must never see half a
    // commit.
    auto holder = std::make_unique<published_state>(published_state{plan.next});
    layers.reserve(layers.size() + updates.size());
    std::vector<std::pair<key_path, std::optional<value>>> handle_updates;
    if (!slots.empty()) handle_updates = handle_values(cs, next);
    const auto& news = next.entries;
    std::vector<std::pair<std::string_view, const snapshot_entry*>> new_keys;
    new_keys.reserve(plan.adds.size());
    for (const std::size_t n : plan.adds)
        new_keys.emplace_back(news[n]->path.str(), plan.leaf(n));
    leaves.store_all(new_keys);  // one table build for a file's first load; all or none

    [&]() noexcept {
        for (layer_update& u : updates) {
            apply_update(
                layers, u, u.content ? &*u.content : nullptr,
                [&](const layer_content*) { return std::move(*u.content); },
                [](const layer_content& l) -> const layer_content& { return l; });
        }
        for (const change& c : cs.changes) {
            if (c.after == nullptr) leaves.erase(c.before->path.str());
        }
        for (const std::size_t n : plan.stores)
            leaves.store(news[n]->path.str(), plan.leaf(n));
        if (!plan.adds.empty()) {
            try {
                leaves.promote();  // new keys readable in one probe, without the lock
            } catch (const std::bad_alloc&) {
                // Promotion only speeds up reads; the map promotes on a later write.
            }
        }

        // Release pairs with the acquire loads in `with_state` and `registry::snapshot()`;
        // the old holder is freed once no pinned reader can hold it (invariants 3 and 6).
        // Relaxed load: only writers store `current`, all under write_mu (inv. 1).
        const auto* old_published = current.load(std::memory_order_relaxed);
        current.store(holder.release(), std::memory_order_release);
        detail::epoch::retire(const_cast<published_state*>(old_published), &delete_published,
                              sizeof(published_state));
        generation.store(next.generation, std::memory_order_relaxed);  // invariant 4
        refresh_handles_locked(handle_updates);
    }();
}

void registry::impl::refresh_handles_locked(
    const std::vector<std::pair<key_path, std::optional<value>>>& updates) noexcept {
    for (const auto& update : updates) {
        const std::optional<value>& v = update.second;
        const auto list = slots.find(update.first);
        std::erase_if(list->second, [&](const std::weak_ptr<detail::slot_base>& w) {
            auto slot = w.lock();
            if (!slot) return true;
            slot->update(v ? &*v : nullptr);
            return false;
        });
        if (list->second.empty()) slots.erase(list);
    }
}

void registry::impl::after_commit_locked(const change_set& changes) const {
    if (after_commit_hook && !changes.changes.empty()) after_commit_hook(changes);
}

void registry::impl::republish_secrets_locked() {
    // Relaxed: only writers store `current`, all under write_mu (inv. 1), so this is never stale.
    const auto* old_published = current.load(std::memory_order_relaxed);
    const snapshot_state& old = *old_published->state;
    auto next = std::make_shared<snapshot_state>();
    next->generation = old.generation;
    next->secrets = secrets;
    next->entries = old.entries;
    next->lists = old.lists;  // the map's pointers stay valid: they point into these
    mark_secrets(*next);
    auto* holder = new published_state{next};          // the last step that can fail
    current.store(holder, std::memory_order_release);  // as in apply_commit_locked
    detail::epoch::retire(const_cast<published_state*>(old_published), &delete_published,
                          sizeof(published_state));
}

// ---- registry: reading -----------------------------------------------------------------------

registry::registry() : impl_(std::make_unique<impl>()), leaves_(&impl_->leaves) {
    impl_->install_hooks();
}
registry::~registry() {
    impl_->stop_watches();
}

registry& registry::global() {
    static registry* instance = new registry();  // never destroyed: handles may outlive main
    return *instance;
}

namespace {

/// Runs `f(state)` on the current state while pinned.
template <class F>
auto with_state(const registry::impl& m, F&& f) {
    detail::epoch::guard pin;
    // Acquire pairs with the release stores in apply_commit_locked and
    // republish_secrets_locked: the state is fully built.
    const published_state* p = m.current.load(std::memory_order_acquire);
    return f(*p->state);
}

}  // namespace

bool registry::visit_value(std::string_view key, detail::function_ref<void(const value&)> f,
                           composites with) const {
    auto path = key_path::parse(key);
    if (!path) return false;

    // Another spelling of a leaf's key: the lock-free map has it under its canonical text.
    if (path->str() != key &&
        impl_->leaves.visit(path->str(), [&](const snapshot_entry* e) { f(e->val); }))
        return true;

    // A leaf that the map did not show (a write came in between), or a table or an array:
    // one search of the state, which builds no error text when nothing is there.
    return with_state(*impl_, [&](const snapshot_state& s) {
        const auto it = s.lower_bound(*path);
        if (it == s.entries.end() || !(*it)->path.starts_with(*path)) return false;
        if ((*it)->path == *path) {
            f((*it)->val);
        } else if (with == composites::built) {
            if (auto v = s.lookup(*path)) f(*v);  // cannot fail: leaves lie under `path`
        }
        return true;
    });
}

result<value> registry::lookup_composite(std::string_view key) const {
    auto path = key_path::parse(key);
    if (!path) return path.error();
    return with_state(*impl_, [&](const snapshot_state& s) { return s.lookup(*path); });
}

failure registry::annotate(std::string_view key, failure f) const {
    auto path = key_path::parse(key);
    const std::string canonical = path ? path->str() : std::string(key);
    f.message = quoted_key(canonical) + ": " + f.message;
    if (!path) return f;
    with_state(*impl_, [&](const snapshot_state& s) {
        auto it = s.lower_bound(*path);
        if (it != s.entries.end() && (*it)->path == *path) f.where = (*it)->where;
        return 0;
    });
    return f;
}

bool registry::contains(std::string_view key) const {
    const auto ignore = [](const value&) {};
    return impl_->leaves.visit(key, [](const snapshot_entry*) {}) ||
           visit_value(key, ignore, composites::skipped);
}

std::vector<std::string> registry::keys(std::string_view prefix) const {
    return snapshot().keys(prefix);
}

cfgreg::snapshot registry::snapshot() const {
    detail::epoch::guard pin;
    // Acquire pairs with the release stores in apply_commit_locked and
    // republish_secrets_locked; the copy keeps the state alive.
    return cfgreg::snapshot(impl_->current.load(std::memory_order_acquire)->state);
}

std::uint64_t registry::generation() const noexcept {
    return impl_->generation.load(std::memory_order_relaxed);  // invariant 4
}

bool registry::is_secret(std::string_view key) const {
    return snapshot().is_secret(key);
}

std::string registry::dump(dump_format format, bool reveal_secrets) const {
    return snapshot().dump(format, reveal_secrets);
}

std::shared_ptr<const std::string> registry::attach_slot(std::string_view key,
                                                         std::shared_ptr<detail::slot_base> slot) {
    key_path path(key);  // throws errc::invalid_key
    auto canonical = std::make_shared<const std::string>(path.str());

    // Registration and the first update happen under the write mutex, so no commit
    // can slip between them (invariant 5).
    std::lock_guard lock(impl_->write_mu);
    const std::optional<value> v = impl::handle_value(impl_->state_locked(), path);
    slot->update(v ? &*v : nullptr);
    impl_->slots[path].push_back(slot);
    return canonical;
}

// ---- registry: writing -----------------------------------------------------------------------

namespace {

/// Runs one commit under the write mutex and queues its notifications there, so that they
/// queue in generation order; delivers them once the mutex is released.
template <class F>
status locked_commit(registry::impl& m, F&& build) {
    {
        std::lock_guard lock(m.write_mu);
        result<change_set> r = build();
        if (!r) return r.error();
        m.after_commit_locked(*r);
    }
    m.notes.drain();
    return std::monostate{};
}

layer_content file_content(detail::document doc, const std::string& name) {
    layer_content content;
    content.kind = layer::file;
    content.name = name;
    leaf_list list;
    const std::string_view source = intern(list, name);
    list.entries = std::move(doc.leaves);
    for (snapshot_entry& leaf : list.entries)
        leaf.where.source = source;
    // toml++ walks tables by key and arrays by index, so the leaves arrive sorted and
    // make_list only checks that (one pass).
    content.leaves = make_list(std::move(list));
    content.roots = std::move(doc.roots);
    std::sort(content.roots.begin(), content.roots.end());
    content.roots.erase(std::unique(content.roots.begin(), content.roots.end()),
                        content.roots.end());
    return content;
}

status commit_document(registry::impl& m, result<detail::document> doc, const std::string& name) {
    if (!doc) return doc.error();
    layer_content content = file_content(std::move(*doc), name);
    return locked_commit(m, [&] { return m.commit_locked(layer::file, name, std::move(content)); });
}

/// Puts `v` at `path` into `content`, replacing what the layer had at and under `path`.
void put(layer_content& content, const key_path& path, const value& v,
         const source_position& where) {
    std::vector<detail::leaf> flat;
    detail::flatten(path, v, flat);
    const leaf_list& old = *content.leaves;
    const auto first = lower_bound(old, path);
    const auto last = subtree_end(old, first, path);
    leaf_list list;
    list.sources = old.sources;  // the kept leaves view them
    const source_view at{intern(list, where.source), where.line, where.column};
    list.entries.reserve(old.entries.size() + flat.size());
    list.entries.insert(list.entries.end(), old.entries.begin(), first);
    for (detail::leaf& l : flat)
        list.entries.push_back({std::move(l.path), std::move(l.val), content.kind, at});
    list.entries.insert(list.entries.end(), last, old.entries.end());
    content.leaves = make_list(std::move(list));
    std::erase_if(content.roots, [&](const key_path& r) { return r.starts_with(path); });
    content.roots.insert(std::lower_bound(content.roots.begin(), content.roots.end(), path), path);
}

/// Removes the leaves and roots of `content` at and under `path`.
void remove_subtree(layer_content& content, const key_path& path) {
    const leaf_list& old = *content.leaves;
    const auto first = lower_bound(old, path);
    const auto last = subtree_end(old, first, path);
    if (first != last) {
        leaf_list list;
        list.sources = old.sources;
        list.entries.reserve(old.entries.size() - static_cast<std::size_t>(last - first));
        list.entries.insert(list.entries.end(), old.entries.begin(), first);
        list.entries.insert(list.entries.end(), last, old.entries.end());
        content.leaves = make_list(std::move(list));
    }
    std::erase_if(content.roots, [&](const key_path& r) { return r.starts_with(path); });
}

}  // namespace

status registry::load_file(const std::filesystem::path& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        return failure{errc::io_error, "cannot read file: is a directory",
                       source_position{path.string(), 0, 0}};
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return failure{errc::io_error, "cannot open file", source_position{path.string(), 0, 0}};
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        return failure{errc::io_error, "cannot read file", source_position{path.string(), 0, 0}};
    }
    const std::string name = path.string();
    return commit_document(*impl_, detail::parse_toml(text.str(), name), name);
}

status registry::load_string(std::string_view text, std::string_view name) {
    return commit_document(*impl_, detail::parse_toml(text, name), std::string(name));
}

namespace {

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

/// `server.port` -> "SERVER__PORT", `servers[1].host` -> "SERVERS__1__HOST".
std::string env_spelling(const key_path& path) {
    std::string out;
    for (const auto& seg : path.segments()) {
        if (!out.empty()) out += "__";
        out += seg.is_index() ? std::to_string(seg.index()) : upper(seg.name());
    }
    return out;
}

}  // namespace

status registry::load_env(std::string_view prefix) {
    std::vector<std::pair<std::string, std::string>> vars;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string_view entry(*e);
        const std::size_t eq = entry.find('=');
        if (eq == std::string_view::npos) continue;
        vars.emplace_back(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
    }
    return load_env(prefix, vars);
}

status registry::load_env(std::string_view prefix,
                          const std::vector<std::pair<std::string, std::string>>& variables) {
    if (prefix.empty()) return failure{errc::invalid_argument, "empty environment prefix", {}};
    const std::string head = std::string(prefix) + "__";
    return locked_commit(*impl_, [&]() -> result<change_set> {
        // Existing keys, by their environment spelling; ambiguous spellings map to nothing.
        std::unordered_map<std::string, std::optional<key_path>> known;
        for (const snapshot_entry* e : impl_->state_locked().entries) {
            for (key_path p = e->path; !p.empty(); p = p.parent()) {
                auto [it, inserted] = known.try_emplace(env_spelling(p), p);
                if (!inserted && it->second && *it->second != p) it->second.reset();
            }
        }

        layer_content content;
        content.kind = layer::env;
        content.name = head;
        for (const auto& [name, text] : variables) {
            if (name.size() <= head.size() || name.compare(0, head.size(), head) != 0) continue;
            const std::string rest = name.substr(head.size());
            std::optional<key_path> path;
            if (auto it = known.find(upper(rest)); it != known.end() && it->second) {
                path = it->second;
            } else {
                key_path p;
                bool ok = true;
                for (std::size_t start = 0;;) {
                    const std::size_t sep = rest.find("__", start);
                    const std::string seg = rest.substr(start, sep - start);
                    ok = ok && !seg.empty();
                    p.push_key(lower(seg));
                    if (sep == std::string::npos) break;
                    start = sep + 2;
                }
                if (ok) path = std::move(p);
            }
            if (!path) continue;
            auto literal = detail::parse_toml_literal(text);
            const value v = literal ? std::move(*literal) : value(text);
            put(content, *path, v, source_position{name, 0, 0});
        }
        return impl_->commit_locked(layer::env, head, std::move(content));
    });
}

namespace {

status set_in_layer(registry::impl& m, layer kind, std::string_view key, value v) {
    auto path = key_path::parse(key);
    if (!path) return path.error();
    if (path->empty()) {
        if (!v.is_table())
            return failure{errc::invalid_argument, "only a table can be set at the root", {}};
    }
    const std::string name = to_string(kind);
    return locked_commit(m, [&] {
        layer_content content = m.layer_copy_locked(kind, name);
        put(content, *path, v, source_position{name, 0, 0});
        return m.commit_locked(kind, name, std::move(content));
    });
}

}  // namespace

status registry::set_default(std::string_view key, value v) {
    return set_in_layer(*impl_, layer::defaults, key, std::move(v));
}

status registry::set(std::string_view key, value v) {
    return set_in_layer(*impl_, layer::runtime, key, std::move(v));
}

status registry::unset(std::string_view key) {
    auto path = key_path::parse(key);
    if (!path) return path.error();
    const std::string name = to_string(layer::runtime);
    return locked_commit(*impl_, [&] {
        layer_content content = impl_->layer_copy_locked(layer::runtime, name);
        remove_subtree(content, *path);
        return impl_->commit_locked(layer::runtime, name, std::move(content));
    });
}

status registry::mark_secret(std::string_view key) {
    auto path = key_path::parse(key);
    if (!path) return path.error();
    std::lock_guard lock(impl_->write_mu);
    if (std::find(impl_->secrets.begin(), impl_->secrets.end(), *path) == impl_->secrets.end()) {
        impl_->secrets.push_back(*path);
        try {
            impl_->republish_secrets_locked();
        } catch (...) {
            impl_->secrets.pop_back();  // the published state never saw it
            throw;
        }
    }
    return std::monostate{};
}

description registry::describe(std::string_view key) const {
    description d;
    auto path = key_path::parse(key);
    d.key = path ? path->str() : std::string(key);
    if (!path) return d;

    std::lock_guard lock(impl_->write_mu);
    const snapshot_state& s = impl_->state_locked();
    d.secret = s.is_secret(*path);
    d.found = s.lookup(*path).has_value();
    auto it = s.lower_bound(*path);
    const snapshot_entry* winner = it != s.entries.end() && (*it)->path == *path ? *it : nullptr;
    if (winner != nullptr) {
        d.effective = description::layer_value{winner->from, winner->where, std::nullopt};
        if (!d.secret) d.effective->val = winner->val;
    }
    // Every layer's own leaf at this key, highest layer first, except the winner itself.
    bool skipped_winner = false;
    for (auto l = impl_->layers.rbegin(); l != impl_->layers.rend(); ++l) {
        const snapshot_entry* leaf = l->find(*path);
        if (leaf == nullptr) continue;
        if (winner != nullptr && !skipped_winner && l->kind == winner->from &&
            leaf->where == winner->where) {
            skipped_winner = true;
            continue;
        }
        description::layer_value shadowed{l->kind, leaf->where, std::nullopt};
        if (!d.secret) shadowed.val = leaf->val;
        d.shadowed.push_back(std::move(shadowed));
    }
    return d;
}

std::string description::to_string() const {
    std::string out = key;
    if (!found) return out + ": not set\n";
    const auto show = [&](const layer_value& lv) {
        std::string line = lv.val ? lv.val->to_toml() : std::string("<secret>");
        line += "  (";
        line += cfgreg::to_string(lv.from);
        const std::string where = lv.where.to_string();
        if (!where.empty() && where != cfgreg::to_string(lv.from)) line += ", " + where;
        line += ')';
        return line;
    };
    if (effective) {
        out += " = " + show(*effective) + '\n';
    } else {
        out += ": a table or array; describe its leaves\n";
    }
    for (const layer_value& lv : shadowed)
        out += "  shadows " + show(lv) + '\n';
    return out;
}

void registry::impl::reload(const std::vector<std::pair<std::string, std::string_view>>& files) {
    std::vector<layer_update> updates;
    for (const auto& [name, text] : files) {
        result<detail::document> doc = detail::parse_toml(text, name);
        if (!doc) {
            report(error(doc.error().code, doc.error().message, doc.error().where));
            continue;  // this file keeps its last good content
        }
        updates.push_back({layer::file, name, file_content(std::move(*doc), name)});
    }
    if (updates.empty()) return;
    status st = locked_commit(*this, [&] { return commit_locked(std::move(updates)); });
    if (!st) report(error(st.error().code, st.error().message, st.error().where));
}

void registry::impl::reserve_file_layer(const std::string& name) {
    std::lock_guard lock(write_mu);
    layer_update empty{layer::file, name, layer_content{}};
    empty.content->kind = layer::file;
    empty.content->name = name;
    // An empty layer changes no effective value: it only takes its place in the order.
    apply_update(
        layers, empty, &*empty.content, [&](const layer_content*) { return *empty.content; },
        [](const layer_content& l) -> const layer_content& { return l; });
}

}  // namespace cfgreg
