// SPDX-License-Identifier: MIT
// sync_map under concurrent readers and writers: consistency, torn reads, and lock-free reads.
#define CATCH_CONFIG_ENABLE_OPTIONAL_STRINGMAKER
#define CATCH_CONFIG_ENABLE_PAIR_STRINGMAKER
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cfgreg/detail/epoch.hpp"
#include "cfgreg/sync_map.hpp"

#include "sanitizers.hpp"
#include "threads.hpp"

namespace {

using cfgreg_test::run_together;

// Iteration counts are divided by this under sanitizers, which run 5-20 times slower.
constexpr int slowdown = CFGREG_TEST_SANITIZED ? 8 : 1;

std::uint64_t test_seed() {
    if (const char* s = std::getenv("CFGREG_TEST_SEED")) return std::strtoull(s, nullptr, 0);
    return std::random_device{}();
}

// A value that names its key, so that a reader can tell a value of another key.
using tagged = std::pair<int, int>;  // {key, generation}

}  // namespace

TEST_CASE("sync_map: readers and writers on overlapping keys", "[sync_map]") {
    const std::uint64_t seed = test_seed();
    INFO("seed " << seed << " (set CFGREG_TEST_SEED to replay)");
    cfgreg::sync_map<int, tagged> m;
    constexpr int keys = 48;
    const int ops = 150000 / slowdown;
    std::atomic<bool> done{false};
    std::atomic<int> wrong{0};
    auto check = [&](int k, const tagged& v) {
        if (v.first != k) wrong.fetch_add(1, std::memory_order_relaxed);
    };

    auto writer = [&](int id) {
        std::mt19937 rng(static_cast<unsigned>(seed) + id);
        for (int i = 0; i < ops; ++i) {
            const int k = static_cast<int>(rng() % keys);
            const tagged v{k, i};
            switch (rng() % 9) {
                case 0:
                    m.store(k, v);
                    break;
                case 1:
                    if (auto p = m.exchange(k, v)) check(k, *p);
                    break;
                case 2:
                    check(k, m.load_or_store(k, v).first);
                    break;
                case 3:
                    if (auto p = m.load_and_delete(k)) check(k, *p);
                    break;
                case 4:
                    if (rng() % 4 == 0) m.erase(k);
                    break;
                case 5:
                    if (auto p = m.load(k)) m.compare_exchange(k, *p, v);
                    break;
                case 6:
                    if (auto p = m.load(k)) m.compare_erase(k, *p);
                    break;
                case 7:
                    if (rng() % 64 == 0) m.promote();
                    break;
                default:
                    m.store(k + 1000 * (1 + id), {k + 1000 * (1 + id), i});
                    break;
            }
        }
    };
    auto reader = [&] {
        while (!done.load(std::memory_order_relaxed)) {
            for (int k = 0; k < keys; ++k) {
                if (auto p = m.load(k)) check(k, *p);
                m.visit(k, [&](const tagged& v) { check(k, v); });
            }
            std::map<int, int> seen;
            m.range([&](const int& k, const tagged& v) {
                check(k, v);
                if (++seen[k] != 1) wrong.fetch_add(1, std::memory_order_relaxed);
            });
        }
    };
    run_together({[&] { writer(0); },
                  [&] {
                      writer(1);
                      done = true;
                  },
                  reader});
    CHECK(wrong.load() == 0);
    m.range([&](const int& k, const tagged& v) { CHECK(v.first == k); });
}

TEST_CASE("sync_map: writers on disjoint keys read their own writes", "[sync_map]") {
    const std::uint64_t seed = test_seed();
    INFO("seed " << seed << " (set CFGREG_TEST_SEED to replay)");
    cfgreg::sync_map<int, int> m;
    constexpr int writers = 2;
    constexpr int keys = 200;  // per writer; many new keys keep promotions and expunges going
    const int ops = 150000 / slowdown;
    std::vector<std::map<int, int>> refs(writers);
    std::atomic<int> mismatches{0};
    std::atomic<int> finished{0};

    auto writer = [&](int id) {
        std::mt19937 rng(static_cast<unsigned>(seed) * 31 + id);
        auto& ref = refs[id];
        auto expect = [&](bool ok) {
            if (!ok) mismatches.fetch_add(1, std::memory_order_relaxed);
        };
        auto ref_get = [&](int k) -> std::optional<int> {
            auto it = ref.find(k);
            return it == ref.end() ? std::nullopt : std::optional(it->second);
        };
        for (int i = 0; i < ops; ++i) {
            const int k = id * 100000 + static_cast<int>(rng() % keys);
            const int v = i;
            switch (rng() % 8) {
                case 0:
                    m.store(k, v);
                    ref[k] = v;
                    break;
                case 1:
                    expect(m.exchange(k, v) == ref_get(k));
                    ref[k] = v;
                    break;
                case 2: {
                    auto [it, inserted] = ref.emplace(k, v);
                    expect(m.load_or_store(k, v) == std::pair{it->second, !inserted});
                    break;
                }
                case 3:
                    expect(m.load_and_delete(k) == ref_get(k));
                    ref.erase(k);
                    break;
                case 4: {
                    const bool want = ref.count(k) > 0;
                    expect(m.compare_exchange(k, want ? ref[k] : -1, v) == want);
                    if (want) ref[k] = v;
                    break;
                }
                case 5: {
                    const bool want = ref.count(k) > 0;
                    expect(m.compare_erase(k, want ? ref[k] : -1) == want);
                    ref.erase(k);
                    break;
                }
                default:
                    expect(m.load(k) == ref_get(k));
                    break;
            }
        }
        finished.fetch_add(1);
    };
    auto reader = [&] {
        while (finished.load() < writers) {
            m.range([&](const int& k, const int&) {
                if (k / 100000 >= writers || k % 100000 >= keys) mismatches.fetch_add(1);
            });
        }
    };
    run_together({[&] { writer(0); }, [&] { writer(1); }, reader});
    CHECK(mismatches.load() == 0);
    std::map<int, int> all;
    m.range([&](const int& k, const int& v) { all[k] = v; });
    std::map<int, int> want;
    for (auto& r : refs)
        want.insert(r.begin(), r.end());
    CHECK(all == want);
}

namespace {

// Readers must only ever see `a` or `b` for the stable keys, and always see the key.
template <class T>
void run_torn_read_test(const T& a, const T& b) {
    constexpr int stable = 16;
    const int reads = CFGREG_TEST_SANITIZED ? 300 : 4000;
    cfgreg::sync_map<int, T> m;
    for (int k = 0; k < stable; ++k)
        m.store(k, k % 2 ? a : b);
    std::atomic<int> readers_left{2};
    std::atomic<long> torn{0};
    std::atomic<long> missing{0};
    std::atomic<long> flips{0};
    std::atomic<long> churn{0};
    auto valid = [&](const T& v) { return v == a || v == b; };

    auto flipper = [&] {
        std::mt19937 rng(7);
        while (readers_left.load() > 0) {
            const int k = static_cast<int>(rng() % stable);
            switch (rng() % 4) {
                case 0:
                    m.store(k, rng() % 2 ? a : b);
                    break;
                case 3: {
                    std::vector<std::pair<int, T>> batch;  // present keys, one given twice
                    for (int n = 0; n < 4; ++n)
                        batch.emplace_back(static_cast<int>(rng() % stable), rng() % 2 ? a : b);
                    batch.push_back(batch.front());
                    m.store_all(batch);
                    break;
                }
                case 1: {
                    auto p = m.exchange(k, rng() % 2 ? a : b);
                    if (!p || !valid(*p)) torn.fetch_add(1);
                    break;
                }
                default: {
                    auto p = m.load(k);
                    if (!p || !valid(*p))
                        torn.fetch_add(1);
                    else
                        m.compare_exchange(k, *p, *p == a ? b : a);
                }
            }
            flips.fetch_add(1, std::memory_order_relaxed);
        }
    };
    // Adds and deletes other keys: overlay growth, promotions, expunges, unexpunges.
    auto churner = [&] {
        std::mt19937 rng(11);
        int next = 1000;
        while (readers_left.load() > 0) {
            m.store(next, a);
            if (rng() % 2) m.erase(next - static_cast<int>(rng() % 64));
            if (rng() % 3 == 0) m.store(next - static_cast<int>(rng() % 64), b);  // may unexpunge
            if (rng() % 97 == 0) m.promote();
            if (rng() % 53 == 0) {
                // New keys and recently deleted ones in one batch: into the overlay, or
                // into a new read table when they outnumber half the current one (the
                // first batches, of up to 300 keys beside the 16 stable ones, do).
                std::vector<std::pair<int, T>> batch;
                const int n = static_cast<int>(rng() % 300) + 1;
                for (int i = 0; i < n; ++i)
                    batch.emplace_back(next - 64 + static_cast<int>(rng() % 128), b);
                m.store_all(batch);
            }
            if (rng() % 5 == 0) m.load_and_delete(next - static_cast<int>(rng() % 200));
            if (next % 1000 == 0 && next >= 2000) {
                for (int k = next - 1000; k < next; ++k)
                    m.erase(k);
            }
            ++next;
            churn.fetch_add(1, std::memory_order_relaxed);
        }
    };
    auto reader = [&] {
        // Reads of small values are fast: also wait for the writers to get going.
        for (int i = 0; i < reads || flips.load() < 100 || churn.load() < 100; ++i) {
            for (int k = 0; k < stable; ++k) {
                auto p = m.load(k);
                if (!p)
                    missing.fetch_add(1);
                else if (!valid(*p))
                    torn.fetch_add(1);
                if (!m.visit(k, [&](const T& v) {
                        if (!valid(v)) torn.fetch_add(1);
                    })) {
                    missing.fetch_add(1);
                }
                if (!m.contains(k)) missing.fetch_add(1);
            }
            int seen[stable] = {};
            m.range([&](const int& k, const T& v) {
                if (!valid(v)) torn.fetch_add(1);
                if (k < stable) ++seen[k];
            });
            for (int n : seen) {
                if (n != 1) missing.fetch_add(1);
            }
        }
        readers_left.fetch_sub(1);
    };
    run_together({flipper, churner, reader, reader});
    CAPTURE(flips.load(), churn.load());
    CHECK(torn.load() == 0);
    CHECK(missing.load() == 0);
    CHECK(flips.load() > 0);
    CHECK(churn.load() > 0);
}

}  // namespace

TEST_CASE("sync_map: readers never see a torn or missing value while keys churn", "[sync_map]") {
    SECTION("strings of 8 and 8192 bytes") {
        run_torn_read_test(std::string(8, 'A'), std::string(8192, 'B'));
    }
    SECTION("vectors of 2 and 1024 elements") {
        run_torn_read_test(std::vector<std::uint64_t>(2, 1), std::vector<std::uint64_t>(1024, 2));
    }
    SECTION("64-bit words stored in place, and one whose top byte makes it a node") {
        run_torn_read_test(std::int64_t{-5}, std::int64_t{0x7E00'0000'0000'0001});
    }
    SECTION("doubles stored in place") {
        run_torn_read_test(0.5, -1e300);
    }
}

namespace {

using lock_map = cfgreg::sync_map<std::string, std::string>;

// Runs every read-only member on `m` from a fresh thread and returns the
// locks it took. `present` keys must stay present throughout;
// load_or_store is only called on them.
std::uint64_t locks_taken_by_reader(const lock_map& m, const std::vector<std::string>& present,
                                    const std::vector<std::string>& others,
                                    std::function<void()> background = {}) {
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> locks{~std::uint64_t{0}};
    std::thread bg;
    std::latch started(background ? 2 : 1);
    if (background) {
        bg = std::thread([&] {
            started.count_down();
            do {
                background();
            } while (!stop.load());
        });
    }
    std::thread reader([&] {
        started.arrive_and_wait();
        auto& mm = const_cast<lock_map&>(m);  // load_or_store is not const
        std::size_t sink = 0;
        for (int i = 0; i < 2000 / slowdown; ++i) {
            for (const auto& k : present) {
                sink += m.load(k).has_value();
                sink += m.load(std::string_view(k)).has_value();
                sink += m.contains(k);
                m.visit(k, [&](const std::string& v) { sink += v.size(); });
                sink += mm.load_or_store(k, "x").second;
            }
            for (const auto& k : others) {
                sink += m.load(k).has_value();
                sink += m.contains(std::string_view(k));
                m.visit(k, [&](const std::string& v) { sink += v.size(); });
            }
            m.range([&](const std::string& k, const std::string&) { sink += k.size(); });
        }
        locks = cfgreg::detail::epoch::thread_lock_count;
        (void)sink;
    });
    reader.join();
    stop = true;
    if (bg.joinable()) bg.join();
    return locks.load();
}

std::vector<std::string> names(const char* prefix, int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i)
        out.push_back(prefix + std::to_string(i) + std::string(20, 'x'));
    return out;
}

}  // namespace

TEST_CASE("sync_map: read paths take no lock in any state of the map", "[sync_map]") {
    // The instrument works: adding a key takes the map's mutex on this thread.
    {
        lock_map probe;
        const auto before = cfgreg::detail::epoch::thread_lock_count;
        probe.store("k", "v");
        REQUIRE(cfgreg::detail::epoch::thread_lock_count > before);
    }

    lock_map m;
    const auto old_keys = names("old", 40);
    const auto new_keys = names("new", 20);
    const auto absent = names("absent", 10);

    SECTION("fresh") {
        CHECK(locks_taken_by_reader(m, {}, absent) == 0);
    }
    SECTION("new keys pending in the overlay, after promotion, after deletes and expunges") {
        for (auto& k : old_keys)
            m.store(k, k);
        m.promote();
        for (auto& k : new_keys)
            m.store(k, k);
        CHECK(locks_taken_by_reader(m, old_keys, absent) == 0);
        CHECK(locks_taken_by_reader(m, new_keys, absent) == 0);

        m.promote();
        CHECK(locks_taken_by_reader(m, new_keys, old_keys) == 0);

        std::vector<std::string> live, gone;
        for (std::size_t i = 0; i < old_keys.size(); ++i) {
            (i % 2 ? live : gone).push_back(old_keys[i]);
            if (i % 2 == 0) m.erase(old_keys[i]);
        }
        CHECK(locks_taken_by_reader(m, live, gone) == 0);  // deleted in the read table
        m.store("fresh", "f");                             // expunges the deleted entries
        CHECK(locks_taken_by_reader(m, live, gone) == 0);
        m.erase(new_keys[0]);
        gone.push_back(new_keys[0]);
        CHECK(locks_taken_by_reader(m, live, gone) == 0);
    }
    SECTION("while another thread clears the map") {
        auto all = old_keys;
        all.insert(all.end(), new_keys.begin(), new_keys.end());
        int round = 0;
        auto clearer = [&] {
            for (auto& k : old_keys)
                m.store(k, k);
            if (++round % 2) m.promote();
            for (auto& k : new_keys)
                m.store(k, k);
            m.clear();
        };
        // load_or_store cannot be asked about a present key here: every key comes and goes.
        CHECK(locks_taken_by_reader(m, {}, all, clearer) == 0);
        CHECK(round > 0);
    }
    SECTION("while another thread stores new keys and updates old ones") {
        for (auto& k : old_keys)
            m.store(k, k);
        m.promote();
        int next = 0;
        auto adder = [&] {
            // Up to 300 added keys, each deleted again now and then: new
            // entries, promotions, expunges and unexpunges, without letting the
            // map grow without bound.
            const std::string k = "added" + std::to_string(next++ % 300);
            m.store(k, k);
            m.store(old_keys[next % old_keys.size()], k);
            if (next % 3 == 0) m.erase("added" + std::to_string(next * 7 % 300));
        };
        CHECK(locks_taken_by_reader(m, old_keys, absent, adder) == 0);
        CHECK(next > 0);
    }
}
