// SPDX-License-Identifier: MIT
// A multi-threaded service that reloads its configuration while it runs (scripts/run.sh).
//
// Workers read their settings on every request, through `cfgreg::setting<T>` handles and
// `registry::get`, and count the reads; the main thread reports the read rate once a second.
// The service watches its configuration file: edit it and save, and subscribers resize the
// worker pool, change the log level and rotate the greeting. A bad edit is reported with
// file:line:column, and the service keeps running on the last good configuration.
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
#include <ctime>
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

std::string millions(double n) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1fM", n / 1e6);
    return text;
}

// "service.toml:8:9" for "/path/to/service.toml:8:9": the file name is enough here.
std::string short_source(const std::string& source) {
    return std::filesystem::path(source).filename().string();
}

std::string shown(const std::optional<cfgreg::value>& v, bool secret) {
    if (!v) return "(none)";
    return secret ? "<secret>" : v->to_toml();
}

// What a request reads from the configuration: two handles and one lookup by key.
struct knobs {
    cfgreg::setting<std::int64_t> max_body;  // get(): one atomic load
    cfgreg::setting<std::string> greeting;   // get(): an epoch pin and a copy
};

// Worker threads that serve requests; `refresh` sizes the pool to `workers.count`.
class worker_pool {
  public:
    worker_pool(const cfgreg::registry& reg, const knobs& k, cfgreg::setting<int> size)
        : reg_(reg), knobs_(k), size_(std::move(size)) {}

    // Called at start and by the `workers.count` subscriber, when the handle already holds
    // the new value; the lock makes the last caller's view win.
    void refresh() { resize(static_cast<std::size_t>(size_.get())); }

    // Stops and joins every worker.
    void stop() { resize(0); }

    // The number of workers and the reads of every worker so far, retired ones included.
    std::pair<std::size_t, std::uint64_t> stats() const {
        std::lock_guard lock(mu_);
        std::uint64_t reads = retired_reads_;
        for (const auto& w : workers_)
            reads += w->reads.load(std::memory_order_relaxed);
        return {workers_.size(), reads};
    }

  private:
    struct worker {
        std::atomic<std::uint64_t> reads{0};  // relaxed: a statistic, staleness is harmless
        std::jthread thread;                  // declared last: joined before `reads` goes
    };

    void resize(std::size_t want) {
        std::lock_guard lock(mu_);
        const std::size_t had = workers_.size();
        while (workers_.size() < want) {
            auto& w = *workers_.emplace_back(std::make_unique<worker>());
            w.thread = std::jthread([this, &w](std::stop_token stop) { serve(stop, w.reads); });
        }
        while (workers_.size() > want) {
            workers_.back()->thread = {};  // requests stop and joins
            retired_reads_ += workers_.back()->reads.load(std::memory_order_relaxed);
            workers_.pop_back();
        }
        if (want != had)
            say("[pool] workers: " + std::to_string(had) + " -> " + std::to_string(want));
    }

    void serve(std::stop_token stop, std::atomic<std::uint64_t>& reads) const {
        volatile std::int64_t reply = 0;  // keeps the compiler from dropping the reads
        std::uint64_t requests = 0;
        while (!stop.stop_requested()) {
            const std::int64_t max_body = knobs_.max_body.get();
            const std::string greeting = knobs_.greeting.get();
            const bool compress = reg_.get<bool>("limits.compress").value_or(false);
            reply = compress ? max_body / 2 : static_cast<std::int64_t>(greeting.size());
            if (++requests % 1024 == 0) reads.store(3 * requests, std::memory_order_relaxed);
        }
        reads.store(3 * requests, std::memory_order_relaxed);
    }

    const cfgreg::registry& reg_;
    const knobs& knobs_;
    cfgreg::setting<int> size_;
    mutable std::mutex mu_;
    std::vector<std::unique_ptr<worker>> workers_;  // guarded by mu_
    std::uint64_t retired_reads_ = 0;               // guarded by mu_
};

void report_error(const cfgreg::error& e) {
    cfgreg::source_position where = e.where();
    where.source = short_source(where.source);
    const bool kept = e.code() == cfgreg::errc::parse_error || e.code() == cfgreg::errc::io_error ||
                      e.code() == cfgreg::errc::rejected;
    say("[error] " + (where.source.empty() ? "" : where.to_string() + ": ") + e.message() +
        (kept ? " (still running on the last good configuration)" : ""));
}

void print_changes(const cfgreg::change_batch& batch) {
    for (const cfgreg::change_event& e : batch.changes) {
        say("[change] " + e.key + ": " + shown(e.old_value, e.secret) + " -> " +
            shown(e.new_value, e.secret) + "  (generation " + std::to_string(e.generation) + ", " +
            short_source(e.source) + ")");
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::filesystem::path config =
        std::filesystem::path(__FILE__).parent_path() / "config" / "service.toml";
    std::optional<std::chrono::steady_clock::time_point> deadline;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--seconds" && i + 1 < argc) {
            deadline =
                std::chrono::steady_clock::now() + std::chrono::seconds(std::atoi(argv[++i]));
        } else if (!arg.starts_with('-')) {
            config = arg;
        } else {
            std::fputs("usage: service [CONFIG] [--seconds N]\n", stderr);
            return 64;
        }
    }

    // SIGINT and SIGTERM are taken by the main loop below; block them before any thread
    // starts, so that every thread inherits the mask.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    cfgreg::registry reg;
    reg.on_error(report_error);
    reg.validate("workers.count", [](const cfgreg::snapshot& candidate) {
        const auto n = candidate.read<int>("workers.count");
        if (!n && n.code() == cfgreg::errc::missing) return std::optional<std::string>();
        if (!n || *n < 1 || *n > 16) return std::optional<std::string>("must be from 1 to 16");
        return std::optional<std::string>();
    });

    const knobs k{reg.setting<std::int64_t>("limits.max_body", 65536),
                  reg.setting<std::string>("service.greeting", "hello")};
    worker_pool pool(reg, k, reg.setting<int>("workers.count", 4));
    std::atomic<log_level> level{info};  // relaxed: a stale level costs one line at most
    std::mutex greeting_mu;
    std::string greeting = k.greeting.get();  // guarded by greeting_mu

    // The batch subscriber comes first, so each change is printed before the reactions to it.
    cfgreg::subscription subscriptions[] = {
        reg.subscribe_batch(print_changes),
        reg.subscribe("workers.count", [&](const cfgreg::change_event&) { pool.refresh(); }),
        reg.subscribe("log.level",
                      [&](const cfgreg::change_event&) {
                          const log_level next = level_of(reg.get_or<std::string>("log.level", ""));
                          const log_level prev = level.exchange(next, std::memory_order_relaxed);
                          if (next != prev)
                              say(std::string("[log] level: ") + level_names[prev] + " -> " +
                                  level_names[next]);
                      }),
        reg.subscribe("service.greeting",
                      [&](const cfgreg::change_event&) {
                          std::lock_guard lock(greeting_mu);
                          const std::string next = k.greeting.get();
                          if (next != greeting)
                              say("[greeter] \"" + greeting + "\" -> \"" + next + "\"");
                          greeting = next;
                      }),
    };

    say("service: watching " + config.string());
    say("service: edit it in another terminal and save; Ctrl-C stops");
    cfgreg::watch_handle watch = reg.watch(config);
    pool.refresh();  // the pool follows its fallback size if the file did not load

    // The reporter: once a second, until a stop signal or the deadline.
    using clock = std::chrono::steady_clock;
    auto last = clock::now();
    std::uint64_t last_reads = pool.stats().second;
    for (;;) {
        std::chrono::nanoseconds wait = std::chrono::seconds(1);
        if (deadline)
            wait = std::clamp<std::chrono::nanoseconds>(*deadline - clock::now(), {}, wait);
        const timespec timeout{static_cast<std::time_t>(wait.count() / 1'000'000'000),
                               static_cast<long>(wait.count() % 1'000'000'000)};
        if (const int sig = sigtimedwait(&stop_signals, nullptr, &timeout); sig > 0) {
            say(std::string("service: ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ", stopping");
            break;
        }

        const auto now = clock::now();
        const auto [count, reads] = pool.stats();
        const double rate = static_cast<double>(reads - last_reads) /
                            std::chrono::duration<double>(now - last).count();
        const log_level current = level.load(std::memory_order_relaxed);
        if (current <= info) {
            std::unique_lock lock(greeting_mu);
            std::string line = greeting + " from " + std::to_string(count) +
                               " workers: " + millions(rate) + " reads/s";
            lock.unlock();
            if (current == debug)
                line += " (" + millions(static_cast<double>(reads)) + " in all, generation " +
                        std::to_string(reg.generation()) + ")";
            say(line);
        }
        last = now;
        last_reads = reads;
        if (deadline && now >= *deadline) break;
    }

    // Shutdown: stop the watch (joins its thread: no callback runs after), then the workers.
    watch.stop();
    for (cfgreg::subscription& s : subscriptions)
        s.unsubscribe();
    pool.stop();
    say("service: stopped after " + millions(static_cast<double>(pool.stats().second)) + " reads");
    return 0;
}
