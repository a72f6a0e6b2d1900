// SPDX-License-Identifier: MIT
// Tests of the file-watching engine on real files, real inotify and bounded waits.

#include "file_watcher.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "temp_files.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using cfgreg::detail::file_change;
using cfgreg::detail::file_watcher;
using cfgreg::detail::file_watcher_options;
using cfgreg::detail::watch_error;
using cfgreg::detail::watch_error_kind;
using cfgreg_test::publish_config_map;
using cfgreg_test::save_by_rename;
using cfgreg_test::write_chunks;
using cfgreg_test::write_file;

namespace {

constexpr auto patience = 10s;

/// A scratch folder of this file's tests (see cfgreg_test::temp_dir).
class temp_dir : public cfgreg_test::temp_dir {
  public:
    temp_dir() : cfgreg_test::temp_dir("cfgreg_watch_") {}
};

/// Waits for a condition that no handler announces, checking it every millisecond.
template <class Predicate>
bool eventually(Predicate predicate) {
    return cfgreg_test::eventually_within(patience, std::move(predicate));
}

/// Waits until the watcher has processed more windows than `seen`.
bool window_closed_after(const file_watcher& w, std::uint64_t seen) {
    return eventually([&] { return w.windows_closed() > seen; });
}

/// Records what a watcher delivers and lets the test wait for it.
class recorder {
  public:
    file_watcher::change_handler on_change() {
        return [this](std::vector<file_change> batch) {
            std::lock_guard lock(mutex_);
            batches_.push_back(std::move(batch));
            changed_.notify_all();
        };
    }

    file_watcher::error_handler on_error() {
        return [this](const watch_error& e) {
            std::lock_guard lock(mutex_);
            errors_.push_back(e);
            changed_.notify_all();
        };
    }

    bool wait_batches(std::size_t count) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, patience, [&] { return batches_.size() >= count; });
    }

    bool wait_error(watch_error_kind kind) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, patience, [&] { return count_locked(kind) > 0; });
    }

    std::vector<std::vector<file_change>> batches() const {
        std::lock_guard lock(mutex_);
        return batches_;
    }

    /// Every delivered content, in order, regardless of batch.
    std::vector<std::string> contents() const {
        std::lock_guard lock(mutex_);
        std::vector<std::string> all;
        for (const auto& batch : batches_) {
            for (const auto& change : batch)
                all.push_back(change.content);
        }
        return all;
    }

    std::vector<watch_error> errors() const {
        std::lock_guard lock(mutex_);
        return errors_;
    }

    std::size_t error_count(watch_error_kind kind) const {
        std::lock_guard lock(mutex_);
        return count_locked(kind);
    }

  private:
    std::size_t count_locked(watch_error_kind kind) const {
        std::size_t n = 0;
        for (const auto& e : errors_)
            n += e.kind == kind ? 1 : 0;
        return n;
    }

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::vector<file_change>> batches_;
    std::vector<watch_error> errors_;
};

std::size_t count_entries(const char* dir) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir))
        ++n;
    return n;
}

}  // namespace

TEST_CASE("file_watcher: one save raising several events gives one callback", "[file_watcher]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, "a = 1\n");
    recorder r;
    file_watcher w(r.on_change(), r.on_error());
    REQUIRE(w.add(file));
    REQUIRE(window_closed_after(w, 0));

    write_chunks(file, {"a = 2\n", "b = 3\n", "c = 4\n"});
    REQUIRE(::chmod(file.c_str(), 0600) == 0);
    REQUIRE(r.wait_batches(1));

    // A later, different save is delivered on its own: nothing of the first one was
    // left over.
    write_file(file, "a = 5\n");
    REQUIRE(r.wait_batches(2));
    const auto batches = r.batches();
    REQUIRE(batches.size() == 2);
    REQUIRE(batches[0].size() == 1);
    CHECK(batches[0][0].path == file.string());
    CHECK(batches[0][0].content == "a = 2\nb = 3\nc = 4\n");
    CHECK(r.contents() == std::vector<std::string>{"a = 2\nb = 3\nc = 4\n", "a = 5\n"});
    CHECK(r.errors().empty());
}

TEST_CASE("file_watcher: rewriting identical bytes gives no callback", "[file_watcher]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, "same = true\n");
    recorder r;
    file_watcher w(r.on_change(), r.on_error());
    REQUIRE(w.add(file));
    REQUIRE(window_closed_after(w, 0));

    const auto seen = w.windows_closed();
    write_file(file, "same = true\n");
    save_by_rename(file, "same = true\n");
    REQUIRE(window_closed_after(w, seen));
    CHECK(r.batches().empty());

    write_file(file, "same = false\n");
    REQUIRE(r.wait_batches(1));
    CHECK(r.contents() == std::vector<std::string>{"same = false\n"});
}

TEST_CASE("file_watcher: three rename-over saves give three callbacks", "[file_watcher]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, "v = 0\n");
    recorder r;
    file_watcher w(r.on_change(), r.on_error());
    REQUIRE(w.add(file));

    for (int i = 1; i <= 3; ++i) {
        save_by_rename(file, "v = " + std::to_string(i) + "\n");
        REQUIRE(r.wait_batches(static_cast<std::size_t>(i)));
    }
    CHECK(r.contents() == std::vector<std::string>{"v = 1\n", "v = 2\n", "v = 3\n"});
    CHECK(r.errors().empty());
}

TEST_CASE("file_watcher: a Kubernetes ..data swap reloads, also after the old directory goes",
          "[file_watcher]") {
    temp_dir dir;
    publish_config_map(dir, "..2026_01", "v = 1\n");
    fs::create_symlink("..data/config.toml", dir / "config.toml");

    recorder r;
    file_watcher w(r.on_change(), r.on_error());
    REQUIRE(w.add(dir / "config.toml"));
    REQUIRE(window_closed_after(w, 0));

    publish_config_map(dir, "..2026_02", "v = 2\n");
    fs::remove_all(dir / "..2026_01");
    REQUIRE(r.wait_batches(1));

    // The watch followed the new target although the old one was deleted.
    publish_config_map(dir, "..2026_03", "v = 3\n");
    fs::remove_all(dir / "..2026_02");
    REQUIRE(r.wait_batches(2));

    const auto batches = r.batches();
    REQUIRE(batches.size() == 2);
    CHECK(batches[0][0].content == "v = 2\n");
    CHECK(batches[1][0].content == "v = 3\n");
    CHECK(batches[1][0].path == (dir / "config.toml").string());
    CHECK(fs::path(batches[1][0].resolved).parent_path().filename() == "..2026_03");
    CHECK(r.errors().empty());
}

TEST_CASE("file_watcher: delete then re-create reloads", "[file_watcher]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, "v = 1\n");
    recorder r;
    file_watcher w(r.on_change(), r.on_error());
    REQUIRE(w.add(file));
    REQUIRE(window_closed_after(w, 0));

    fs::remove(file);
    write_file(file, "v = 2\n");
    REQUIRE(r.wait_batches(1));
    CHECK(r.contents() == std::vector<std::string>{"v = 2\n"});
}

TEST_CASE("file_watcher: a file caught mid-write is never delivered early", "[file_watcher]") {
    // Fault reproduced: a reader reloading on the first event saw an empty or half-written file.
    temp_dir dir;
    const auto file = dir / "config.toml";
    const std::string full = "name = \"service\"\nthreads = 8\n";
    write_file(file, "name = \"old\"\n");
    recorder r;
    file_watcher w(r.on_change(), r.on_error());
    REQUIRE(w.add(file));
    REQUIRE(window_closed_after(w, 0));

    SECTION("truncate, pause 100 ms, write the full content through the same descriptor") {
        const int fd = ::open(file.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
        REQUIRE(fd >= 0);
        std::this_thread::sleep_for(100ms);
        REQUIRE(::write(fd, full.data(), full.size()) == static_cast<ssize_t>(full.size()));
        REQUIRE(::close(fd) == 0);
    }
    SECTION("truncate(2), pause 100 ms, then a separate write") {
        REQUIRE(::truncate(file.c_str(), 0) == 0);
        std::this_thread::sleep_for(100ms);
        write_file(file, full);
    }
    SECTION("write half, pause 100 ms, write the rest") {
        const auto half = full.size() / 2;
        const int fd = ::open(file.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, full.data(), half) == static_cast<ssize_t>(half));
        std::this_thread::sleep_for(100ms);
        REQUIRE(::write(fd, full.data() + half, full.size() - half) ==
                static_cast<ssize_t>(full.size() - half));
        REQUIRE(::close(fd) == 0);
    }

    REQUIRE(r.wait_batches(1));
    CHECK(r.contents() == std::vector<std::string>{full});
}

TEST_CASE("file_watcher: a file left empty is delivered as empty after the grace period",
          "[file_watcher]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, "v = 1\n");
    recorder r;
    file_watcher_options options;
    options.empty_grace = 200ms;
    file_watcher w(r.on_change(), r.on_error(), options);
    REQUIRE(w.add(file));
    REQUIRE(window_closed_after(w, 0));

    write_file(file, "");
    REQUIRE(r.wait_batches(1));
    CHECK(r.contents() == std::vector<std::string>{""});
}

TEST_CASE("file_watcher: a missing file is an I/O error and its last content stays",
          "[file_watcher]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, "v = 1\n");
    recorder r;
    file_watcher_options options;
    options.empty_grace = 200ms;
    file_watcher w(r.on_change(), r.on_error(), options);
    REQUIRE(w.add(file));
    REQUIRE(window_closed_after(w, 0));

    fs::remove(file);
    REQUIRE(r.wait_error(watch_error_kind::io));
    const auto error = r.errors().front();
    CHECK(error.path == file.string());
    CHECK(error.code == std::error_code(ENOENT, std::system_category()));
    CHECK(r.batches().empty());

    // Coming back with the content it had is no change; new content is.
    write_file(file, "v = 1\n");
    const auto seen = w.windows_closed();
    REQUIRE(window_closed_after(w, seen));
    CHECK(r.batches().empty());
    write_file(file, "v = 2\n");
    REQUIRE(r.wait_batches(1));
    CHECK(r.contents() == std::vector<std::string>{"v = 2\n"});
    CHECK(r.error_count(watch_error_kind::io) == 1);
}

TEST_CASE("file_watcher: files touched in one window come in one batch", "[file_watcher]") {
    temp_dir dir;
    const auto base = dir / "base.toml";
    const auto local = dir / "local.toml";
    write_file(base, "a = 1\n");
    write_file(local, "b = 1\n");
    recorder r;
    file_watcher_options options;
    options.debounce = 1s;  // both saves below land well inside one window
    options.max_wait = 5s;
    file_watcher w(r.on_change(), r.on_error(), options);
    REQUIRE(w.add({local, base}) == 2);
    REQUIRE(window_closed_after(w, 0));

    write_file(local, "b = 2\n");
    save_by_rename(base, "a = 2\n");
    REQUIRE(r.wait_batches(1));
    const auto batches = r.batches();
    REQUIRE(batches.size() == 1);
    REQUIRE(batches[0].size() == 2);
    CHECK(batches[0][0].path == base.string());
    CHECK(batches[0][0].content == "a = 2\n");
    CHECK(batches[0][1].path == local.string());
    CHECK(batches[0][1].content == "b = 2\n");
}

TEST_CASE("file_watcher: files are added and removed at runtime", "[file_watcher]") {
    temp_dir dir;
    const auto first = dir / "first.toml";
    const auto second = dir / "second.toml";
    write_file(first, "a = 1\n");
    write_file(second, "b = 1\n");
    recorder r;
    file_watcher w(r.on_change(), r.on_error());
    REQUIRE(w.add(first));
    CHECK_FALSE(w.add(first));

    REQUIRE(w.add(second));
    write_file(second, "b = 2\n");
    REQUIRE(r.wait_batches(1));
    CHECK(r.batches()[0][0].path == second.string());

    REQUIRE(w.remove(second));
    CHECK_FALSE(w.remove(second));
    write_file(second, "b = 3\n");
    write_file(first, "a = 2\n");
    REQUIRE(r.wait_batches(2));
    CHECK(r.contents() == std::vector<std::string>{"b = 2\n", "a = 2\n"});
}

TEST_CASE("file_watcher: a known baseline that differs is delivered at once", "[file_watcher]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, "v = 2\n");
    recorder r;
    file_watcher w(r.on_change(), r.on_error());
    REQUIRE(w.add(file, "v = 1\n"));
    REQUIRE(r.wait_batches(1));
    CHECK(r.contents() == std::vector<std::string>{"v = 2\n"});
}

TEST_CASE("file_watcher: the polling fallback picks up an edit and reports degradation",
          "[file_watcher]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, "v = 1\n");
    recorder r;
    file_watcher_options options;
    options.force_polling = true;
    options.poll_interval = 50ms;
    file_watcher w(r.on_change(), r.on_error(), options);
    CHECK(w.polling());
    REQUIRE(w.add(file));

    REQUIRE(r.wait_error(watch_error_kind::degraded));
    CHECK(r.errors().front().message.rfind("degraded: polling every 50 ms because", 0) == 0);

    write_file(file, "v = 2\n");
    REQUIRE(r.wait_batches(1));
    save_by_rename(file, "v = 3\n");
    REQUIRE(r.wait_batches(2));
    CHECK(r.contents() == std::vector<std::string>{"v = 2\n", "v = 3\n"});
}

TEST_CASE("file_watcher: stop waits for a running handler and no handler runs after it",
          "[file_watcher]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, "v = 1\n");
    const auto probe = dir / "probe.toml";
    std::atomic<bool> entered{false};
    std::atomic<bool> stop_began{false};
    std::atomic<bool> finished{false};
    std::atomic<int> calls{0};
    file_watcher* self = nullptr;
    file_watcher w(
        [&](std::vector<file_change>) {
            calls.fetch_add(1);
            entered.store(true);
            // Stay in this call until stop() has begun: from then on add() fails.
            stop_began.store(eventually([&] {
                if (!self->add(probe)) return true;
                self->remove(probe);
                return false;
            }));
            finished.store(true);
        },
        [](const watch_error&) {});
    self = &w;
    REQUIRE(w.add(file));
    write_file(file, "v = 2\n");
    REQUIRE(eventually([&] { return entered.load(); }));

    w.stop();
    CHECK(stop_began.load());
    CHECK(finished.load());
    CHECK(calls.load() == 1);
    CHECK_FALSE(w.add(dir / "other.toml"));
    w.stop();
}

TEST_CASE("file_watcher: stop from inside a handler ends the watcher", "[file_watcher]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, "v = 1\n");
    std::atomic<int> calls{0};
    file_watcher* self = nullptr;
    file_watcher w(
        [&](std::vector<file_change>) {
            calls.fetch_add(1);
            self->stop();
        },
        [](const watch_error&) {});
    self = &w;
    REQUIRE(w.add(file));
    write_file(file, "v = 2\n");
    REQUIRE(eventually([&] { return calls.load() == 1; }));
    CHECK_FALSE(w.add(dir / "other.toml"));
    w.stop();
    CHECK(calls.load() == 1);
}

TEST_CASE("file_watcher: a throwing change handler is reported and watching goes on",
          "[file_watcher]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, "v = 1\n");
    recorder r;
    std::atomic<int> calls{0};
    file_watcher w(
        [&](std::vector<file_change> batch) {
            if (calls.fetch_add(1) == 0) throw std::runtime_error("bad handler");
            r.on_change()(std::move(batch));
        },
        r.on_error());
    REQUIRE(w.add(file));
    write_file(file, "v = 2\n");
    REQUIRE(r.wait_error(watch_error_kind::callback));
    CHECK(r.errors().front().message == "change handler threw: bad handler");

    write_file(file, "v = 3\n");
    REQUIRE(r.wait_batches(1));
    CHECK(r.contents() == std::vector<std::string>{"v = 3\n"});
}

TEST_CASE("file_watcher: 1000 start and stop cycles leak no descriptor or thread",
          "[file_watcher]") {
    temp_dir dir;
    const auto file = dir / "config.toml";
    write_file(file, "v = 1\n");
    {
        // A first cycle outside the count: sanitizer runtimes start helper threads lazily.
        file_watcher w([](std::vector<file_change>) {}, [](const watch_error&) {});
        w.add(file);
        REQUIRE(window_closed_after(w, 0));
    }
    const auto fds_before = count_entries("/proc/self/fd");
    const auto threads_before = count_entries("/proc/self/task");

    for (int i = 0; i < 1000; ++i) {
        file_watcher w([](std::vector<file_change>) {}, [](const watch_error&) {});
        w.add(file);
        // The first cycles run a full window, so armed watches are released too.
        if (i < 10) REQUIRE(window_closed_after(w, 0));
    }

    CHECK(count_entries("/proc/self/fd") == fds_before);
    CHECK(count_entries("/proc/self/task") == threads_before);
}
