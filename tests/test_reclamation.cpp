// SPDX-License-Identifier: MIT
// Reclamation of sync_map values: no use after free, no leak, and the stated memory bound.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cfgreg/detail/epoch.hpp"
#include "cfgreg/sync_map.hpp"

#include "sanitizers.hpp"
#include "threads.hpp"

namespace epoch = cfgreg::detail::epoch;

namespace {

using cfgreg_test::run_together;

std::atomic<long> live_values{0};

// A value owning heap memory whose every instance is counted, so that leaks show.
template <class Payload>
struct counted {
    Payload data;
    explicit counted(Payload p) : data(std::move(p)) { live_values.fetch_add(1); }
    counted(const counted& o) : data(o.data) { live_values.fetch_add(1); }
    counted(counted&& o) noexcept : data(std::move(o.data)) { live_values.fetch_add(1); }
    counted& operator=(const counted&) = default;
    counted& operator=(counted&&) = default;
    ~counted() { live_values.fetch_sub(1); }
    bool operator==(const counted& o) const { return data == o.data; }
};

// Every payload is filled with one symbol; its size comes from a short list.
constexpr std::size_t string_sizes[] = {8, 100, 1000, 8192};
constexpr std::size_t vector_sizes[] = {1, 64, 2048};

std::string make_payload(std::string*, unsigned r) {
    return std::string(string_sizes[r % 4], static_cast<char>('a' + r % 26));
}
std::vector<std::uint32_t> make_payload(std::vector<std::uint32_t>*, unsigned r) {
    return std::vector<std::uint32_t>(vector_sizes[r % 3], r);
}
template <class Payload>
bool intact(const Payload& p) {
    const std::size_t* first = std::is_same_v<Payload, std::string> ? string_sizes : vector_sizes;
    const std::size_t* last = first + (std::is_same_v<Payload, std::string> ? 4 : 3);
    return std::find(first, last, p.size()) != last &&
           std::all_of(p.begin(), p.end(), [&](auto c) { return c == p[0]; });
}

// Two writers replace values `replacements` times in all, through every
// writing member, while two readers copy and visit them; returns the number of
// corrupt values the readers saw.
template <class Payload>
long churn_values(long replacements) {
    using value = counted<Payload>;
    constexpr int keys = 64;
    cfgreg::sync_map<int, value> m;
    std::atomic<bool> done{false};
    std::atomic<long> corrupt{0};
    auto make = [](unsigned r) { return value(make_payload(static_cast<Payload*>(nullptr), r)); };

    auto writer = [&](unsigned id) {
        std::mt19937 rng(id);
        for (long i = 0; i < replacements / 2; ++i) {
            const int k = static_cast<int>(rng() % keys);
            switch (rng() % 16) {
                case 0:
                    if (auto p = m.exchange(k, make(rng())); p && !intact(p->data)) ++corrupt;
                    break;
                case 1:
                    if (auto p = m.load(k)) m.compare_exchange(k, *p, make(rng()));
                    break;
                case 2:
                    m.load_or_store(k, make(rng()));
                    break;
                case 3:
                    m.erase(k);
                    break;
                case 4:
                    m.load_and_delete(k);
                    break;
                case 5:
                    m.store(keys + static_cast<int>(rng() % 100000), make(rng()));
                    break;
                case 6:
                    if (rng() % 64 == 0) m.promote();
                    break;
                case 7:
                    if (rng() % 20000 == 0) m.clear();
                    break;
                default:
                    m.store(k, make(rng()));
                    break;
            }
        }
    };
    auto reader = [&] {
        while (!done.load()) {
            for (int k = 0; k < keys; ++k) {
                if (auto p = m.load(k); p && !intact(p->data)) ++corrupt;
                m.visit(k, [&](const value& v) {
                    if (!intact(v.data)) ++corrupt;
                });
            }
            m.range([&](const int&, const value& v) {
                if (!intact(v.data)) ++corrupt;
                return v.data.size() < 1000;  // stop early now and then
            });
        }
    };
    run_together({[&] { writer(1); },
                  [&] {
                      writer(2);
                      done = true;
                  },
                  reader});
    return corrupt.load();
}

}  // namespace

// Under ASan, a value freed while a reader still held it would be reported as a use after free.
TEST_CASE("sync_map: values replaced a million times are freed, never while read", "[sync_map]") {
    // Strings, then half as many vectors: 3 million replacements in the
    // normal build, 1.5 million under ASan, 0.9 million under TSan (which
    // runs about 40 times slower here).
    const long replacements = CFGREG_TEST_TSAN ? 600000 : CFGREG_TEST_SANITIZED ? 1000000 : 2000000;
    SECTION("strings of 8 to 8192 bytes") {
        CHECK(churn_values<std::string>(replacements) == 0);
    }
    SECTION("vectors") {
        CHECK(churn_values<std::vector<std::uint32_t>>(replacements / 2) == 0);
    }
    // The map is gone and its threads joined: everything retired must now be freeable.
    epoch::synchronize();
    CHECK(live_values.load() == 0);
    CHECK(epoch::unreclaimed_objects() == 0);
    CHECK(epoch::unreclaimed_bytes() == 0);
}

TEST_CASE("sync_map: retired memory stays under the bound the header states", "[sync_map]") {
    epoch::synchronize();
    REQUIRE(epoch::unreclaimed_objects() == 0);

    constexpr int writers = 2;
    const long per_writer = CFGREG_TEST_SANITIZED ? 60000 : 300000;
    cfgreg::sync_map<int, std::string> m;
    std::atomic<int> writers_left{writers};
    std::atomic<std::size_t> peak_objects{0};
    std::atomic<std::size_t> peak_bytes{0};
    std::atomic<std::size_t> largest_object{0};
    std::atomic<long> corrupt{0};

    auto writer = [&](int id) {
        std::mt19937 rng(static_cast<unsigned>(id));
        std::size_t objects = 0, bytes = 0, largest = 0;
        for (long i = 0; i < per_writer; ++i) {
            std::string v(i % 2 ? 8192 : 8, static_cast<char>('a' + i % 26));
            largest = std::max(largest, sizeof(std::string) + v.capacity());
            const int k = id * 1000 + static_cast<int>(rng() % 32);
            if (i % 1000 == 999) {
                m.erase(k);
                m.store(id * 1000 + 100 + static_cast<int>(i / 1000 % 500), std::move(v));
            } else {
                m.store(k, std::move(v));
            }
            objects = std::max(objects, epoch::unreclaimed_objects());
            bytes = std::max(bytes, epoch::unreclaimed_bytes());
        }
        peak_objects = std::max(peak_objects.load(), objects);
        peak_bytes = std::max(peak_bytes.load(), bytes);
        largest_object = std::max(largest_object.load(), largest);
        --writers_left;
    };
    // Readers pin often and copy large values, which holds reclamation back.
    auto reader = [&] {
        std::uint64_t sum = 0;
        while (writers_left.load() > 0) {
            for (int k = 0; k < 32; ++k) {
                if (auto p = m.load(k); p && !intact(*p)) ++corrupt;
                m.visit(1000 + k, [&](const std::string& s) {
                    for (char c : s)
                        sum += static_cast<unsigned char>(c);
                });
            }
        }
        (void)sum;
    };
    run_together({[&] { writer(0); }, [&] { writer(1); }, reader, reader});

    // Per writing thread: the limits plus one object (epoch.hpp); no other margin.
    const std::size_t one_object = std::max<std::size_t>(largest_object.load(), 64);
    CAPTURE(peak_objects.load(), peak_bytes.load(), one_object);
    CHECK(corrupt.load() == 0);
    CHECK(peak_objects.load() <= writers * (epoch::limit_objects + 1));
    CHECK(peak_bytes.load() <= writers * (epoch::limit_bytes + one_object));
    CHECK(peak_objects.load() > 0);
}
