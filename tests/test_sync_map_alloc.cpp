// SPDX-License-Identifier: MIT
// sync_map lookups by std::string_view allocate nothing: counted by a replaced operator new.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <new>
#include <string>
#include <string_view>

#include "cfgreg/sync_map.hpp"

#include "sanitizers.hpp"

namespace {
thread_local std::size_t allocations = 0;
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
