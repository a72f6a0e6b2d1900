// SPDX-License-Identifier: MIT
// Ordered delivery of change batches to subscribers, and subscription shutdown across threads.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "notifier.hpp"

using namespace std::chrono_literals;
using cfgreg::change_batch;
using cfgreg::change_event;
using cfgreg::change_kind;
using cfgreg::detail::notifier;

namespace {

change_batch batch_of(std::uint64_t generation, std::vector<std::string> keys) {
    change_batch b;
    b.generation = generation;
    for (auto& k : keys) {
        change_event e;
        e.key = std::move(k);
        e.kind = change_kind::changed;
        e.generation = generation;
        b.changes.push_back(std::move(e));
    }
    return b;
}

// A one-shot latch with a bounded wait.
struct latch {
    std::mutex mu;
    std::condition_variable cv;
    bool open = false;
    void release() {
        {
            std::lock_guard lock(mu);
            open = true;
        }
        cv.notify_all();
    }
    bool wait(std::chrono::milliseconds timeout = 10s) {
        std::unique_lock lock(mu);
        return cv.wait_for(lock, timeout, [&] { return open; });
    }
};

}  // namespace

TEST_CASE("notifier: key, prefix and batch subscribers see their changes", "[notifier]") {
    notifier n([](const cfgreg::error&) {});
    std::vector<std::string> exact, prefixed, all;
    int batches = 0;
    auto s1 =
        n.subscribe("server.port", false, [&](const change_event& e) { exact.push_back(e.key); });
    auto s2 =
        n.subscribe("server", true, [&](const change_event& e) { prefixed.push_back(e.key); });
    auto s3 = n.subscribe("", true, [&](const change_event& e) { all.push_back(e.key); });
    auto s4 = n.subscribe_batch(
        [&](const change_batch& b) { batches += static_cast<int>(b.changes.size() > 0); });

    n.publish(
        batch_of(1, {"server.port", "server.hosts[0]", "serverless", "server.port2", "log.level"}));

    CHECK(exact == std::vector<std::string>{"server.port"});
    CHECK(prefixed == std::vector<std::string>{"server.port", "server.hosts[0]", "server.port2"});
    CHECK(all.size() == 5);
    CHECK(batches == 1);
}

TEST_CASE("notifier: a quoted segment with dots is not under the dotted prefix", "[notifier]") {
    CHECK(notifier::under("a.\"b.c\".d", "a.\"b.c\""));
    CHECK_FALSE(notifier::under("a.\"b.c\"", "a.b"));
    CHECK(notifier::under("a.b", "a.b"));
    CHECK_FALSE(notifier::under("a.bc", "a.b"));
}

TEST_CASE("notifier: an ended subscription is never called again", "[notifier]") {
    notifier n([](const cfgreg::error&) {});
    int calls = 0;
    auto s = n.subscribe("k", false, [&](const change_event&) { ++calls; });
    n.publish(batch_of(1, {"k"}));
    CHECK(s.active());
    s.unsubscribe();
    CHECK_FALSE(s.active());
    n.publish(batch_of(2, {"k"}));
    CHECK(calls == 1);
}

TEST_CASE("notifier: a throwing callback is reported and others still run", "[notifier]") {
    std::vector<std::string> reports;
    notifier n([&](const cfgreg::error& e) { reports.push_back(e.what()); });
    int later = 0;
    auto bad = n.subscribe("k", false,
                           [](const change_event&) -> void { throw std::runtime_error("boom"); });
    auto good = n.subscribe("k", false, [&](const change_event&) { ++later; });
    n.publish(batch_of(1, {"k"}));
    CHECK(later == 1);
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].find("boom") != std::string::npos);
}

TEST_CASE("notifier: a callback may unsubscribe itself", "[notifier]") {
    notifier n([](const cfgreg::error&) {});
    int calls = 0;
    cfgreg::subscription s;
    s = n.subscribe("k", false, [&](const change_event&) {
        ++calls;
        s.unsubscribe();  // returns at once: the running call is this one
    });
    n.publish(batch_of(1, {"k"}));
    n.publish(batch_of(2, {"k"}));
    CHECK(calls == 1);
    CHECK_FALSE(s.active());
}

TEST_CASE("notifier: unsubscribe from another thread waits for the running call", "[notifier]") {
    // Fault reproduced: Signals2's disconnect() returns while the slot still runs elsewhere.
    notifier n([](const cfgreg::error&) {});
    latch entered;
    std::atomic<bool> finished{false};
    std::atomic<bool> unsubscribe_began{false};
    auto s = n.subscribe("k", false, [&](const change_event&) {
        entered.release();
        // Stay in this call until unsubscribe() has begun: it disconnects first.
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!n.idle() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::yield();
        unsubscribe_began = n.idle();
        finished = true;
    });
    std::thread publisher([&] { n.publish(batch_of(1, {"k"})); });
    REQUIRE(entered.wait());
    s.unsubscribe();
    CHECK(unsubscribe_began.load());
    CHECK(finished.load());
    publisher.join();
}

TEST_CASE("notifier: a batch published from a callback is delivered after it, in order",
          "[notifier]") {
    notifier n([](const cfgreg::error&) {});
    std::vector<std::uint64_t> seen;
    auto s = n.subscribe_batch([&](const change_batch& b) {
        seen.push_back(b.generation);
        if (b.generation == 1) {
            n.publish(batch_of(2, {"k"}));
            CHECK(seen.size() == 1);  // not delivered inside this call
        }
    });
    n.publish(batch_of(1, {"k"}));
    CHECK(seen == std::vector<std::uint64_t>{1, 2});
}

TEST_CASE("notifier: concurrent publishers deliver every batch exactly once", "[notifier]") {
    notifier n([](const cfgreg::error&) {});
    std::mutex mu;
    std::vector<std::uint64_t> seen;
    auto s = n.subscribe_batch([&](const change_batch& b) {
        std::lock_guard lock(mu);
        seen.push_back(b.generation);
    });
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 500; ++i) {
                n.publish(batch_of(static_cast<std::uint64_t>(t * 1000 + i), {"k"}));
            }
        });
    }
    for (auto& t : threads)
        t.join();
    std::sort(seen.begin(), seen.end());
    REQUIRE(seen.size() == 2000);
    CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());
}
