// SPDX-License-Identifier: MIT
// Allocations seen through a replaced operator new: sync_map lookups by std::string_view
// allocate nothing, and a sync_map or registry write whose allocation fails changes nothing.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cfgreg/registry.hpp"
#include "cfgreg/sync_map.hpp"

#include "sanitizers.hpp"

namespace {
thread_local std::size_t allocations = 0;
// When positive, the allocation that brings it to zero throws std::bad_alloc.
thread_local long fail_countdown = 0;
}  // namespace

#if CFGREG_TEST_SANITIZED
// The sanitizer runtimes define operator new themselves; their allocator hook counts instead.
#include <sanitizer/allocator_interface.h>

namespace {
void count_malloc(const volatile void*, std::size_t) {
    ++allocations;
}
void ignore_free(const volatile void*) {}
[[maybe_unused]] const int hooks_installed =
    __sanitizer_install_malloc_and_free_hooks(count_malloc, ignore_free);
}  // namespace
#else
namespace {

void* counted_alloc(std::size_t n, std::size_t align) {
    ++allocations;
    if (fail_countdown > 0 && --fail_countdown == 0) throw std::bad_alloc();
    if (n == 0) n = 1;
    void* p = align <= alignof(std::max_align_t)
                  ? std::malloc(n)
                  : std::aligned_alloc(align, (n + align - 1) / align * align);
    if (p == nullptr) throw std::bad_alloc();
    return p;
}
}  // namespace

// Every replaceable form, so that no sanitizer runtime's own definitions get linked in.
void* operator new(std::size_t n) {
    return counted_alloc(n, 0);
}
void* operator new[](std::size_t n) {
    return counted_alloc(n, 0);
}
void* operator new(std::size_t n, std::align_val_t a) {
    return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
    return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc(n, 0);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
    return operator new(n, t);
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc(n, static_cast<std::size_t>(a));
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t& t) noexcept {
    return operator new(n, a, t);
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
    std::free(p);
}
#endif

TEST_CASE("sync_map: string_view lookups do not allocate", "[sync_map]") {
    cfgreg::sync_map<std::string, int> m;
    // Longer than any small-string buffer: building a std::string from these would allocate.
    const std::string old_key(48, 'o'), new_key(48, 'n'), gone_key(48, 'g'), absent(48, 'a');
    m.store(old_key, 1);
    m.store(gone_key, 2);
    m.promote();
    m.erase(gone_key);
    m.store(new_key, 3);  // pending in the overlay; gone_key is now expunged

    std::size_t before = allocations;
    m.store(std::string(48, 'x'), 4);
    REQUIRE(allocations > before);  // the counter sees the map's own allocations

    const char* c_keys[] = {old_key.c_str(), new_key.c_str(), gone_key.c_str(), absent.c_str()};
    int found = 0;
    before = allocations;
    for (const char* c : c_keys) {
        const std::string_view sv(c);
        found += m.load(sv).has_value();
        found += m.load(c).has_value();
        found += m.contains(sv);
        found += m.visit(sv, [&](const int& v) { found += v > 0; });
    }
    const std::size_t lookup_allocations = allocations - before;
    CHECK(lookup_allocations == 0);
    CHECK(found == 2 * 5);  // old_key and new_key: five hits each
}

TEST_CASE("registry: get of a short key with no value, or spelled otherwise, does not allocate",
          "[registry]") {
    cfgreg::registry reg;
    reg.load_string("[server]\nport = 8080\n[limits]\nburst = 4\n", "app.toml").value();
    CHECK(reg.get_or<int>("server.port", 0) == 8080);  // registers this thread first

    const std::size_t before = allocations;
    int fallbacks = 0;
    for (const char* key : {"server.missing", "limits.rate", "nope", "'server'.missing"}) {
        fallbacks += reg.get_or<int>(key, 1);
        fallbacks += reg.get_or<bool>(key, true) ? 1 : 0;
        fallbacks += reg.get_or<double>(key, 1.0) == 1.0 ? 1 : 0;
        fallbacks += reg.contains(key) ? 0 : 1;
    }
    const int port = reg.get_or<int>("'server'.port", 0);  // a spelling that is parsed first
    CHECK(allocations - before == 0);
    CHECK(fallbacks == 4 * 4);
    CHECK(port == 8080);

    // The counter is live: read builds the failure's message, which get never does.
    const std::size_t before_read = allocations;
    CHECK(reg.read<int>("server.missing").code() == cfgreg::errc::missing);
    CHECK(allocations > before_read);
}

TEST_CASE("sync_map: a write whose allocation fails leaves the map as it was", "[sync_map]") {
    if (CFGREG_TEST_SANITIZED) {
        WARN(
            "CFGREG_TEST_SKIPPED: sanitizer runtimes own operator new, so no allocation can be"
            " made to fail");
        return;
    }
    // Fail the n-th allocation of a run of inserts (new entries, overlay growth, promotion,
    // revival of expunged keys, batches) for every n until a run completes: after each failure the
    // map holds exactly the writes that returned, and takes further writes normally.
    for (long n = 1;; ++n) {
        CAPTURE(n);
        cfgreg::sync_map<std::string, std::string> m;
        std::map<std::string, std::string> reference;
        for (int i = 0; i < 40; ++i) {
            const std::string key = "warm-" + std::to_string(i) + std::string(24, 'k');
            m.store(key, std::string(32, 'v'));
            reference[key] = std::string(32, 'v');
        }
        m.promote();
        m.erase("warm-0" + std::string(24, 'k'));  // expunged by the next insert
        reference.erase("warm-0" + std::string(24, 'k'));

        const std::vector<std::pair<std::string, std::string>> none;
        bool failed = false;
        long budget = n;  // allocations the map may still make before one fails
        for (int i = 0; i < 120 && !failed; ++i) {
            const std::string key = "new-" + std::to_string(i) + std::string(24, 'k');
            std::string value(40, static_cast<char>('a' + i % 26));
            // A batch: new keys (one given twice), a present key and an expunged one.
            const std::vector<std::pair<std::string, std::string>> batch = {
                {key, "first"},
                {key + "-b", value},
                {"warm-1" + std::string(24, 'k'), value},
                {"warm-0" + std::string(24, 'k'), value},
                {key, value}};
            std::vector<std::pair<std::string, std::string>> many;
            if (i == 60) {
                for (int k = 0; k < 100; ++k)
                    many.emplace_back("many-" + std::to_string(k) + std::string(24, 'k'), value);
                many.emplace_back("warm-0" + std::string(24, 'k'), "again");  // present
            }
            try {
                fail_countdown = budget;  // armed for the map's own allocations only
                if (i == 60) {
                    m.store_all(many);  // more new keys than half the table: a rebuild
                } else if (i % 7 == 6) {
                    m.store_all(batch);  // a few: into the overlay
                } else if (i % 3 == 0) {
                    m.store(key, value);
                } else if (i % 3 == 1) {
                    m.load_or_store(key, value);
                } else {
                    m.exchange(key, value);
                }
                budget = fail_countdown;
                fail_countdown = 0;
                for (const auto& [k, v] : i == 60 ? many : i % 7 == 6 ? batch : none)
                    reference[k] = v;
                if (i != 60) reference[key] = std::move(value);
            } catch (const std::bad_alloc&) {
                fail_countdown = 0;
                failed = true;
                // load_or_store returns a copy of the value it stored: when that copy
                // fails, the store has happened (see the header).
                if (i != 60 && i % 7 != 6 && i % 3 == 1 && m.contains(key)) {
                    reference[key] = std::move(value);
                }
            }
        }

        std::map<std::string, std::string> seen;
        m.range([&](const std::string& k, const std::string& v) {
            CHECK(seen.emplace(k, v).second);
            return true;
        });
        CHECK(seen == reference);
        m.store("after", "x");
        m.store("warm-0" + std::string(24, 'k'), "back");
        m.promote();
        CHECK(m.load("after") == std::string("x"));
        CHECK(m.load("warm-0" + std::string(24, 'k')) == std::string("back"));
        if (!failed) break;  // every allocation of the run has been failed once
    }
}

TEST_CASE("registry: a write whose allocation fails leaves the registry as it was", "[registry]") {
    if (CFGREG_TEST_SANITIZED) {
        WARN(
            "CFGREG_TEST_SKIPPED: sanitizer runtimes own operator new, so no allocation can be"
            " made to fail");
        return;
    }
    // Fail the n-th allocation of a `set` that adds a key and shadows another, for every n
    // until one completes: after a failure, reads, the snapshot and the next writes agree
    // with the registry before the `set`.
    cfgreg::table t;
    t.emplace_back("k", cfgreg::value(2));
    t.emplace_back("z", cfgreg::value(3));
    const cfgreg::value shadow(t);
    for (long n = 1;; ++n) {
        CAPTURE(n);
        cfgreg::registry r;
        REQUIRE(r.set_default("t.k", 1));
        auto handle = r.setting<std::int64_t>("t.k", -1);
        const std::uint64_t generation = r.generation();

        bool failed = false;
        fail_countdown = n;
        try {
            const auto st = r.set("t", shadow);
            fail_countdown = 0;
            REQUIRE(st);
        } catch (const std::bad_alloc&) {
            fail_countdown = 0;
            failed = true;
        }
        if (failed) {
            CHECK(r.generation() == generation);
            CHECK(r.get<std::int64_t>("t.k") == 1);
            CHECK_FALSE(r.contains("t.z"));
            CHECK(handle.get() == 1);
            CHECK(r.snapshot().size() == 1);
        }
        REQUIRE(r.unset("t"));
        CHECK(r.get<std::int64_t>("t.k") == 1);
        CHECK_FALSE(r.contains("t.z"));
        REQUIRE(r.set("t.z", 4));
        CHECK(r.get<std::int64_t>("t.z") == 4);
        CHECK(handle.get() == 1);
        if (!failed) break;
    }
}
