// SPDX-License-Identifier: MIT
// Single-threaded semantics of sync_map, corner states included, and a differential test.
#define CATCH_CONFIG_ENABLE_OPTIONAL_STRINGMAKER
#define CATCH_CONFIG_ENABLE_PAIR_STRINGMAKER
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cfgreg/sync_map.hpp"

namespace {

using int_map = cfgreg::sync_map<int, int>;
using str_map = cfgreg::sync_map<std::string, std::string>;

// Every key lands on the same probe sequence.
struct same_hash {
    std::size_t operator()(int) const noexcept { return 42; }
};

// Counts copies, so that a test can show that a read happened in place.
struct copy_counter {
    static inline int copies = 0;
    int v = 0;
    explicit copy_counter(int x) : v(x) {}
    copy_counter(const copy_counter& o) : v(o.v) { ++copies; }
    copy_counter(copy_counter&& o) noexcept : v(o.v) {}
    copy_counter& operator=(const copy_counter&) = default;
    bool operator==(const copy_counter& o) const { return v == o.v; }
};

template <class Map>
std::map<typename Map::key_type, typename Map::mapped_type> contents(const Map& m) {
    std::map<typename Map::key_type, typename Map::mapped_type> out;
    m.range([&](const auto& k, const auto& v) {
        REQUIRE(out.emplace(k, v).second);  // each key at most once
    });
    return out;
}

// Puts `key` into the read table, then deletes it there.
void delete_in_read_table(int_map& m, int key) {
    m.store(key, -1);
    m.promote();
    m.erase(key);
}

// Puts `key` into the read table, deletes it, then adds a new key: the first key
// added after a promotion rebuilds the dirty list, which expunges the deleted entry.
void expunge(int_map& m, int key, int fresh_key) {
    delete_in_read_table(m, key);
    m.store(fresh_key, fresh_key);
}

}  // namespace

TEST_CASE("sync_map: load, store, contains and erase on one key", "[sync_map]") {
    int_map m;
    CHECK_FALSE(m.load(1));
    CHECK_FALSE(m.contains(1));
    m.store(1, 10);
    CHECK(m.load(1) == 10);
    CHECK(m.contains(1));
    m.store(1, 11);
    CHECK(m.load(1) == 11);
    m.erase(1);
    CHECK_FALSE(m.load(1));
    CHECK_FALSE(m.contains(1));
    m.erase(1);
    m.erase(2);
    CHECK(m.size() == 0);
}

TEST_CASE("sync_map: exchange returns the previous value", "[sync_map]") {
    int_map m;
    CHECK(m.exchange(1, 10) == std::nullopt);
    CHECK(m.exchange(1, 11) == 10);
    CHECK(m.load(1) == 11);
    m.promote();
    CHECK(m.exchange(1, 12) == 11);
    m.erase(1);
    CHECK(m.exchange(1, 13) == std::nullopt);
    CHECK(m.load(1) == 13);
}

TEST_CASE("sync_map: load_or_store stores only into an absent key", "[sync_map]") {
    int_map m;
    SECTION("never present") {
        CHECK(m.load_or_store(1, 10) == std::pair{10, false});
        CHECK(m.load_or_store(1, 11) == std::pair{10, true});
        m.promote();
        CHECK(m.load_or_store(1, 12) == std::pair{10, true});
        CHECK(m.load(1) == 10);
    }
    SECTION("deleted while in the read table") {
        delete_in_read_table(m, 1);
        CHECK(m.load_or_store(1, 10) == std::pair{10, false});
        CHECK(m.load_or_store(1, 11) == std::pair{10, true});
        CHECK(m.load(1) == 10);
    }
    SECTION("deleted and expunged") {
        expunge(m, 1, 2);
        CHECK(m.load_or_store(1, 10) == std::pair{10, false});
        CHECK(m.load(1) == 10);
        m.promote();
        CHECK(m.load(1) == 10);
        CHECK(m.load(2) == 2);
    }
    SECTION("deleted while pending in the overlay") {
        m.store(1, 0);
        m.erase(1);
        CHECK(m.load_or_store(1, 10) == std::pair{10, false});
        CHECK(m.load(1) == 10);
    }
}

TEST_CASE("sync_map: load_and_delete returns the value it deletes", "[sync_map]") {
    int_map m;
    CHECK(m.load_and_delete(1) == std::nullopt);
    m.store(1, 10);
    CHECK(m.load_and_delete(1) == 10);
    CHECK(m.load_and_delete(1) == std::nullopt);
    CHECK_FALSE(m.contains(1));
    m.store(2, 20);
    m.promote();
    CHECK(m.load_and_delete(2) == 20);
    CHECK(m.load_and_delete(2) == std::nullopt);
    expunge(m, 3, 4);
    CHECK(m.load_and_delete(3) == std::nullopt);
    CHECK(m.load_and_delete(4) == 4);
}

TEST_CASE("sync_map: compare_exchange and compare_erase match only a present equal value",
          "[sync_map]") {
    int_map m;
    SECTION("never present") {
        CHECK_FALSE(m.compare_exchange(1, 0, 10));
        CHECK_FALSE(m.compare_erase(1, 0));
        CHECK_FALSE(m.contains(1));
        CHECK(m.size() == 0);
    }
    SECTION("present, pending and promoted") {
        m.store(1, 10);
        for (int round = 0; round < 2; ++round) {
            CHECK_FALSE(m.compare_exchange(1, 99, 11));
            CHECK(m.load(1) == 10);
            CHECK(m.compare_exchange(1, 10, 11));
            CHECK(m.load(1) == 11);
            CHECK_FALSE(m.compare_erase(1, 10));
            CHECK(m.compare_exchange(1, 11, 10));
            m.promote();
        }
        CHECK(m.compare_erase(1, 10));
        CHECK_FALSE(m.contains(1));
        CHECK_FALSE(m.compare_erase(1, 10));
    }
    SECTION("deleted while in the read table") {
        delete_in_read_table(m, 1);
        CHECK_FALSE(m.compare_exchange(1, -1, 10));
        CHECK_FALSE(m.compare_erase(1, -1));
        CHECK_FALSE(m.contains(1));
        m.store(1, 10);
        CHECK(m.compare_exchange(1, 10, 11));
        CHECK(m.load(1) == 11);
    }
    SECTION("deleted and expunged") {
        expunge(m, 1, 2);
        CHECK_FALSE(m.compare_exchange(1, -1, 10));
        CHECK_FALSE(m.compare_erase(1, -1));
        CHECK_FALSE(m.contains(1));
        m.store(1, 10);
        CHECK(m.compare_erase(1, 10));
        CHECK_FALSE(m.contains(1));
        CHECK(m.load(2) == 2);
    }
}

TEST_CASE("sync_map: store into a key deleted while it sat in the read table", "[sync_map]") {
    int_map m;
    for (int k = 0; k < 10; ++k)
        m.store(k, k);
    m.promote();
    m.erase(3);
    CHECK_FALSE(m.load(3));
    m.store(3, 30);
    CHECK(m.load(3) == 30);
    CHECK(contents(m).size() == 10);
    m.promote();
    CHECK(m.load(3) == 30);
}

TEST_CASE("sync_map: store into a key after an expunge cycle", "[sync_map]") {
    int_map m;
    for (int k = 0; k < 10; ++k)
        m.store(k, k);
    m.promote();
    m.erase(3);
    m.store(100, 100);  // first new key after promotion: 3 becomes expunged
    CHECK_FALSE(m.load(3));
    m.store(3, 30);  // unexpunge
    CHECK(m.load(3) == 30);
    m.promote();
    CHECK(m.load(3) == 30);
    CHECK(m.load(100) == 100);
    CHECK(contents(m).size() == 11);

    // Expunged, then dropped by the next promotion, then stored again as a new key.
    m.erase(3);
    m.store(101, 101);
    m.promote();
    CHECK_FALSE(m.load(3));
    CHECK(contents(m).size() == 11);
    CHECK(m.exchange(3, 31) == std::nullopt);
    CHECK(m.load(3) == 31);
    CHECK(contents(m).size() == 12);
}

TEST_CASE("sync_map: colliding hashes keep keys apart through every state", "[sync_map]") {
    cfgreg::sync_map<int, int, same_hash> m;
    for (int k = 0; k < 40; ++k)
        m.store(k, k);
    m.promote();
    for (int k = 0; k < 40; k += 2)
        m.erase(k);
    m.store(1000, 1000);
    for (int k = 0; k < 40; ++k)
        CHECK(m.load(k) == (k % 2 ? std::optional(k) : std::nullopt));
    for (int k = 0; k < 40; k += 4)
        m.store(k, -k);
    m.promote();
    for (int k = 0; k < 40; ++k) {
        const std::optional<int> want = k % 2        ? std::optional(k)
                                        : k % 4 == 0 ? std::optional(-k)
                                                     : std::nullopt;
        CHECK(m.load(k) == want);
    }
    CHECK(m.load(1000) == 1000);
}

TEST_CASE("sync_map: range visits every live key once and stops on false", "[sync_map]") {
    int_map m;
    for (int k = 0; k < 50; ++k)
        m.store(k, k);
    m.promote();
    for (int k = 50; k < 60; ++k)
        m.store(k, k);  // pending in the overlay
    m.erase(0);
    m.erase(55);
    auto seen = contents(m);
    CHECK(seen.size() == 58);
    CHECK(seen.count(0) == 0);
    CHECK(seen.count(55) == 0);
    for (auto& [k, v] : seen)
        CHECK(k == v);

    int calls = 0;
    m.range([&](const int&, const int&) { return ++calls < 5; });
    CHECK(calls == 5);
}

TEST_CASE("sync_map: range callback may store, erase and call range again", "[sync_map]") {
    int_map m;
    for (int k = 0; k < 64; ++k)
        m.store(k, k);
    m.promote();
    for (int k = 64; k < 80; ++k)
        m.store(k, k);

    std::map<int, int> visits;
    int nested = 0;
    int next_key = 1000;
    m.range([&](const int& k, const int& v) {
        ++visits[k];
        if (k < 80) CHECK(v == k);
        // Enough new keys to force promotions of the map being walked.
        for (int i = 0; i < 40; ++i, ++next_key)
            m.store(next_key, next_key);
        if (k < 80 && k % 2 == 0) m.erase(k + 1);  // may or may not have been visited already
        m.store(k, v);
        m.range([&](const int&, const int&) {
            ++nested;
            return false;
        });
    });
    for (auto& [k, n] : visits) {
        INFO("key " << k);
        CHECK(n == 1);
    }
    // Keys nobody erased were present for the whole walk: each was visited.
    for (int k = 0; k < 80; k += 2)
        CHECK(visits.count(k) == 1);
    CHECK(nested == static_cast<int>(std::size(visits)));
    for (int k = 0; k < 80; k += 2)
        CHECK(m.load(k) == k);
    for (int k = 1000; k < next_key; ++k)
        REQUIRE(m.load(k) == k);
}

TEST_CASE("sync_map: store_all stores every pair, the last of a repeated key winning",
          "[sync_map]") {
    str_map m;
    m.store("present", "old");
    m.store("deleted", "old");
    m.promote();
    m.erase("deleted");
    m.store("fresh", "x");  // rebuilds the dirty list: "deleted" is now expunged

    std::vector<std::pair<std::string, std::string>> batch = {
        {"present", "new"}, {"deleted", "back"}, {"a", "1"}, {"b", "2"}, {"a", "3"},
    };
    m.store_all(batch);
    CHECK(batch[0].second == "new");  // a non-const range is copied, never moved from
    CHECK(contents(m) ==
          std::map<std::string, std::string>{
              {"present", "new"}, {"deleted", "back"}, {"fresh", "x"}, {"a", "3"}, {"b", "2"}});

    SECTION("keys given as views, values converted") {
        const std::vector<std::string> names = {"k1", "k2", "k3"};
        std::vector<std::pair<std::string_view, const char*>> views;
        for (const std::string& n : names)
            views.emplace_back(n, "!");
        m.store_all(views);
        CHECK(m.load("k2") == std::string("!"));
        CHECK(m.size() == 8);
    }
    SECTION("an empty range changes nothing") {
        m.store_all(std::vector<std::pair<std::string, std::string>>{});
        CHECK(m.size() == 5);
    }
    SECTION("many new keys at once, then a few into the large map") {
        // Many (more than half the read table): one new read table. Few beside many:
        // the overlay, as store would.
        std::vector<std::pair<std::string, std::string>> many;
        for (int i = 0; i < 5000; ++i)
            many.emplace_back("key-" + std::to_string(i), std::to_string(i));
        m.store_all(many);
        m.store_all(
            std::vector<std::pair<std::string, std::string>>{{"late", "1"}, {"key-7", "7!"}});
        CHECK(m.size() == 5 + 5000 + 1);
        CHECK(m.load("key-4999") == std::string("4999"));
        CHECK(m.load("key-7") == std::string("7!"));
        CHECK(m.load("late") == std::string("1"));
        CHECK(m.load("present") == std::string("new"));
        m.erase("key-1");
        m.store("after", "y");
        m.promote();
        CHECK_FALSE(m.contains("key-1"));
        CHECK(m.size() == 5 + 5000 + 1);
    }
}

TEST_CASE("sync_map: clear then reuse", "[sync_map]") {
    int_map m;
    m.clear();
    for (int k = 0; k < 100; ++k)
        m.store(k, k);
    m.promote();
    for (int k = 100; k < 120; ++k)
        m.store(k, k);
    m.erase(5);
    m.clear();
    CHECK(m.size() == 0);
    for (int k = 0; k < 120; ++k)
        CHECK_FALSE(m.contains(k));
    CHECK(m.load_or_store(7, 70) == std::pair{70, false});
    CHECK(m.exchange(8, 80) == std::nullopt);
    CHECK_FALSE(m.compare_exchange(9, 9, 90));
    CHECK(contents(m) == std::map<int, int>{{7, 70}, {8, 80}});
    m.clear();
    m.clear();
    CHECK(m.size() == 0);
    m.store(1, 1);
    m.promote();
    CHECK(m.load(1) == 1);
}

TEST_CASE("sync_map: string_view and C string lookups find std::string keys", "[sync_map]") {
    str_map m;
    const std::string long_key(40, 'k');
    m.store(long_key, "v");
    m.store("short", "s");
    const std::string_view sv = long_key;
    CHECK(m.load(sv) == "v");
    CHECK(m.load("short") == "s");
    CHECK(m.contains(std::string_view("short")));
    CHECK_FALSE(m.contains(std::string_view("shor")));
    CHECK(m.visit(sv, [](const std::string& v) { CHECK(v == "v"); }));
    CHECK(m.compare_exchange(sv, "v", "w"));
    CHECK(m.load(long_key) == "w");
    CHECK(m.load_and_delete(sv) == "w");
    CHECK_FALSE(m.compare_erase(sv, "w"));
    m.promote();
    CHECK(m.compare_erase("short", "s"));
    m.store("gone", "g");
    m.erase(std::string_view("gone"));
    CHECK(m.size() == 0);
}

TEST_CASE("sync_map: text keys of every length hash by their bytes alone", "[sync_map]") {
    // Fault reproduced: keys over 16 bytes were hashed with bytes read past their end.
    str_map m;
    for (std::size_t len = 0; len <= 80; ++len)
        m.store(std::string(len, 'k'), "v");
    m.promote();
    for (std::size_t len = 0; len <= 80; ++len) {
        CAPTURE(len);
        for (char tail : {'\0', 'x', '\xff'}) {
            // A view into a buffer whose bytes after the key differ every time.
            const std::string buffer = std::string(len, 'k') + std::string(16, tail);
            CHECK(m.contains(std::string_view(buffer.data(), len)));
        }
    }
}

TEST_CASE("sync_map: visit reads the stored value in place", "[sync_map]") {
    cfgreg::sync_map<int, copy_counter> m;
    m.store(1, copy_counter(7));
    copy_counter::copies = 0;
    const copy_counter* first = nullptr;
    CHECK(m.visit(1, [&](const copy_counter& c) { first = &c; }));
    CHECK(m.visit(1, [&](const copy_counter& c) {
        CHECK(&c == first);
        CHECK(c.v == 7);
    }));
    CHECK_FALSE(m.visit(2, [](const copy_counter&) { FAIL("called for an absent key"); }));
    CHECK(copy_counter::copies == 0);
    CHECK(m.load(1)->v == 7);
    CHECK(copy_counter::copies == 1);
}

namespace {

std::uint64_t test_seed() {
    if (const char* s = std::getenv("CFGREG_TEST_SEED")) return std::strtoull(s, nullptr, 0);
    return std::random_device{}();
}

// Runs `steps` random operations on `m` and on a std::map, comparing every result.
template <class Map>
void run_differential(Map& m, std::uint64_t seed, int steps, int keys) {
    std::mt19937_64 rng(seed);
    std::map<int, int> ref;
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    auto ref_get = [&](int k) -> std::optional<int> {
        auto it = ref.find(k);
        return it == ref.end() ? std::nullopt : std::optional(it->second);
    };
    for (int step = 0; step < steps; ++step) {
        const int k = pick(keys);
        const int v = pick(1000);
        const int op = pick(15);
        CAPTURE(seed, step, op, k, v);
        switch (op) {
            case 0:
                REQUIRE(m.load(k) == ref_get(k));
                break;
            case 1:
                REQUIRE(m.contains(k) == (ref.count(k) > 0));
                break;
            case 2: {
                std::optional<int> seen;
                REQUIRE(m.visit(k, [&](const int& x) { seen = x; }) == (ref.count(k) > 0));
                REQUIRE(seen == ref_get(k));
                break;
            }
            case 3:
                m.store(k, v);
                ref[k] = v;
                break;
            case 4:
                REQUIRE(m.exchange(k, v) == ref_get(k));
                ref[k] = v;
                break;
            case 5: {
                auto [it, inserted] = ref.emplace(k, v);
                REQUIRE(m.load_or_store(k, v) == std::pair{it->second, !inserted});
                break;
            }
            case 6:
                REQUIRE(m.load_and_delete(k) == ref_get(k));
                ref.erase(k);
                break;
            case 7:
                m.erase(k);
                ref.erase(k);
                break;
            case 8: {
                // Half the time the expected value is the present one.
                const int expected = rng() % 2 && ref.count(k) ? ref[k] : pick(1000);
                const bool want = ref.count(k) && ref[k] == expected;
                REQUIRE(m.compare_exchange(k, expected, v) == want);
                if (want) ref[k] = v;
                break;
            }
            case 9: {
                const int expected = rng() % 2 && ref.count(k) ? ref[k] : pick(1000);
                const bool want = ref.count(k) && ref[k] == expected;
                REQUIRE(m.compare_erase(k, expected) == want);
                if (want) ref.erase(k);
                break;
            }
            case 10:
                REQUIRE(contents(m) == ref);
                break;
            case 11:
                if (pick(50) == 0) {
                    m.clear();
                    ref.clear();
                }
                break;
            case 12:
                if (pick(4) == 0) m.promote();
                break;
            case 13:
                REQUIRE(m.size() == ref.size());
                break;
            case 14: {
                // A batch of random keys, some present, some deleted, some given twice.
                std::vector<std::pair<int, int>> batch;
                for (int n = pick(pick(4) == 0 ? keys : 8); n >= 0; --n)
                    batch.emplace_back(pick(keys), pick(1000));
                m.store_all(batch);
                for (const auto& [key, value] : batch)
                    ref[key] = value;
                break;
            }
        }
    }
    REQUIRE(contents(m) == ref);
}

}  // namespace

TEST_CASE("sync_map: random operation sequences match std::map", "[sync_map]") {
    const std::uint64_t seed = test_seed();
    INFO("seed " << seed << " (set CFGREG_TEST_SEED to replay)");
    for (int round = 0; round < 8; ++round) {
        // Few keys exercise deletes and expunges; many keys exercise growth and promotion.
        const int keys = round % 2 ? 16 : 600;
        SECTION("std::hash, round " + std::to_string(round)) {
            int_map m;
            run_differential(m, seed + round, 40000, keys);
        }
        SECTION("colliding hash, round " + std::to_string(round)) {
            cfgreg::sync_map<int, int, same_hash> m;
            run_differential(m, seed + round, 4000, keys / 8);
        }
    }
}

TEST_CASE("sync_map: small values stored in place keep every bit pattern", "[sync_map]") {
    // Values of up to 8 bytes live in the entry's word; a value whose top byte is the
    // word's node tag (0x7E) is kept in a node. Both must behave the same.
    cfgreg::sync_map<std::string, std::int64_t> m;
    const std::int64_t patterns[] = {0,
                                     -1,
                                     std::numeric_limits<std::int64_t>::min(),
                                     std::numeric_limits<std::int64_t>::max(),
                                     0x7E00'0000'0000'0000,
                                     0x7EFF'FFFF'FFFF'FFFF,
                                     0x7D00'0000'0000'0001,
                                     0x7F00'0000'0000'0001};
    for (std::int64_t first : patterns) {
        for (std::int64_t second : patterns) {
            CAPTURE(first, second);
            m.store("k", first);
            CHECK(m.load("k") == first);
            CHECK(m.exchange("k", second) == first);
            CHECK(m.load("k") == second);
            m.promote();
            CHECK_FALSE(m.compare_exchange("k", second ^ 1, first));
            CHECK(m.compare_exchange("k", second, first));
            CHECK(m.load("k") == first);
            CHECK(m.load_or_store("k", second) == std::pair{first, true});
            CHECK(m.load_and_delete("k") == first);
            CHECK(m.load_or_store("k", second) == std::pair{second, false});
            CHECK(m.compare_erase("k", second));
            CHECK_FALSE(m.load("k"));
            m.store("fresh", second);  // expunges "k"; the next store revives it
            m.store("k", first);
            CHECK(m.load("k") == first);
            m.erase("fresh");
        }
    }
    CHECK(contents(m) == std::map<std::string, std::int64_t>{{"k", patterns[7]}});

    cfgreg::sync_map<int, double> d;
    d.store(1, -0.0);
    CHECK(std::signbit(*d.load(1)));
    d.store(1, std::numeric_limits<double>::quiet_NaN());
    CHECK(std::isnan(*d.load(1)));
    CHECK_FALSE(d.compare_exchange(1, std::numeric_limits<double>::quiet_NaN(), 1.0));
}
