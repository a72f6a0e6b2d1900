// SPDX-License-Identifier: MIT
// Private state of `cfgreg::registry` and its single write path.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cfgreg/registry.hpp"
#include "cfgreg/sync_map.hpp"
#include "notifier.hpp"

namespace cfgreg::detail {

/// The content of one layer: its leaves and the subtrees it replaces in lower layers.
/// Every leaf that is not a table also replaces the subtree at its key: `roots` lists
/// only the other paths that do (arrays, tables set as a whole), sorted.
struct layer_content {
    layer kind = layer::defaults;
    std::string name;  ///< file path or string name, env prefix, "defaults" or "runtime"
    /// Sorted by path, each with `from == kind` and `secret == false`; never null.
    /// Immutable: an edit of the layer builds a new list.
    std::shared_ptr<const leaf_list> leaves = std::make_shared<const leaf_list>();
    std::vector<key_path> roots;

    /// The layer's leaf at `path`, or null.
    const snapshot_entry* find(const key_path& path) const;
};

/// One layer's new content in a commit; no content removes the layer.
struct layer_update {
    layer kind = layer::file;
    std::string name;
    std::optional<layer_content> content;
};

/// One effective value that a commit adds, changes or removes.
struct change {
    change_kind what = change_kind::added;
    const snapshot_entry* before = nullptr;  ///< into `change_set::before`; null when added
    const snapshot_entry* after = nullptr;   ///< into `change_set::after`; null when removed
    const key_path& path() const { return after != nullptr ? after->path : before->path; }
};

/// Everything one commit did, at the generation it produced. Holds both states, so
/// the entry pointers stay valid as long as the change set lives.
struct change_set {
    std::uint64_t generation = 0;
    std::string origin;  ///< name of the layer whose change made this set
    std::shared_ptr<const snapshot_state> before;
    std::shared_ptr<const snapshot_state> after;
    std::vector<change> changes;
};

/// A commit worked out but not yet applied: the next state, its change set, and what
/// the map of leaves must take to match it (invariant 6 of `registry::impl`).
struct commit_plan {
    change_set cs;  ///< `cs.after` is `next`
    std::shared_ptr<snapshot_state> next;
    /// `next->entries` before secret entries were replaced by copies (empty without
    /// secrets): what the map points to, leaves in the layers' lists.
    std::vector<const snapshot_entry*> shared_leaves;
    std::vector<std::size_t> adds;    ///< indices into `next->entries`: keys new to the map
    std::vector<std::size_t> stores;  ///< present keys whose leaf object changes
    const snapshot_entry* leaf(std::size_t n) const {
        return shared_leaves.empty() ? next->entries[n] : shared_leaves[n];
    }
};

/// What readers load with one acquire: the current snapshot state.
struct published_state {
    std::shared_ptr<const snapshot_state> state;
};

}  // namespace cfgreg::detail

namespace cfgreg {

// Invariants:
//  1. `write_mu` guards `layers`, `slots`, `secrets` and the hooks, and
//     serializes every write to `leaves`, `current` and `generation`. Nothing
//     else locks; readers never touch it.
//  2. After each commit, `leaves` holds exactly the leaves of `current`'s state
//     (each at its canonical text, as a pointer to the leaf in its layer's list),
//     except while that commit is between its first store and its publish; during
//     that window a reader may see some keys new and others old, never a torn value.
//  3. `current` is never null. A writer publishes a new `published_state`
//     with a release store (paired with readers' acquire loads) and retires
//     the old one through the epoch domain; readers dereference it only while
//     pinned, so none sees it freed.
//  4. `generation` equals `current`'s state's generation after every
//     commit; it is written only under `write_mu` and read relaxed (a stale
//     count is only a stale count).
//  5. Every live `setting` slot registered under key K was updated with K's
//     effective value of the latest commit before `write_mu` was released.
//  6. Leaves are shared, never copied: a layer's list is immutable, and the
//     state of every commit that shows one of its leaves holds the list (a
//     leaf marked secret is shown through a copy the state owns; `leaves` still
//     points into the list). So a pointer in `leaves` stays valid while
//     `current`'s state does. A leaf is complete before its pointer is stored
//     (the map's store releases it; `visit` acquires). A commit stores a new
//     pointer for every key whose leaf object changes, even with an equal value,
//     before it publishes; it retires the old `published_state` (the last hold
//     of the old lists but for change sets and snapshots) only after those
//     stores, so a reader pinned when it loaded an old pointer unpins before
//     that list can be freed.
//  7. A commit that throws (out of memory) leaves everything as it was: all
//     that can fail runs before the first change that readers or later
//     commits could see, and `leaves.store_all` adds the new keys all or
//     none. Past that point nothing allocates but the map's value nodes of
//     builds without inline words, and a failure there terminates.
struct registry::impl {
    impl();
    ~impl();

    /// The single write path. Replaces (or, with `content == nullopt`, removes) the
    /// layer of kind `kind` named `name`, computes the new effective values and the
    /// change set, runs `validate_hook`, then applies the change set to `leaves`,
    /// publishes the new snapshot, bumps `generation` and refreshes handles.
    /// Precondition: `write_mu` held. Returns the change set (empty when nothing
    /// changed), or the hook's rejection.
    result<detail::change_set> commit_locked(layer kind, const std::string& name,
                                             std::optional<detail::layer_content> content);
    /// As above, for several layers in one commit: one candidate, one
    /// validation, one generation and one batch of notifications (a reload
    /// of files saved together).
    result<detail::change_set> commit_locked(std::vector<detail::layer_update> updates);
    /// The candidate layers, the next state and the change set of a commit of `updates`;
    /// changes nothing.
    detail::commit_plan plan_commit_locked(const std::vector<detail::layer_update>& updates) const;
    /// Applies a validated plan: the layers, the map of leaves, the published state,
    /// the generation and the handles (invariant 7: all or nothing). Moves the
    /// contents out of `updates`.
    void apply_commit_locked(detail::commit_plan& plan, std::vector<detail::layer_update>& updates);
    /// Gives each handle on a path of `updates` its new value; drops handles that ended.
    void refresh_handles_locked(
        const std::vector<std::pair<key_path, std::optional<value>>>& updates) noexcept;
    /// The new value of every setting handle that `cs` touches, read from `next`.
    std::vector<std::pair<key_path, std::optional<value>>> handle_values(
        const detail::change_set& cs, const detail::snapshot_state& next) const;

    /// Runs the after-commit hook, which queues the commit's notifications without
    /// running any callback; `notes.drain()` delivers them once `write_mu` is released.
    void after_commit_locked(const detail::change_set& changes) const;

    /// The current state; precondition: `write_mu` held.
    const detail::snapshot_state& state_locked() const {
        // Relaxed: every store to `current` happens under `write_mu` (inv. 1), never stale here.
        return *current.load(std::memory_order_relaxed)->state;
    }

    /// A copy of the layer `kind`/`name`, or an empty one with that identity.
    detail::layer_content layer_copy_locked(layer kind, const std::string& name) const;

    /// Republishes the current entries with secrets recomputed (no generation change).
    void republish_secrets_locked();

    /// The value a handle on `path` should hold in `state`: a leaf, a composite, or nothing.
    static std::optional<value> handle_value(const detail::snapshot_state& state,
                                             const key_path& path);

    mutable std::mutex write_mu;
    std::vector<detail::layer_content> layers;  // sorted by kind, then load order
    std::map<key_path, std::vector<std::weak_ptr<detail::slot_base>>> slots;
    std::vector<key_path> secrets;

    /// Called under `write_mu` with the candidate change set before
    /// anything is applied; a returned failure rejects the commit and
    /// leaves the registry unchanged.
    std::function<std::optional<failure>(const detail::change_set&)> validate_hook;
    /// Called with `write_mu` held after a commit that changed something, so
    /// that commits reach it in generation order; it must run no user code.
    std::function<void(const detail::change_set&)> after_commit_hook;

    // ---- Reload, validation and notification ----------------------------------------------
    // `install_hooks`, `report` and `stop_watches` are in src/reload.cpp; `reload` and
    // `reserve_file_layer` are in src/registry.cpp.
    // `validators` is guarded by `write_mu`; `error_mu` guards `error_handler`;
    // `watch_mu` guards `watches`. None of them is held while user code runs, except
    // `write_mu` around validators (documented on `registry::validate`).

    /// Wires the hooks above to the validators and the notifier.
    void install_hooks();
    /// Sends `e` to the error handler (or the default stderr line).
    void report(const error& e) const;
    /// Replaces the file layers named in `files` (name, text) in one commit: parse,
    /// validate, commit, notify. A file that fails to parse is reported and left
    /// out; a rejection of the candidate is reported and nothing changes.
    void reload(const std::vector<std::pair<std::string, std::string_view>>& files);
    /// Gives the file layer `name` its place among the layers now, empty, unless it has one.
    void reserve_file_layer(const std::string& name);
    /// Stops and joins every watch of this registry.
    void stop_watches() noexcept;

    std::vector<std::pair<key_path, registry::validator>> validators;
    mutable std::mutex error_mu;
    std::function<void(const error&)> error_handler;
    std::mutex watch_mu;
    std::vector<std::weak_ptr<watch_handle::state>> watches;
    detail::notifier notes{[this](const error& e) { report(e); }};

    sync_map<std::string, const snapshot_entry*> leaves;
    std::atomic<const detail::published_state*> current;
    std::atomic<std::uint64_t> generation{0};
};

}  // namespace cfgreg
