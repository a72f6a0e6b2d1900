// SPDX-License-Identifier: MIT
// A multi-threaded service that reloads its configuration while it runs (scripts/run.sh).
//
// Workers read settings on every request, through a `cfgreg::setting<T>` handle and through
// `registry::get`, and count the reads; the main thread reports the read rate once a second.
// The service watches its configuration file: edit it and save, and subscribers resize the
// worker pool, change the log level and rotate the greeting. A bad edit (a syntax error,
// or a value of the wrong type) is reported with file:line:column, and the service keeps
// running on the last good configuration.
//
//     service [CONFIG] [--seconds N]    CONFIG defaults to examples/config/service.toml;
//                                       stops after N seconds, or on Ctrl-C (or SIGTERM)
#include <cfgreg/registry.hpp>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

enum log_level { debug, info, warn };
constexpr const char* level_names[] = {"debug", "info", "warn"};

log_level level_of(std::string_view name) {
    return name == "debug" ? debug : name == "warn" ? warn : info;
}

// Prints one whole line at once, whichever thread calls.
void say(const std::string& text) {
    static std::mutex mu;
    std::lock_guard lock(mu);
    std::fputs((text + '\n').c_str(), stdout);
    std::fflush(stdout);
}

// "service.toml:8:9" for "/path/to/service.toml:8:9": the file name is enough here.
std::string short_source(const std::string& source) {
    return std::filesystem::path(source).filename().string();
}

std::string shown(const std::optional<cfgreg::value>& v, bool secret) {
    return !v ? "(none)" : secret ? "<secret>" : v->to_toml();
}

// Threads that serve requests of 0 to 99,999 bytes, each of which reads two settings.
class worker_pool {
  public:
    explicit worker_pool(cfgreg::registry& reg)
        : reg_(reg),
          size_(reg.setting<int>("workers.count", 4)),
          max_body_(reg.setting<std::int64_t>("limits.max_body", 65536)) {}

    // Sizes the pool to `workers.count`; the lock makes the latest caller's view win.
    void refresh() { resize(static_cast<std::size_t>(size_.get())); }
    void stop() { resize(0); }

    struct totals {
        std::size_t workers = 0;
        std::uint64_t requests = 0, rejected = 0;
    };
    totals stats() const {
        std::lock_guard lock(mu_);
        totals t = retired_;
        t.workers = workers_.size();
        for (const auto& w : workers_) {
            t.requests += w->requests.load(std::memory_order_relaxed);
            t.rejected += w->rejected.load(std::memory_order_relaxed);
        }
        return t;
    }

  private:
    struct worker {
        // Relaxed: statistics; a reporter that reads them a little stale is fine.
        std::atomic<std::uint64_t> requests{0}, rejected{0};
        std::jthread thread;  // declared last: joined before the counters go
    };

    void serve(std::stop_token stop, worker& w) const {
        for (std::uint64_t n = 1, rejected = 0; !stop.stop_requested(); ++n) {
            const auto size = static_cast<std::int64_t>(n % 100'000);
            const bool compress = reg_.get<bool>("limits.compress").value_or(false);  // by key
            if ((compress ? size / 4 : size) > max_body_.get()) ++rejected;  // one atomic load
            if (n % 1024 != 0 && !stop.stop_requested()) continue;
            w.requests.store(n, std::memory_order_relaxed);
            w.rejected.store(rejected, std::memory_order_relaxed);
        }
    }

    void resize(std::size_t want) {
        std::lock_guard lock(mu_);
        const std::size_t had = workers_.size();
        while (workers_.size() < want) {
            worker& w = *workers_.emplace_back(std::make_unique<worker>());
            w.thread = std::jthread([this, &w](std::stop_token stop) { serve(stop, w); });
        }
        for (; workers_.size() > want; workers_.pop_back()) {
            workers_.back()->thread = {};  // requests stop and joins
            retired_.requests += workers_.back()->requests.load(std::memory_order_relaxed);
            retired_.rejected += workers_.back()->rejected.load(std::memory_order_relaxed);
        }
        if (want != had)
            say("[pool] workers: " + std::to_string(had) + " -> " + std::to_string(want));
    }

    const cfgreg::registry& reg_;
    cfgreg::setting<int> size_;
    cfgreg::setting<std::int64_t> max_body_;
    mutable std::mutex mu_;
    std::vector<std::unique_ptr<worker>> workers_;  // guarded by mu_
    totals retired_;                                // guarded by mu_
};

void print_changes(const cfgreg::change_batch& batch) {
    for (const cfgreg::change_event& e : batch.changes)
        say("[change] " + e.key + ": " + shown(e.old_value, e.secret) + " -> " +
            shown(e.new_value, e.secret) + "  (generation " + std::to_string(e.generation) + ", " +
            short_source(e.source) + ")");
}

void print_error(const cfgreg::error& e) {
    cfgreg::source_position where = e.where();
    where.source = short_source(where.source);
    const bool kept = e.code() == cfgreg::errc::parse_error || e.code() == cfgreg::errc::io_error ||
                      e.code() == cfgreg::errc::rejected;
    say("[error] " + (where.source.empty() ? "" : where.to_string() + ": ") + e.message() +
        (kept ? " (still running on the last good configuration)" : ""));
}

std::optional<std::string> check_workers(const cfgreg::snapshot& candidate) {
    const auto n = candidate.read<int>("workers.count");
    if (n.code() == cfgreg::errc::missing || (n && *n >= 1 && *n <= 16)) return std::nullopt;
    return "must be an integer from 1 to 16";
}

// Rejects a candidate whose `key` holds a value that does not read as a T (a string where
// a boolean belongs, a float for an integer); the reason names the file, line and column.
template <class T>
cfgreg::registry::validator expect(std::string key) {
    return [key = std::move(key)](const cfgreg::snapshot& candidate) -> std::optional<std::string> {
        const cfgreg::result<T> v = candidate.read<T>(key);
        if (v || v.code() == cfgreg::errc::missing) return std::nullopt;
        cfgreg::source_position where = v.error().where;
        where.source = std::filesystem::path(where.source).filename().string();
        return where.to_string() + ": " + v.error().message;
    };
}

}  // namespace

int main(int argc, char** argv) {
    std::filesystem::path config = std::filesystem::path(__FILE__).parent_path() / "config";
    config /= "service.toml";
    int seconds_left = -1;  // run until a stop signal
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--seconds" && i + 1 < argc) {
            seconds_left = std::max(1, std::atoi(argv[++i]));
        } else if (arg.starts_with('-')) {
            std::fputs("usage: service [CONFIG] [--seconds N]\n", stderr);
            return 64;
        } else {
            config = arg;
        }
    }

    // The main loop takes SIGINT and SIGTERM; block them before any thread starts, so that
    // every thread inherits the mask and none is interrupted.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    cfgreg::registry reg;
    reg.on_error(print_error);
    reg.validate("workers.count", check_workers);
    reg.validate("service.greeting", expect<std::string>("service.greeting"));
    reg.validate("log.level", expect<std::string>("log.level"));
    reg.validate("limits.max_body", expect<std::int64_t>("limits.max_body"));
    reg.validate("limits.compress", expect<bool>("limits.compress"));
    worker_pool pool(reg);
    std::atomic<log_level> level{info};  // relaxed: a stale level costs one report line
    cfgreg::setting<std::string> greeting_setting =
        reg.setting<std::string>("service.greeting", "hello");
    std::mutex greeting_mu;
    std::string greeting = greeting_setting.get();  // guarded by greeting_mu

    auto on_level = [&](const cfgreg::change_event&) {
        const log_level next = level_of(reg.get_or<std::string>("log.level", ""));
        const log_level prev = level.exchange(next, std::memory_order_relaxed);
        if (next != prev)
            say(std::string("[log] ") + level_names[prev] + " -> " + level_names[next]);
    };
    auto on_greeting = [&](const cfgreg::change_event&) {
        std::lock_guard lock(greeting_mu);
        const std::string next = greeting_setting.get();
        if (next != greeting) say("[greeter] \"" + greeting + "\" -> \"" + next + "\"");
        greeting = next;
    };
    // Subscribers run on the watch's thread, in this order: the batch first, so each change
    // is printed before the reactions to it.
    cfgreg::subscription subscriptions[] = {
        reg.subscribe_batch(print_changes),
        reg.subscribe("workers.count", [&](const cfgreg::change_event&) { pool.refresh(); }),
        reg.subscribe("log.level", on_level),
        reg.subscribe("service.greeting", on_greeting),
    };

    say("service: watching " + config.string());
    say("service: edit it in another terminal and save; Ctrl-C stops");
    cfgreg::watch_handle watch = reg.watch(config);
    pool.refresh();  // if the file did not load, the pool takes its fallback size

    // The reporter: once a second, until a stop signal or the end of --seconds.
    using clock = std::chrono::steady_clock;
    auto last = clock::now();
    worker_pool::totals before = pool.stats();
    for (; seconds_left != 0; --seconds_left) {
        const timespec one_second{1, 0};
        if (const int sig = sigtimedwait(&stop_signals, nullptr, &one_second); sig > 0) {
            say(std::string("service: ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ", stopping");
            break;
        }

        const auto now = clock::now();
        const worker_pool::totals t = pool.stats();
        const double seconds = std::chrono::duration<double>(now - last).count();
        const auto requests = static_cast<double>(t.requests - before.requests);
        const auto rejected = static_cast<double>(t.rejected - before.rejected);
        const log_level current = level.load(std::memory_order_relaxed);
        if (current <= info && requests > 0) {
            char line[256];
            std::lock_guard lock(greeting_mu);
            std::snprintf(
                line, sizeof line,
                "%s from %zu workers: %.1fM reads/s, %.0f%% of requests over limits.max_body",
                greeting.c_str(), t.workers, 2 * requests / seconds / 1e6,
                100 * rejected / requests);
            say(line +
                (current == debug ? " (generation " + std::to_string(reg.generation()) + ")" : ""));
        }
        last = now;
        before = t;
    }

    // Shutdown: stop the watch (it joins its thread, so no callback runs after), then the pool.
    watch.stop();
    for (cfgreg::subscription& s : subscriptions)
        s.unsubscribe();
    pool.stop();
    say("service: stopped");
    return 0;
}
