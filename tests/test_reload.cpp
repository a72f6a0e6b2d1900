// SPDX-License-Identifier: MIT
// Tests of hot reload through the registry: real files in a fresh temporary
// folder, real inotify, and bounded waits on conditions. The engine's own
// cases are in test_file_watcher.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#define CATCH_CONFIG_ENABLE_OPTIONAL_STRINGMAKER
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "cfgreg/detail/epoch.hpp"
#include "cfgreg/registry.hpp"
#include "temp_files.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using cfgreg::change_batch;
using cfgreg::change_event;
using cfgreg::change_kind;
using cfgreg::errc;
using cfgreg::registry;
using cfgreg::value;
using cfgreg_test::publish_config_map;
using cfgreg_test::save_by_rename;
using cfgreg_test::write_chunks;
using cfgreg_test::write_file;

namespace Catch {
template <>
struct StringMaker<cfgreg::value> {
    static std::string convert(const cfgreg::value& v) { return v.to_toml(); }
};
}  // namespace Catch

namespace {

constexpr auto patience = 15s;

const cfgreg::watch_options fast{.debounce = 20ms, .max_wait = 200ms, .empty_grace = 300ms};

/// Long enough for a wrong notification to show up; used only where
/// nothing can announce that no notification comes, and always followed
/// by a marker that must arrive.
constexpr auto quiet_period = 600ms;

/// A scratch folder of this file's tests (see cfgreg_test::temp_dir).
class temp_dir : public cfgreg_test::temp_dir {
  public:
    temp_dir() : cfgreg_test::temp_dir("cfgreg_reload_") {}
};

/// Waits for a condition that no handler announces, checking it every millisecond.
template <class Predicate>
bool eventually(Predicate predicate) {
    return cfgreg_test::eventually_within(patience, std::move(predicate));
}

/// Records what a registry delivers (batches, per-key events, errors) and lets the test wait.
class recorder {
  public:
    std::function<void(const change_batch&)> on_batch() {
        return [this](const change_batch& b) {
            std::lock_guard lock(mutex_);
            batches_.push_back(b);
            changed_.notify_all();
        };
    }

    std::function<void(const change_event&)> on_event() {
        return [this](const change_event& e) {
            std::lock_guard lock(mutex_);
            events_.push_back(e);
            changed_.notify_all();
        };
    }

    std::function<void(const cfgreg::error&)> on_error() {
        return [this](const cfgreg::error& e) {
            std::lock_guard lock(mutex_);
            errors_.push_back(e);
            changed_.notify_all();
        };
    }

    bool wait_batches(std::size_t count) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, patience, [&] { return batches_.size() >= count; });
    }

    bool wait_batch_or_error() {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, patience,
                                 [&] { return !batches_.empty() || !errors_.empty(); });
    }

    /// Waits for `count` events of `key` ("" for any key).
    bool wait_events(std::size_t count, std::string_view key = {}) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, patience, [&] { return event_count_locked(key) >= count; });
    }

    bool wait_error(errc code, std::size_t count = 1) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, patience, [&] { return error_count_locked(code) >= count; });
    }

    std::vector<change_batch> batches() const {
        std::lock_guard lock(mutex_);
        return batches_;
    }

    std::vector<change_event> events() const {
        std::lock_guard lock(mutex_);
        return events_;
    }

    std::vector<cfgreg::error> errors() const {
        std::lock_guard lock(mutex_);
        return errors_;
    }

    std::vector<cfgreg::error> errors(errc code) const {
        std::lock_guard lock(mutex_);
        std::vector<cfgreg::error> out;
        for (const auto& e : errors_) {
            if (e.code() == code) out.push_back(e);
        }
        return out;
    }

  private:
    std::size_t event_count_locked(std::string_view key) const {
        std::size_t n = 0;
        for (const auto& e : events_)
            n += key.empty() || e.key == key ? 1 : 0;
        return n;
    }

    std::size_t error_count_locked(errc code) const {
        std::size_t n = 0;
        for (const auto& e : errors_)
            n += e.code() == code ? 1 : 0;
        return n;
    }

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<change_batch> batches_;
    std::vector<change_event> events_;
    std::vector<cfgreg::error> errors_;
};

std::vector<std::string> keys_of(const change_batch& b) {
    std::vector<std::string> keys;
    for (const auto& c : b.changes)
        keys.push_back(c.key);
    return keys;
}

const change_event* find_change(const change_batch& b, std::string_view key) {
    for (const auto& c : b.changes) {
        if (c.key == key) return &c;
    }
    return nullptr;
}

std::size_t count_entries(const char* dir) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir))
        ++n;
    return n;
}

std::string v_is(int n) {
    return "v = " + std::to_string(n) + "\n";
}

}  // namespace

TEST_CASE("reload: one save raising several write events notifies once, identical bytes never",
          "[reload]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, "a = 1\nb = 1\n");
    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    auto w = reg.watch(file, fast);
    REQUIRE(reg.get<int>("a") == 1);
    auto batches = reg.subscribe_batch(r.on_batch());
    auto on_a = reg.subscribe("a", r.on_event());

    write_chunks(file, {"a = 2\n", "b = 2\n", "c = 3\n"});
    REQUIRE(::chmod(file.c_str(), 0600) == 0);
    REQUIRE(r.wait_batches(1));
    CHECK(reg.get<int>("a") == 2);
    CHECK(reg.get<int>("c") == 3);

    const auto generation = reg.generation();
    write_file(file, "a = 2\nb = 2\nc = 3\n");
    save_by_rename(file, "a = 2\nb = 2\nc = 3\n");
    std::this_thread::sleep_for(quiet_period);
    // New bytes with the same values (a comment, spacing) change no effective value either.
    save_by_rename(file, "# tuned\na = 2\nb =   2\nc = 3\n");
    std::this_thread::sleep_for(quiet_period);
    CHECK(reg.generation() == generation);
    save_by_rename(file, "a = 4\nb = 2\nc = 3\n");
    REQUIRE(r.wait_batches(2));
    REQUIRE(r.wait_events(2, "a"));

    const auto all = r.batches();
    REQUIRE(all.size() == 2);
    REQUIRE(keys_of(all[0]) == std::vector<std::string>{"a", "b", "c"});
    CHECK(find_change(all[0], "c")->kind == change_kind::added);
    CHECK(find_change(all[0], "b")->kind == change_kind::changed);
    REQUIRE(keys_of(all[1]) == std::vector<std::string>{"a"});
    CHECK(all[1].changes[0].old_value == value(2));
    CHECK(all[1].changes[0].new_value == value(4));
    CHECK(r.events().size() == 2);
    CHECK(reg.generation() == all[1].generation);
    CHECK(r.errors().empty());
}

TEST_CASE("reload: three rename-over saves in a row give three reloads, in order", "[reload]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, v_is(0));
    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    auto w = reg.watch(file, fast);
    auto batches = reg.subscribe_batch(r.on_batch());
    auto on_v = reg.subscribe("v", r.on_event());

    for (int i = 1; i <= 3; ++i) {
        save_by_rename(file, v_is(i));
        REQUIRE(r.wait_batches(static_cast<std::size_t>(i)));
        CHECK(reg.get<int>("v") == i);
    }

    REQUIRE(r.wait_events(3));
    const auto all = r.batches();
    const auto events = r.events();
    REQUIRE(all.size() == 3);
    REQUIRE(events.size() == 3);
    for (int i = 0; i < 3; ++i) {
        INFO("reload " << i + 1);
        REQUIRE(all[i].changes.size() == 1);
        CHECK(all[i].changes[0].key == "v");
        CHECK(all[i].changes[0].old_value == value(i));
        CHECK(all[i].changes[0].new_value == value(i + 1));
        CHECK(events[i].new_value == value(i + 1));
        CHECK(events[i].generation == all[i].generation);
        if (i > 0) CHECK(all[i].generation > all[i - 1].generation);
    }
    CHECK(reg.generation() == all[2].generation);
    CHECK(r.errors().empty());
}

TEST_CASE("reload: a Kubernetes ..data swap reloads, also after the old directory goes",
          "[reload]") {
    temp_dir dir;
    publish_config_map(dir, "..v1", "v = 1\nname = \"one\"\n");
    const auto file = dir / "config.toml";
    fs::create_symlink("..data/config.toml", file);

    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    auto w = reg.watch(file, fast);
    REQUIRE(reg.get<int>("v") == 1);
    auto batches = reg.subscribe_batch(r.on_batch());

    publish_config_map(dir, "..v2", "v = 2\nname = \"two\"\n");
    fs::remove_all(dir / "..v1");
    REQUIRE(r.wait_batches(1));
    CHECK(reg.get<int>("v") == 2);
    CHECK(reg.get<std::string>("name") == "two");

    publish_config_map(dir, "..v3", "v = 3\nname = \"three\"\n");
    fs::remove_all(dir / "..v2");
    REQUIRE(r.wait_batches(2));
    CHECK(reg.get<int>("v") == 3);
    CHECK(reg.get<std::string>("name") == "three");

    const auto all = r.batches();
    REQUIRE(all.size() == 2);
    REQUIRE(keys_of(all[1]) == std::vector<std::string>{"name", "v"});
    // The layer keeps the watched spelling, not the ..vN directory it resolved to.
    CHECK_THAT(find_change(all[1], "v")->source, Contains(file.string()));
    CHECK(r.errors().empty());
}

TEST_CASE("reload: a file truncated and written 100 ms later never reads as empty", "[reload]") {
    // Fault reproduced: an editor's truncate-then-write published an empty configuration.
    temp_dir dir;
    const auto file = dir / "config.toml";
    const std::string before = "name = \"old\"\ncount = 1\n[server]\nhosts = [\"a\", \"b\"]\n";
    const std::string after = "name = \"new\"\ncount = 2\n[server]\nhosts = [\"c\", \"d\"]\n";
    struct expected {
        std::string key;
        value old_value;
        value new_value;
    };
    const std::vector<expected> keys = {{"name", "old", "new"},
                                        {"count", 1, 2},
                                        {"server.hosts[0]", "a", "c"},
                                        {"server.hosts[1]", "b", "d"}};
    write_file(file, before);

    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    auto options = fast;
    options.empty_grace = 5s;  // far above the writer's pause, even on a loaded machine
    auto w = reg.watch(file, options);
    auto batches = reg.subscribe_batch(r.on_batch());

    std::atomic<std::uint64_t> reads{0};
    std::atomic<std::uint64_t> missing{0};
    std::atomic<std::uint64_t> foreign{0};
    std::vector<std::jthread> readers;
    for (int t = 0; t < 2; ++t) {
        readers.emplace_back([&](std::stop_token stop) {
            while (!stop.stop_requested()) {
                for (const auto& k : keys) {
                    const auto v = reg.get<value>(k.key);
                    if (!v) {
                        missing.fetch_add(1);
                    } else if (*v != k.old_value && *v != k.new_value) {
                        foreign.fetch_add(1);
                    }
                }
                if (reg.keys().empty()) missing.fetch_add(1);
                reads.fetch_add(1);
            }
        });
    }
    REQUIRE(eventually([&] { return reads.load() > 0; }));

    SECTION("truncate on open, pause, write through the same descriptor") {
        const int fd = ::open(file.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
        REQUIRE(fd >= 0);
        std::this_thread::sleep_for(100ms);
        REQUIRE(::write(fd, after.data(), after.size()) == static_cast<ssize_t>(after.size()));
        REQUIRE(::close(fd) == 0);
    }
    SECTION("truncate(2), pause, then a separate write") {
        REQUIRE(::truncate(file.c_str(), 0) == 0);
        std::this_thread::sleep_for(100ms);
        write_file(file, after);
    }

    REQUIRE(r.wait_batches(1));
    const auto reads_at_reload = reads.load();
    REQUIRE(eventually([&] { return reads.load() > reads_at_reload + 10; }));
    for (auto& t : readers)
        t.request_stop();
    readers.clear();

    CHECK(missing.load() == 0);
    CHECK(foreign.load() == 0);
    CHECK(reg.get<std::string>("name") == "new");
    CHECK(r.batches().size() == 1);
    CHECK(r.errors().empty());
}

TEST_CASE("reload: editing either of two files recomputes the merge from both", "[reload]") {
    temp_dir dir;
    const auto base = dir / "base.toml";
    const auto over = dir / "override.toml";
    write_file(base, "name = \"base\"\nport = 1\n[db]\nhost = \"base-db\"\n");
    write_file(over, "port = 2\n[db]\nuser = \"admin\"\n");
    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    auto w = reg.watch(std::vector<fs::path>{base, over}, fast);
    CHECK(reg.get<int>("port") == 2);
    CHECK(reg.get<std::string>("db.host") == "base-db");
    CHECK(reg.get<std::string>("db.user") == "admin");
    auto batches = reg.subscribe_batch(r.on_batch());
    auto db = reg.subscribe_prefix("db", r.on_event());

    save_by_rename(base, "name = \"base2\"\nport = 10\n[db]\nhost = \"base-db2\"\n");
    REQUIRE(r.wait_batches(1));
    CHECK(reg.get<std::string>("name") == "base2");
    CHECK(reg.get<int>("port") == 2);
    CHECK(reg.get<std::string>("db.host") == "base-db2");
    CHECK(reg.get<std::string>("db.user") == "admin");

    write_file(over, "port = 3\n[db]\nuser = \"admin\"\n");
    REQUIRE(r.wait_batches(2));
    CHECK(reg.get<int>("port") == 3);
    CHECK(reg.get<std::string>("name") == "base2");

    write_file(over, "[db]\nuser = \"root\"\n");
    REQUIRE(r.wait_batches(3));
    CHECK(reg.get<int>("port") == 10);
    CHECK(reg.get<std::string>("db.user") == "root");
    CHECK(reg.get<std::string>("db.host") == "base-db2");

    REQUIRE(r.wait_events(2));
    const auto all = r.batches();
    REQUIRE(all.size() == 3);
    CHECK(keys_of(all[0]) == std::vector<std::string>{"db.host", "name"});
    CHECK(keys_of(all[1]) == std::vector<std::string>{"port"});
    CHECK(keys_of(all[2]) == std::vector<std::string>{"db.user", "port"});
    const auto* port = find_change(all[2], "port");
    REQUIRE(port != nullptr);
    CHECK(port->kind == change_kind::changed);
    CHECK(port->old_value == value(3));
    CHECK(port->new_value == value(10));
    CHECK_THAT(port->source, Contains(base.string()));
    const auto events = r.events();
    REQUIRE(events.size() == 2);
    CHECK(events[0].key == "db.host");
    CHECK(events[1].key == "db.user");
    CHECK(r.errors().empty());
}

TEST_CASE("reload: files saved in one window are validated and applied as one reload", "[reload]") {
    // Fault reproduced: files saved together were validated one by one, rejecting consistent edits.
    temp_dir dir;
    const auto left = dir / "left.toml";
    const auto right = dir / "right.toml";
    write_file(left, "[left]\nn = 1\n");
    write_file(right, "[right]\nn = 1\n");
    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    reg.validate("", [](const cfgreg::snapshot& candidate) -> std::optional<std::string> {
        const auto l = candidate.get<int>("left.n");
        const auto rt = candidate.get<int>("right.n");
        if (l && rt && *l != *rt) return "left.n and right.n must agree";
        return std::nullopt;
    });
    auto options = fast;
    options.debounce = 1s;  // both saves below land well inside one window
    options.max_wait = 5s;
    auto w = reg.watch(std::vector<fs::path>{left, right}, options);
    REQUIRE(reg.get<int>("left.n") == 1);
    auto batches = reg.subscribe_batch(r.on_batch());

    save_by_rename(left, "[left]\nn = 2\n");
    save_by_rename(right, "[right]\nn = 2\n");
    REQUIRE(r.wait_batch_or_error());
    for (const auto& e : r.errors())
        UNSCOPED_INFO(e.what());
    CHECK(r.errors().empty());
    CHECK(reg.get<int>("left.n") == 2);
    CHECK(reg.get<int>("right.n") == 2);
    const auto all = r.batches();
    REQUIRE(all.size() == 1);
    CHECK(keys_of(all[0]) == std::vector<std::string>{"left.n", "right.n"});
}

TEST_CASE("reload: a file unloadable when the watch starts keeps its place once it loads",
          "[reload]") {
    // Fault reproduced: a file unloadable at start went above later files once loaded.
    temp_dir dir;
    const auto base = dir / "base.toml";
    const auto over = dir / "override.toml";
    write_file(over, "port = 2\n");
    recorder r;
    registry reg;
    reg.on_error(r.on_error());

    SECTION("broken") {
        write_file(base, "port = = 1\n");
        auto w = reg.watch(std::vector<fs::path>{base, over}, fast);
        REQUIRE(r.wait_error(errc::parse_error));
        CHECK(reg.get<int>("port") == 2);
        auto batches = reg.subscribe_batch(r.on_batch());
        save_by_rename(base, "port = 1\nname = \"base\"\n");
        REQUIRE(r.wait_batches(1));
    }
    SECTION("missing") {
        auto w = reg.watch(std::vector<fs::path>{base, over}, fast);
        REQUIRE(r.wait_error(errc::io_error));
        CHECK(reg.get<int>("port") == 2);
        auto batches = reg.subscribe_batch(r.on_batch());
        save_by_rename(base, "port = 1\nname = \"base\"\n");
        REQUIRE(r.wait_batches(1));
    }
    CHECK(reg.get<std::string>("name") == "base");
    CHECK(reg.get<int>("port") == 2);
}

TEST_CASE("reload: watching a file loaded earlier keeps its place below later layers", "[reload]") {
    temp_dir dir;
    const auto base = dir / "base.toml";
    const auto over = dir / "override.toml";
    write_file(base, "port = 1\nname = \"a\"\n");
    write_file(over, "port = 2\n");
    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    reg.load_file(base).value();
    reg.load_file(over).value();
    reg.set("name", "runtime").value();
    auto w = reg.watch(base, fast);
    auto batches = reg.subscribe_batch(r.on_batch());

    save_by_rename(base, "port = 10\nname = \"b\"\nextra = true\n");
    REQUIRE(r.wait_batches(1));
    CHECK(reg.get<int>("port") == 2);
    CHECK(reg.get<std::string>("name") == "runtime");
    CHECK(reg.get<bool>("extra") == true);
    CHECK(keys_of(r.batches().at(0)) == std::vector<std::string>{"extra"});
    CHECK(r.errors().empty());
}

TEST_CASE("reload: a deleted file keeps its values, is reported, and reloads when re-created",
          "[reload]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, v_is(1));
    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    auto w = reg.watch(file, fast);
    auto batches = reg.subscribe_batch(r.on_batch());

    fs::remove(file);
    REQUIRE(r.wait_error(errc::io_error));
    CHECK_THAT(r.errors(errc::io_error).at(0).where().source, Contains(file.string()));
    CHECK(reg.get<int>("v") == 1);

    write_file(file, v_is(2));
    REQUIRE(r.wait_batches(1));
    CHECK(reg.get<int>("v") == 2);

    fs::remove(file);
    write_file(file, v_is(3));
    REQUIRE(r.wait_batches(2));
    CHECK(reg.get<int>("v") == 3);
    CHECK(r.batches().size() == 2);
}

TEST_CASE("reload: a key deleted from a table and a shortened array are removed", "[reload]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, "arr = [1, 2, 3]\n[a]\nb = 1\nc = 2\n");
    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    auto w = reg.watch(file, fast);
    REQUIRE(reg.get<int>("a.b") == 1);
    REQUIRE(reg.get<int>("arr[2]") == 3);
    auto batches = reg.subscribe_batch(r.on_batch());
    auto on_b = reg.subscribe("a.b", r.on_event());
    auto on_arr2 = reg.subscribe("arr[2]", r.on_event());

    save_by_rename(file, "arr = [1, 2]\n[a]\nc = 2\n");
    REQUIRE(r.wait_batches(1));
    REQUIRE(r.wait_events(2));

    CHECK_FALSE(reg.get<int>("a.b"));
    CHECK(reg.read<int>("a.b").code() == errc::missing);
    CHECK_FALSE(reg.contains("a.b"));
    CHECK_FALSE(reg.get<int>("arr[2]"));
    CHECK(reg.get<std::vector<int>>("arr") == std::vector<int>{1, 2});
    CHECK(reg.keys("a") == std::vector<std::string>{"a.c"});
    CHECK_FALSE(reg.snapshot().get<int>("a.b"));

    const auto all = r.batches();
    REQUIRE(all.size() == 1);
    CHECK(keys_of(all[0]) == std::vector<std::string>{"a.b", "arr[2]"});
    for (const auto& e : r.events()) {
        INFO(e.key);
        CHECK(e.kind == change_kind::removed);
        CHECK_FALSE(e.new_value);
        CHECK(e.generation == all[0].generation);
        CHECK_THAT(e.source, Contains(file.string()));
    }
    const auto events = r.events();
    REQUIRE(events.size() == 2);
    const auto& b = events[0].key == "a.b" ? events[0] : events[1];
    const auto& arr2 = events[0].key == "a.b" ? events[1] : events[0];
    CHECK(b.key == "a.b");
    CHECK(b.old_value == value(1));
    CHECK(arr2.key == "arr[2]");
    CHECK(arr2.old_value == value(3));
    CHECK(r.errors().empty());
}

TEST_CASE("reload: a callback may get, set and unsubscribe itself while others write", "[reload]") {
    // Fault reproduced: a callback calling back into the registry deadlocked on a delivery lock.
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, v_is(1));
    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    auto w = reg.watch(file, fast);
    auto on_echo = reg.subscribe("echo", r.on_event());
    auto on_v = reg.subscribe("v", r.on_event());

    std::atomic<bool> armed{false};
    std::atomic<bool> done{false};
    std::atomic<int> calls{0};
    std::optional<int> seen_get;
    std::optional<value> seen_event;
    bool set_ok = false;
    cfgreg::subscription self;
    self = reg.subscribe("v", [&](const change_event& e) {
        calls.fetch_add(1);
        if (!armed.load(std::memory_order_acquire)) return;
        seen_event = e.new_value;
        seen_get = reg.get<int>("v");
        set_ok = static_cast<bool>(reg.set("echo", *e.new_value));
        self.unsubscribe();
        done.store(true, std::memory_order_release);
    });
    armed.store(true, std::memory_order_release);

    std::jthread noise([&](std::stop_token stop) {
        for (std::int64_t i = 0; !stop.stop_requested(); ++i) {
            (void)reg.set("noise", i);
            std::this_thread::yield();
        }
    });

    save_by_rename(file, v_is(2));
    REQUIRE(eventually([&] { return done.load(std::memory_order_acquire); }));
    REQUIRE(r.wait_events(1, "echo"));
    CHECK(seen_event == value(2));
    CHECK(seen_get == 2);
    CHECK(set_ok);
    CHECK(reg.get<int>("echo") == 2);
    CHECK_FALSE(self.active());

    save_by_rename(file, v_is(3));
    REQUIRE(r.wait_events(2, "v"));
    noise.request_stop();
    noise.join();
    CHECK(calls.load() == 1);
    CHECK(reg.get<int>("v") == 3);
    CHECK(r.errors().empty());
}

TEST_CASE("reload: unsubscribe from another thread returns after the running call", "[reload]") {
    // Fault reproduced: unsubscribe returned while the callback ran, so it used dead captures.
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, v_is(1));
    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    auto w = reg.watch(file, fast);

    struct probe {
        std::atomic<bool> entered{false};
        std::atomic<bool> unsubscribing{false};
        std::atomic<bool> finished{false};
        std::atomic<int> calls{0};
    };
    auto p = std::make_unique<probe>();
    auto slow = reg.subscribe("v", [q = p.get()](const change_event&) {
        q->calls.fetch_add(1);
        q->entered.store(true);
        // Still running when unsubscribe() is called: it is called only after this flag.
        q->finished.store(eventually([&] { return q->unsubscribing.load(); }));
    });
    auto marker = reg.subscribe("v", r.on_event());

    save_by_rename(file, v_is(2));
    REQUIRE(eventually([&] { return p->entered.load(); }));
    p->unsubscribing.store(true);
    slow.unsubscribe();
    CHECK(p->finished.load());
    CHECK(p->calls.load() == 1);
    CHECK_FALSE(slow.active());
    p.reset();  // the captures die at once

    save_by_rename(file, v_is(3));
    REQUIRE(r.wait_events(2));
    CHECK(reg.get<int>("v") == 3);
    CHECK(r.errors().empty());
}

TEST_CASE("reload: a rejected reload keeps the old configuration and the next good one applies",
          "[reload]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, "port = 1\nname = \"a\"\n");
    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    reg.validate("port", [](const cfgreg::snapshot& candidate) -> std::optional<std::string> {
        const auto port = candidate.get<int>("port");
        if (port == 0) throw std::runtime_error("port 0 is reserved");
        if (port && *port < 0) return "port must be positive";
        return std::nullopt;
    });
    auto w = reg.watch(file, fast);
    REQUIRE(reg.get<int>("port") == 1);
    auto batches = reg.subscribe_batch(r.on_batch());
    const auto generation = reg.generation();

    save_by_rename(file, "port = 0\nname = \"b\"\n");
    REQUIRE(r.wait_error(errc::rejected));
    CHECK(reg.get<int>("port") == 1);
    CHECK(reg.get<std::string>("name") == "a");
    CHECK(reg.generation() == generation);
    CHECK_THAT(r.errors(errc::rejected).at(0).message(), Contains("port 0 is reserved"));

    write_file(file, "port = -1\nname = \"b\"\n");
    REQUIRE(r.wait_error(errc::rejected, 2));
    CHECK(reg.get<int>("port") == 1);
    CHECK_THAT(r.errors(errc::rejected).at(1).message(), Contains("port must be positive"));

    save_by_rename(file, "port = 2\nname = \"c\"\n");
    REQUIRE(r.wait_batches(1));
    CHECK(reg.get<int>("port") == 2);
    CHECK(reg.get<std::string>("name") == "c");
    const auto all = r.batches();
    REQUIRE(all.size() == 1);
    REQUIRE(find_change(all[0], "port") != nullptr);
    CHECK(find_change(all[0], "port")->old_value == value(1));
    CHECK(r.errors().size() == 2);
}

TEST_CASE("reload: a parse error is reported with file, line and column; the last good file stays",
          "[reload]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, "a = 1\nb = 2\n");
    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    auto w = reg.watch(file, fast);
    auto batches = reg.subscribe_batch(r.on_batch());

    const std::string bad = "a = 5\nb = 6\nc = = 7\n";
    save_by_rename(file, bad);
    REQUIRE(r.wait_error(errc::parse_error));
    const auto e = r.errors(errc::parse_error).at(0);
    CHECK(e.where().source == file.string());
    CHECK(e.where().line == 3);
    CHECK(e.where().column > 0);
    // The same position a direct load of the same text reports.
    registry probe;
    const auto direct = probe.load_string(bad, file.string());
    REQUIRE_FALSE(direct);
    CHECK(e.where() == direct.error().where);
    CHECK(reg.get<int>("a") == 1);
    CHECK(reg.get<int>("b") == 2);
    CHECK_FALSE(reg.contains("c"));

    save_by_rename(file, "a = 5\nb = 6\nc = 7\n");
    REQUIRE(r.wait_batches(1));
    CHECK(reg.get<int>("a") == 5);
    CHECK(reg.get<int>("c") == 7);
    CHECK(r.errors().size() == 1);
}

TEST_CASE("reload: without inotify, polling picks up edits and the degraded mode is reported",
          "[reload]") {
    // Exhausting the per-user inotify instance limit would also break
    // every other process of this user (parallel test runs included), so
    // the test hook stands in for it.
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, v_is(1));
    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    auto options = fast;
    options.force_polling = true;
    options.poll_interval = 50ms;
    auto w = reg.watch(file, options);
    CHECK(w.polling());
    CHECK(w.active());
    auto batches = reg.subscribe_batch(r.on_batch());

    REQUIRE(r.wait_error(errc::watch_degraded));
    CHECK_THAT(r.errors(errc::watch_degraded).at(0).message(), Contains("poll"));

    write_file(file, v_is(2));
    REQUIRE(r.wait_batches(1));
    CHECK(reg.get<int>("v") == 2);
    save_by_rename(file, v_is(3));
    REQUIRE(r.wait_batches(2));
    CHECK(reg.get<int>("v") == 3);
    CHECK(r.errors(errc::watch_degraded).size() == 1);
}

TEST_CASE("reload: readers of every key see one of two versions across 1000 rewrites, lock-free",
          "[reload]") {
    // Fault reproduced: a reader of a reloaded key took the map's locked path or missed the key.
    temp_dir dir;
    const auto file = dir / "config.toml";
    const std::string versions[2] = {
        "name = \"alpha\"\ncount = 1\nratio = 0.5\nenabled = true\n"
        "[server]\nhost = \"a.example\"\nport = 8080\nweights = [1, 2, 3]\n"
        "[only_a]\nx = \"a\"\n",
        "name = \"beta\"\ncount = 2\nratio = 0.25\nenabled = false\n"
        "[server]\nhost = \"b.example\"\nport = 9090\nweights = [4, 5]\n"
        "[only_b]\ny = 7\n",
    };
    const std::string names[2] = {"alpha", "beta"};
    struct expected {
        std::string key;
        std::optional<value> in_a;
        std::optional<value> in_b;
    };
    const std::vector<expected> keys = {
        {"name", "alpha", "beta"},
        {"count", 1, 2},
        {"ratio", 0.5, 0.25},
        {"enabled", true, false},
        {"server.host", "a.example", "b.example"},
        {"server.port", 8080, 9090},
        {"server.weights[0]", 1, 4},
        {"server.weights[1]", 2, 5},
        {"server.weights[2]", 3, std::nullopt},
        {"only_a.x", "a", std::nullopt},
        {"only_b.y", std::nullopt, 7},
    };
    const std::vector<std::int64_t> weights[2] = {{1, 2, 3}, {4, 5}};
    write_file(file, versions[0]);

    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    auto options = fast;
    options.empty_grace = 2s;  // an in-place write is never caught empty for this long
    auto w = reg.watch(file, options);
    REQUIRE(reg.get<std::string>("name") == "alpha");
    std::atomic<std::uint64_t> reloads{0};
    auto counter = reg.subscribe_batch([&](const change_batch&) { reloads.fetch_add(1); });

    std::atomic<std::uint64_t> reads{0};
    std::atomic<std::uint64_t> missing{0};
    std::atomic<std::uint64_t> foreign{0};
    std::atomic<std::uint64_t> locks{0};
    std::vector<std::jthread> readers;
    for (int t = 0; t < 2; ++t) {
        readers.emplace_back([&](std::stop_token stop) {
            const auto locks_before = cfgreg::detail::epoch::thread_lock_count;
            while (!stop.stop_requested()) {
                for (const auto& k : keys) {
                    const auto v = reg.get<value>(k.key);
                    if (!v) {
                        if (k.in_a && k.in_b) missing.fetch_add(1, std::memory_order_relaxed);
                    } else if (!(k.in_a && *v == *k.in_a) && !(k.in_b && *v == *k.in_b)) {
                        foreign.fetch_add(1, std::memory_order_relaxed);
                    }
                }
                const auto list = reg.get<std::vector<std::int64_t>>("server.weights");
                if (!list) {
                    missing.fetch_add(1, std::memory_order_relaxed);
                } else if (*list != weights[0] && *list != weights[1]) {
                    foreign.fetch_add(1, std::memory_order_relaxed);
                }
                reads.fetch_add(1, std::memory_order_relaxed);
            }
            locks.fetch_add(cfgreg::detail::epoch::thread_lock_count - locks_before);
        });
    }
    REQUIRE(eventually([&] { return reads.load() > 0; }));

    // Every 9th write (an odd stride, so the version alternates) waits
    // for its version to be live, which guarantees over a hundred
    // reloads among the 1000 writes.
    for (int i = 1; i <= 1000; ++i) {
        const auto& text = versions[i % 2];
        if ((i / 2) % 2 == 0) {
            save_by_rename(file, text);
        } else {
            write_file(file, text);
        }
        if (i % 9 == 0) {
            INFO("write " << i);
            REQUIRE(eventually([&] { return reg.get<std::string>("name") == names[i % 2]; }));
        }
    }
    REQUIRE(eventually([&] { return reg.get<std::string>("name") == "alpha"; }));
    REQUIRE(eventually([&] { return !reg.contains("only_b"); }));
    const auto reads_at_end = reads.load();
    REQUIRE(eventually([&] { return reads.load() > reads_at_end + 10; }));
    for (auto& t : readers)
        t.request_stop();
    readers.clear();

    CHECK(missing.load() == 0);
    CHECK(foreign.load() == 0);
    CHECK(locks.load() == 0);
    CHECK(reloads.load() >= 1000 / 9);
    CHECK(reg.get<std::string>("only_a.x") == "a");
    CHECK(r.errors().empty());
}

TEST_CASE("reload: 1000 watch starts and stops leak no descriptor or thread", "[reload]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, v_is(0));
    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    { auto warm_up = reg.watch(file, fast); }
    const auto fds_before = count_entries("/proc/self/fd");
    const auto threads_before = count_entries("/proc/self/task");

    for (int i = 1; i <= 1000; ++i) {
        auto w = reg.watch(file, fast);
        REQUIRE(w.active());
        // The first cycles reload, so armed watches and open files are released too.
        if (i <= 5) {
            save_by_rename(file, v_is(i));
            REQUIRE(eventually([&] { return reg.get<int>("v") == i; }));
        }
        if (i % 2 == 0) {
            w.stop();
            CHECK_FALSE(w.active());
        }
    }

    // A joined thread leaves /proc/self/task a moment after pthread_join returns.
    CHECK(eventually([&] { return count_entries("/proc/self/task") == threads_before; }));
    CHECK(count_entries("/proc/self/task") == threads_before);
    CHECK(count_entries("/proc/self/fd") == fds_before);
    CHECK(r.errors().empty());
}

TEST_CASE("reload: stopping the watch or destroying the registry joins its thread", "[reload]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, v_is(1));
    recorder r;
    auto reg = std::make_unique<registry>();
    reg->on_error(r.on_error());
    auto w = reg->watch(file, fast);
    std::atomic<bool> entered{false};
    std::atomic<bool> finished{false};
    std::atomic<int> calls{0};
    auto slow = reg->subscribe("v", [&](const change_event&) {
        calls.fetch_add(1);
        if (!entered.exchange(true)) {
            // Stay in the first call until the watch has begun to stop (active() turns false
            // before the join), so the stop below always overlaps it.
            finished.store(eventually([&] { return !w.active(); }));
        }
    });

    save_by_rename(file, v_is(2));
    REQUIRE(eventually([&] { return entered.load(); }));

    SECTION("stop") {
        w.stop();
        CHECK(finished.load());
        CHECK_FALSE(w.active());
        const auto generation = reg->generation();
        save_by_rename(file, v_is(3));
        std::this_thread::sleep_for(quiet_period);
        CHECK(calls.load() == 1);
        CHECK(reg->get<int>("v") == 2);
        CHECK(reg->generation() == generation);
        // The registry still notifies its own writes.
        reg->set("v", 4).value();
        CHECK(calls.load() == 2);
    }
    SECTION("registry destroyed") {
        reg.reset();
        CHECK(finished.load());
        CHECK_FALSE(w.active());
        save_by_rename(file, v_is(3));
        std::this_thread::sleep_for(quiet_period);
        CHECK(calls.load() == 1);
        w.stop();
    }
    CHECK(r.errors().empty());
}

TEST_CASE("reload: stop() from inside a callback ends the watch", "[reload]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, v_is(1));
    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    auto w = reg.watch(file, fast);
    std::atomic<int> calls{0};
    std::atomic<bool> stopped{false};
    auto stopper = reg.subscribe("v", [&](const change_event&) {
        calls.fetch_add(1);
        w.stop();
        stopped.store(true, std::memory_order_release);
    });

    save_by_rename(file, v_is(2));
    REQUIRE(eventually([&] { return stopped.load(std::memory_order_acquire); }));
    CHECK_FALSE(w.active());
    save_by_rename(file, v_is(3));
    std::this_thread::sleep_for(quiet_period);
    CHECK(calls.load() == 1);
    CHECK(reg.get<int>("v") == 2);
    w.stop();
    CHECK(r.errors().empty());
}

TEST_CASE("reload: set and unset notify with old and new values, generation and source",
          "[reload]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, "port = 1\n");
    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    auto w = reg.watch(file, fast);
    auto on_port = reg.subscribe("port", r.on_event());
    auto on_extra = reg.subscribe_prefix("extra", r.on_event());
    auto batches = reg.subscribe_batch(r.on_batch());

    reg.set("port", 2).value();
    REQUIRE(r.wait_events(1));
    reg.unset("port").value();
    REQUIRE(r.wait_events(2));
    reg.set("extra.flag", true).value();
    REQUIRE(r.wait_events(3));
    reg.unset("extra").value();
    REQUIRE(r.wait_events(4));
    REQUIRE(r.wait_batches(4));

    const auto events = r.events();
    const auto all = r.batches();
    REQUIRE(events.size() == 4);
    REQUIRE(all.size() == 4);

    CHECK(events[0].key == "port");
    CHECK(events[0].kind == change_kind::changed);
    CHECK(events[0].old_value == value(1));
    CHECK(events[0].new_value == value(2));
    CHECK_THAT(events[0].source, Contains("runtime"));

    CHECK(events[1].key == "port");
    CHECK(events[1].kind == change_kind::changed);
    CHECK(events[1].old_value == value(2));
    CHECK(events[1].new_value == value(1));
    CHECK_THAT(events[1].source, Contains(file.string()));

    CHECK(events[2].key == "extra.flag");
    CHECK(events[2].kind == change_kind::added);
    CHECK_FALSE(events[2].old_value);
    CHECK(events[2].new_value == value(true));
    CHECK_THAT(events[2].source, Contains("runtime"));

    CHECK(events[3].key == "extra.flag");
    CHECK(events[3].kind == change_kind::removed);
    CHECK(events[3].old_value == value(true));
    CHECK_FALSE(events[3].new_value);
    CHECK_FALSE(events[3].source.empty());

    for (std::size_t i = 0; i < 4; ++i) {
        INFO("change " << i);
        CHECK(all[i].generation == events[i].generation);
        REQUIRE(all[i].changes.size() == 1);
        CHECK(all[i].changes[0].key == events[i].key);
        if (i > 0) CHECK(events[i].generation == events[i - 1].generation + 1);
    }
    CHECK(reg.generation() == events[3].generation);
    CHECK(r.errors().empty());
}

TEST_CASE("reload: a throwing subscriber is reported and stops neither the reload nor others",
          "[reload]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, v_is(1));
    recorder r;
    registry reg;
    reg.on_error(r.on_error());
    auto w = reg.watch(file, fast);
    auto bad = reg.subscribe(
        "v", [](const change_event&) { throw std::runtime_error("subscriber failed"); });
    auto good = reg.subscribe("v", r.on_event());

    save_by_rename(file, v_is(2));
    REQUIRE(r.wait_error(errc::callback_failed));
    REQUIRE(r.wait_events(1));
    CHECK(reg.get<int>("v") == 2);
    CHECK_THAT(r.errors(errc::callback_failed).at(0).message(), Contains("subscriber failed"));

    save_by_rename(file, v_is(3));
    REQUIRE(r.wait_events(2));
    CHECK(reg.get<int>("v") == 3);
}

TEST_CASE("reload: racing writers notify in generation order", "[reload]") {
    // Fault reproduced: two racing writers could deliver generation N + 1 before generation N.
    cfgreg::registry reg;
    std::mutex mu;
    std::vector<std::uint64_t> seen;
    auto sub = reg.subscribe_batch([&](const cfgreg::change_batch& b) {
        std::lock_guard lock(mu);
        seen.push_back(b.generation);
    });
    std::atomic<int> failed_sets{0};
    std::vector<std::thread> writers;
    for (const char* key : {"a", "b"}) {
        writers.emplace_back([&reg, &failed_sets, key] {
            for (std::int64_t i = 1; i <= 500; ++i) {
                if (!reg.set(key, cfgreg::value(i))) ++failed_sets;
            }
        });
    }
    for (auto& w : writers)
        w.join();

    CHECK(failed_sets == 0);
    std::lock_guard lock(mu);
    REQUIRE(seen.size() == 1000);
    CHECK(std::is_sorted(seen.begin(), seen.end()));
    CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());
}
