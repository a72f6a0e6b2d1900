// SPDX-License-Identifier: MIT
// Hot reload, validators, change notifications and the error channel of `cfgreg::registry`.
#include <exception>
#include <fstream>
#include <sstream>
#include <utility>

#include "error_sink.hpp"
#include "file_watcher.hpp"
#include "registry_impl.hpp"

namespace cfgreg {

struct watch_handle::state {
    std::unique_ptr<detail::file_watcher> watcher_;
    std::atomic<bool> stopped_{false};

    void stop() noexcept {
        // Relaxed: the flag publishes no other memory; only active() reads it. It is set
        // before the join, so active() on another thread turns false while stop() waits.
        stopped_.store(true, std::memory_order_relaxed);
        watcher_->stop();
    }
};

void watch_handle::stop() noexcept {
    if (state_ != nullptr) state_->stop();
}

bool watch_handle::active() const noexcept {
    // Relaxed: nothing is read on the strength of this flag; a stale true only means that
    // stop() has just begun on another thread, and stop() itself joins.
    return state_ != nullptr && !state_->stopped_.load(std::memory_order_relaxed);
}

bool watch_handle::polling() const noexcept {
    return state_ != nullptr && state_->watcher_->polling();
}

namespace {

error to_error(const failure& f) {
    return error(f.code, f.message, f.where);
}

change_event to_event(const detail::change& c, const detail::change_set& cs) {
    change_event e;
    e.key = c.path().str();
    e.kind = c.what;
    if (c.before != nullptr) e.old_value = c.before->val;
    if (c.after != nullptr) e.new_value = c.after->val;
    e.generation = cs.generation;
    e.source = c.after != nullptr ? c.after->where.to_string() : cs.origin;
    e.secret = (c.after != nullptr ? c.after : c.before)->secret;
    return e;
}

// True when the change set touches `prefix` or a key under it.
bool touches(const detail::change_set& cs, const key_path& prefix) {
    if (prefix.segments().empty()) return true;
    for (const detail::change& c : cs.changes) {
        if (c.path().starts_with(prefix)) return true;
    }
    return false;
}

key_path canonical(std::string_view key) {
    if (key.empty()) return key_path{};
    result<key_path> path = key_path::parse(key);
    if (!path) throw to_error(path.error());
    return std::move(*path);
}

std::optional<std::string> read_file(const std::filesystem::path& file) {
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec)) return std::nullopt;
    std::ifstream in(file, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return std::nullopt;
    return std::move(text).str();
}

}  // namespace

// ---- impl -----------------------------------------------------------------------------------

void registry::impl::install_hooks() {
    // Runs under write_mu, on the candidate, before anything is applied.
    validate_hook = [this](const detail::change_set& cs) -> std::optional<failure> {
        if (cs.changes.empty()) return std::nullopt;
        const cfgreg::snapshot candidate(cs.after);
        for (const auto& [prefix, fn] : validators) {
            if (!touches(cs, prefix)) continue;
            const std::string what = prefix.str().empty() ? "the configuration" : prefix.str();
            std::string reason;
            try {
                std::optional<std::string> verdict = fn(candidate);
                if (!verdict) continue;
                reason = std::move(*verdict);
            } catch (const std::exception& e) {
                reason = std::string("validator threw: ") + e.what();
            } catch (...) {
                reason = "validator threw a non-standard exception";
            }
            return failure{errc::rejected, "rejected " + what + ": " + reason,
                           source_position{cs.origin, 0, 0}};
        }
        return std::nullopt;
    };

    // Runs under write_mu, after the new values are visible; queues, calls nobody.
    after_commit_hook = [this](const detail::change_set& cs) {
        if (notes.idle()) return;  // nobody listens: skip copying every changed value
        change_batch batch;
        batch.generation = cs.generation;
        batch.changes.reserve(cs.changes.size());
        for (const detail::change& c : cs.changes)
            batch.changes.push_back(to_event(c, cs));
        notes.enqueue(std::move(batch));  // delivered by notes.drain() after the commit
    };
}

void registry::impl::report(const error& e) const {
    std::function<void(const error&)> handler;
    {
        std::lock_guard lock(error_mu);
        handler = error_handler;
    }
    try {
        if (handler) {
            handler(e);
            return;
        }
    } catch (...) {
        // A throwing handler must not take the watcher thread down; fall back to stderr.
    }
    detail::write_default_error(e.what());
}

void registry::impl::stop_watches() noexcept {
    std::vector<std::shared_ptr<watch_handle::state>> live;
    {
        std::lock_guard lock(watch_mu);
        for (auto& w : watches) {
            if (auto s = w.lock()) live.push_back(std::move(s));
        }
        watches.clear();
    }
    for (auto& s : live)
        s->stop();
}

// ---- registry ---------------------------------------------------------------------------------

watch_handle registry::watch(const std::filesystem::path& file, watch_options options) {
    return watch(std::vector<std::filesystem::path>{file}, options);
}

watch_handle registry::watch(const std::vector<std::filesystem::path>& files,
                             watch_options options) {
    impl* m = impl_.get();
    detail::file_watcher_options engine;
    engine.debounce = options.debounce;
    engine.max_wait = options.max_wait;
    engine.settle = options.settle;
    engine.empty_grace = options.empty_grace;
    engine.poll_interval = options.poll_interval;
    engine.force_polling = options.force_polling;

    // Files saved in one window are applied together: one candidate, one validation.
    auto on_change = [m](std::vector<detail::file_change> changes) {
        std::vector<std::pair<std::string, std::string_view>> batch;
        for (const detail::file_change& c : changes)
            batch.emplace_back(c.path, c.content);
        m->reload(batch);
    };
    auto on_error = [m](const detail::watch_error& e) {
        const errc code = e.kind == detail::watch_error_kind::degraded   ? errc::watch_degraded
                          : e.kind == detail::watch_error_kind::callback ? errc::callback_failed
                                                                         : errc::io_error;
        m->report(error(code, e.message, source_position{e.path, 0, 0}));
    };

    auto s = std::make_shared<watch_handle::state>();
    s->watcher_ = std::make_unique<detail::file_watcher>(on_change, on_error, engine);

    // Each file takes its place in the layer order now, even one that cannot be
    // loaded yet, so that the files' order decides precedence whenever they load.
    for (const std::filesystem::path& file : files)
        m->reserve_file_layer(file.string());

    // Load the files now, from the very bytes the watch starts from, so that no edit
    // made between this load and the first event can be missed.
    std::vector<std::optional<std::string>> texts;
    std::vector<std::pair<std::string, std::string_view>> loaded;
    texts.reserve(files.size());
    for (const std::filesystem::path& file : files) {
        texts.push_back(read_file(file));
        if (texts.back()) {
            loaded.emplace_back(file.string(), *texts.back());
        } else {
            m->report(error(errc::io_error, "cannot read file", source_position{file.string()}));
        }
    }
    m->reload(loaded);
    for (std::size_t i = 0; i < files.size(); ++i) {
        if (texts[i])
            s->watcher_->add(files[i], *texts[i]);
        else
            s->watcher_->add(files[i]);
    }

    {
        std::lock_guard lock(m->watch_mu);
        std::erase_if(m->watches, [](const auto& w) { return w.expired(); });
        m->watches.push_back(s);
    }
    return watch_handle(std::move(s));
}

subscription registry::subscribe(std::string_view key,
                                 std::function<void(const change_event&)> fn) {
    return impl_->notes.subscribe(canonical(key).str(), false, std::move(fn));
}

subscription registry::subscribe_prefix(std::string_view prefix,
                                        std::function<void(const change_event&)> fn) {
    return impl_->notes.subscribe(canonical(prefix).str(), true, std::move(fn));
}

subscription registry::subscribe_batch(std::function<void(const change_batch&)> fn) {
    return impl_->notes.subscribe_batch(std::move(fn));
}

void registry::validate(std::string_view key_or_prefix, validator fn) {
    key_path prefix = canonical(key_or_prefix);
    std::lock_guard lock(impl_->write_mu);
    impl_->validators.emplace_back(std::move(prefix), std::move(fn));
}

void registry::on_error(std::function<void(const error&)> handler) {
    std::lock_guard lock(impl_->error_mu);
    impl_->error_handler = std::move(handler);
}

}  // namespace cfgreg
