// SPDX-License-Identifier: MIT
// A concurrent map for read-mostly data, with Go's sync.Map semantics and lock-free reads.
#pragma once

// Thread safety: every member may be called concurrently from any thread,
// including from inside a `range` or `visit` callback on the same map. No
// operation that only reads (`load`, `visit`, `contains`, `range`, and
// `load_or_store` on a present key) ever takes a lock, spins, waits, or writes a
// cache line that another reader writes, in any state of the map. (A thread's
// first operation of all registers it with the reclamation domain, once: one
// allocation, and a record reused after the thread exits.) A write
// happens-before every read that observes it. Destroying the map while another
// thread uses it is undefined, as for any object.
//
// Values are immutable once stored: `store` replaces a value, it never edits it.
// On x86-64, a trivially copyable value of up to 8 bytes is kept in its entry's
// atomic word (unless its top byte is 0x7E, the word's node tag), so storing it
// into a present key allocates nothing and retires nothing.
// `load` returns a copy. `visit` lends a `const T&` that is valid only until the
// callback returns; keep no pointer or reference to it (see `visit` for the rules).
// Destructors of `T` run on writing threads (inside `store`, `erase`, ... of this or
// another map), never inside a read.
//
// Exceptions: a write that throws (an allocation, or a constructor of `Key` or `T`)
// leaves the map as it was, except that the copy a write returns (the previous
// value of `exchange` and `load_and_delete`, the value of `load_or_store`) is made
// after the write: when that copy throws, the write has happened.
//
// Example:
//
//     cfgreg::sync_map<std::string, int> ports;
//     ports.store("http", 80);
//     if (auto p = ports.load("http")) use(*p);           // lock-free, no allocation
//     auto [v, loaded] = ports.load_or_store("https", 443);
//
// Memory: replaced values, replaced tables and dead entries are reclaimed by the
// epoch domain of `cfgreg/detail/epoch.hpp`. While no reader stays inside one read
// for longer than `epoch::limit_wait_ms` (100 ms), the memory that a writing
// thread has retired but not yet freed stays below `epoch::limit_objects` objects
// and `epoch::limit_bytes` bytes (counting each value's own heap buffer for
// strings and vectors), plus one object.

#include <algorithm>
#include <atomic>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "cfgreg/detail/epoch.hpp"

// Values of up to 8 bytes are kept in place in their entry where node addresses
// fit in 56 bits and carry nothing in their top byte (see sync_map's `word`): on
// x86-64. AArch64 heap pointers may carry a tag there (MTE, HWASan, Android's
// TBI), so those builds, and any build defining CFGREG_INLINE_WORDS=0, keep every
// value in a node.
#if defined(__has_feature)
#if __has_feature(hwaddress_sanitizer)
#define CFGREG_HWASAN 1
#endif
#endif
#if !defined(CFGREG_INLINE_WORDS)
#if defined(__x86_64__) && !defined(__SANITIZE_HWADDRESS__) && !defined(CFGREG_HWASAN)
#define CFGREG_INLINE_WORDS 1
#else
#define CFGREG_INLINE_WORDS 0
#endif
#endif

namespace cfgreg {
namespace detail {

/// Heap bytes owned by a value, for reclamation accounting.
template <class T>
std::size_t owned_bytes(const T&) noexcept {
    return 0;
}
template <class C, class Tr, class A>
std::size_t owned_bytes(const std::basic_string<C, Tr, A>& s) noexcept {
    return s.capacity() * sizeof(C);
}
template <class U, class A>
std::size_t owned_bytes(const std::vector<U, A>& v) noexcept {
    return v.capacity() * sizeof(U);
}

/// The address stored in an entry whose key was deleted and left out of the dirty list.
inline constinit std::max_align_t expunged_tag{};

/// The hash the map uses for text keys with the default hasher: inlined, and cheaper
/// than libstdc++'s out-of-line murmur hash for the short keys of configuration
/// paths. Reads every byte as part of an 8-byte word and mixes each pair of words
/// with a 64x64->128-bit multiply.
[[gnu::always_inline]] inline std::uint64_t mix(std::uint64_t a, std::uint64_t b) noexcept {
    __extension__ using u128 = unsigned __int128;
    const u128 r = static_cast<u128>(a) * b;
    return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}
[[gnu::always_inline]] inline std::uint64_t load_word(const char* p) noexcept {
    std::uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
[[gnu::always_inline]] inline std::size_t text_hash(std::string_view s) noexcept {
    constexpr std::uint64_t k0 = 0xa0761d6478bd642full;
    constexpr std::uint64_t k1 = 0xe7037ed1a0b428dbull;
    const char* p = s.data();
    const char* const end = p + s.size();
    std::size_t n = s.size();
    std::uint64_t seed = k0 ^ n;
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    if (n > 16) {
        for (; n > 16; n -= 16, p += 16) {
            seed = mix(load_word(p) ^ k1, load_word(p + 8) ^ seed);
        }
        a = load_word(end - 16);  // the last 16 bytes (they may overlap the last block),
        b = load_word(end - 8);   // never a byte past the end
    } else if (n >= 8) {
        a = load_word(p);  // first and last 8 bytes; they overlap below 16 bytes
        b = load_word(end - 8);
    } else if (n >= 4) {
        std::uint32_t lo;
        std::uint32_t hi;
        std::memcpy(&lo, p, 4);
        std::memcpy(&hi, p + n - 4, 4);
        a = lo;
        b = hi;
    } else if (n > 0) {
        a = (std::uint64_t{static_cast<unsigned char>(p[0])} << 16) |
            (std::uint64_t{static_cast<unsigned char>(p[n / 2])} << 8) |
            static_cast<unsigned char>(p[n - 1]);
    }
    return static_cast<std::size_t>(mix(a ^ k1, b ^ seed));  // seed carries the length
}

/// Equality of text keys, inlined for the short keys of configuration paths.
[[gnu::always_inline]] inline bool text_equal(std::string_view a, std::string_view b) noexcept {
    const std::size_t n = a.size();
    if (n != b.size()) return false;
    if (n >= 8 && n <= 16) {
        return ((load_word(a.data()) ^ load_word(b.data())) |
                (load_word(a.data() + n - 8) ^ load_word(b.data() + n - 8))) == 0;
    }
    return n == 0 || std::memcmp(a.data(), b.data(), n) == 0;
}

/// Fibonacci hashing turns any hash (identity hashes of integers too) into a table index.
inline std::size_t slot_index(std::size_t hash, unsigned shift) noexcept {
    return static_cast<std::size_t>((static_cast<std::uint64_t>(hash) * 0x9E3779B97F4A7C15ull) >>
                                    shift);
}

/// Keys that lookups accept: the key type itself, or text when the key is
/// std::string and the hasher is the standard one (std::hash of a string_view
/// equals that of an equal string).
// clang-format 14 mangles the operators of a concept definition.
// clang-format off
template <class K, class Key, class Hash, class KeyEqual>
concept lookup_key =
    std::same_as<std::remove_cvref_t<K>, Key> ||
    (std::same_as<Key, std::string> && std::same_as<Hash, std::hash<std::string>> &&
     std::same_as<KeyEqual, std::equal_to<std::string>> &&
     std::convertible_to<const K&, std::string_view>) ||
    (requires { typename Hash::is_transparent; typename KeyEqual::is_transparent; } &&
     std::invocable<const Hash&, const K&>);

/// Ranges that `sync_map::store_all` accepts: pairs (anything `std::get<0>` and
/// `std::get<1>` read) of a lookup key that makes a `Key` and of what makes a `T`.
template <class R, class Key, class T, class Hash, class KeyEqual>
concept key_value_range =
    std::ranges::input_range<R> &&
    requires(std::ranges::range_reference_t<R>&& item) {
        requires lookup_key<std::remove_cvref_t<decltype(std::get<0>(item))>, Key, Hash, KeyEqual>;
        requires std::constructible_from<Key, decltype(std::get<0>(item))>;
        requires std::constructible_from<T, decltype(std::get<1>(std::as_const(item)))>;
    };
// clang-format on

}  // namespace detail

/// A hash map for many readers and few writers, after Go's `sync.Map`.
///
/// Best when keys are written once and read many times, or when threads write
/// disjoint keys. Updating an existing key is one atomic exchange on its entry;
/// adding a key takes a mutex.
template <class Key, class T, class Hash = std::hash<Key>, class KeyEqual = std::equal_to<Key>>
class sync_map {
    static_assert(std::is_nothrow_destructible_v<T>, "sync_map values must not throw on destroy");

  public:
    using key_type = Key;
    using mapped_type = T;

    sync_map() : read_(new header{}) {}
    ~sync_map();
    sync_map(const sync_map&) = delete;
    sync_map& operator=(const sync_map&) = delete;

    /// The value stored for `key`, or nothing.
    template <detail::lookup_key<Key, Hash, KeyEqual> K>
    std::optional<T> load(const K& key) const;

    /// Calls `f(const T&)` with the value stored for `key`, in place, and returns
    /// true; returns false without calling `f` when the key is absent. The
    /// reference is valid only while `f` runs: do not keep it, a pointer into it,
    /// or a view of it past the call.
    ///
    ///     SAFE:   m.visit(k, [&](const std::string& s) { out.append(s); });
    ///     UNSAFE: m.visit(k, [&](const std::string& s) { view = s; });  // dangles later
    ///
    /// `f` may call any member of any map. Memory retired by all writers
    /// is held back while `f` runs, so keep it short: no blocking, no
    /// waiting for other threads.
    template <detail::lookup_key<Key, Hash, KeyEqual> K, class F>
    bool visit(const K& key, F&& f) const;

    /// True when `key` has a value.
    template <detail::lookup_key<Key, Hash, KeyEqual> K>
    bool contains(const K& key) const {
        return visit(key, [](const T&) {});
    }

    /// Sets the value for `key`.
    void store(const Key& key, T value) { swap_in(key, std::move(value), nullptr); }

    /// Stores each `(key, value)` pair of `items`, as `store` would in order (of
    /// pairs with equal keys, the last wins), taking the lock once; the values are
    /// copied, and `items` is left as it is. The keys new to
    /// the map become readable together: when they outnumber half the read table they
    /// go straight into a new one, built once, where one `store` each would pass
    /// through the overlay and its promotions. Strong guarantee: if an allocation or
    /// a constructor throws, the map is as it was. Readers see each pair stored, or
    /// not yet, never a torn one; a reader may see some pairs before others.
    /// `items` is iterated, and its keys and values converted, with the map's
    /// mutex held and the thread pinned: nothing that runs then (a lazy range's
    /// elements, a conversion, `Hash` or `KeyEqual`) may write to this map, whose
    /// mutex is not recursive, and all of it should be short.
    template <detail::key_value_range<Key, T, Hash, KeyEqual> R>
    void store_all(R&& items);

    /// Sets the value for `key` and returns the previous one, if any.
    std::optional<T> exchange(const Key& key, T value) {
        std::optional<T> previous;
        swap_in(key, std::move(value), &previous);
        return previous;
    }

    /// Returns the present value and true when `key` has one; otherwise
    /// stores `value` and returns it with false. A present key is answered
    /// without locking or allocating.
    std::pair<T, bool> load_or_store(const Key& key, T value);

    /// Deletes `key` and returns the value it had, if any.
    template <detail::lookup_key<Key, Hash, KeyEqual> K>
    std::optional<T> load_and_delete(const K& key) {
        std::optional<T> previous;
        remove(key, &previous);
        return previous;
    }

    /// Deletes `key`, if present.
    template <detail::lookup_key<Key, Hash, KeyEqual> K>
    void erase(const K& key) {
        remove(key, nullptr);
    }

    /// Stores `desired` when the present value equals `expected`; returns whether it
    /// did. An absent or deleted key never matches.
    template <detail::lookup_key<Key, Hash, KeyEqual> K>
    bool compare_exchange(const K& key, const T& expected, T desired);

    /// Deletes `key` when its value equals `expected`; returns whether it did.
    template <detail::lookup_key<Key, Hash, KeyEqual> K>
    bool compare_erase(const K& key, const T& expected);

    /// Calls `f(const Key&, const T&)` for each key; `f` returning false stops the
    /// walk (`f` may also return void). Not a snapshot: each key is visited at most
    /// once, with a value it had at some moment of the call; keys stored or deleted
    /// meanwhile may or may not be visited. `f` may call any member of this map,
    /// including `range`. The references follow the rules of `visit`, and memory
    /// reclamation waits for the whole walk.
    template <class F>
    void range(F&& f) const;

    /// Deletes every key.
    void clear();

    /// Moves keys added since the last promotion into the read map now,
    /// so that lookups of them take one probe instead of two. O(size).
    /// Never needed for correctness.
    void promote();

    /// Number of keys with a value. O(size); a moment's count, not a snapshot.
    std::size_t size() const {
        std::size_t n = 0;
        range([&](const Key&, const T&) { ++n; });
        return n;
    }

  private:
    struct node {
        T value;
        template <class... A>
        explicit node(A&&... a) : value(std::forward<A>(a)...) {}
    };

    // What an entry's `p` holds: the address of a node, null (deleted) or
    // expunged(), as in Go. For small trivially copyable values (inline_values)
    // `p` holds the value's own bytes instead, so that a store is one atomic
    // exchange in place, with no allocation, no retire and no second cache line for
    // readers (folly::settings keeps small PODs the same way). There, a word whose
    // top byte is `node_tag` holds a node address in its low 56 bits (user-space
    // addresses of x86-64 and AArch64 fit), null or expunged(); the rare value
    // whose own top byte equals `node_tag` is stored in a node like any other.
    using word = std::uintptr_t;
    static constexpr bool inline_values =
        std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(word) && sizeof(word) == 8 &&
        std::atomic<word>::is_always_lock_free && (CFGREG_INLINE_WORDS != 0);
    static constexpr int tag_shift = 56;
    static constexpr word node_tag = inline_values ? word{0x7E} << tag_shift : 0;
    static constexpr word tag_mask = inline_values ? word{0xFF} << tag_shift : 0;

    // One key. Shared by the read table, the overlay and the dirty list (Go's
    // *entry). The key's first value lives inside the entry (`first`), so that a key
    // stored once is read from the entry's own cache lines; later values are
    // separate nodes, or words in `p` (inline_values). `first` is destroyed by the
    // entry's deleter while `p` still points to it, else by a deleter retired when
    // `p` left it; `parts` counts those two owners of the entry's memory. (Aligning
    // entries to cache lines measured no faster for reads, and made churn of new keys
    // slower: aligned allocation is slow and fragments the heap.)
    struct entry {
        std::atomic<word> p;
        const std::size_t hash;
        std::atomic<unsigned> parts{1};
        const Key key;
        union {
            node first;
        };
        template <class K, class V>
        entry(std::size_t h, K&& k, V&& v) : p(null_word), hash(h), key(std::forward<K>(k)) {
            if constexpr (inline_values) {
                if (const auto w = inline_word(v)) {
                    p.store(*w, std::memory_order_relaxed);  // published with the entry
                    return;
                }
            }
            ::new (static_cast<void*>(&first)) node(std::forward<V>(v));
            p.store(of_node(&first), std::memory_order_relaxed);  // published with the entry
        }
        ~entry() {}  // `first` has its own lifetime (see above)
    };

    // Objects unlinked under mu_, retired once it is released (invariant 6).
    struct retiree {
        void* p;
        detail::epoch::deleter_fn deleter;
        std::size_t bytes;
    };
    using trash_list = std::vector<retiree>;

    // A value unlinked by a write, to retire once the writer is unpinned.
    struct replaced {
        entry* e = nullptr;
        node* old = nullptr;
    };

    // The read table is an array of groups; a group of seven slots fills one
    // cache line: a word of seven one-byte tags (seven bits of each slot's hash,
    // top bit set; 0 for an empty slot) and the seven entry pointers. A lookup
    // compares the seven tags of its home group at once, and a small table
    // stays in the first-level cache.
    static constexpr int group_width = 7;
    struct alignas(64) group {
        std::uint64_t tags;
        entry* e[group_width];
    };
    static std::uint64_t tag_of(std::size_t hash) noexcept {
        return 0x80 | (static_cast<std::uint64_t>(hash) & 0x7F);
    }
    // One bit (the top bit of the slot's byte) for each slot whose tag is `tag`.
    static std::uint64_t tag_matches(std::uint64_t tags, std::uint64_t tag) noexcept {
        constexpr std::uint64_t low7 = 0x7F7F7F7F7F7F7F7Full;
        const std::uint64_t x = tags ^ (tag * 0x0101010101010101ull);  // 0 bytes: matches
        return ~(((x & low7) + low7) | x) & ~low7;  // exact: no carry crosses a byte
    }

    // Keys added since the last promotion: open addressing, filled in place
    // under mu_ while readers probe it (each slot is published by one release
    // store and never changes again).
    struct overlay {
        struct oslot {
            std::atomic<std::size_t> hash{0};
            std::atomic<entry*> e{nullptr};
        };
        explicit overlay(unsigned bits) : shift(64 - bits), slots(std::size_t{1} << bits) {}
        const unsigned shift;
        std::size_t count = 0;  // guarded by mu_
        std::vector<oslot> slots;
    };

    // What readers load with one acquire: the immutable read table and the overlay.
    struct header {
        const group* groups = empty_groups();
        unsigned shift = 63;       // 64 - log2(number of groups)
        std::size_t count = 0;     // entries in the read table, live or not
        overlay* added = nullptr;  // null when no key was added since the last promotion
    };

    static const group* empty_groups() {
        static constexpr group none[2] = {};
        return none;
    }
    // Calls f(entry*) for every entry of the read table of `h`.
    template <class F>
    static bool for_each_in_table(const header* h, F&& f) {
        for (std::size_t g = 0, n = std::size_t{1} << (64 - h->shift); g < n; ++g) {
            for (int k = 0; k < group_width; ++k) {
                if (h->groups[g].e[k] != nullptr && !f(h->groups[g].e[k])) return false;
            }
        }
        return true;
    }

    static node* expunged() noexcept { return reinterpret_cast<node*>(&detail::expunged_tag); }

    // Words of `entry::p` (see `word`).
    static constexpr word null_word = node_tag;
    static word of_node(const node* n) noexcept { return node_tag | reinterpret_cast<word>(n); }
    static word expunged_word() noexcept { return of_node(expunged()); }
    static bool holds_value(word w) noexcept { return w != null_word && w != expunged_word(); }
    // True for a word holding a value's bytes; false for a node, null or expunged().
    static bool is_inline(word w) noexcept {
        if constexpr (inline_values) {
            return (w & tag_mask) != node_tag;
        } else {
            return false;
        }
    }
    static node* node_of(word w) noexcept { return reinterpret_cast<node*>(w & ~tag_mask); }
    // The word holding `v` in place, or nothing when `v` needs a node.
    static std::optional<word> inline_word(const T& v) noexcept {
        if constexpr (inline_values) {
            word w = 0;
            std::memcpy(&w, &v, sizeof(T));
            if ((w & tag_mask) != node_tag) return w;
        }
        return std::nullopt;
    }
    static T inline_value(word w) noexcept {
        struct bytes {
            unsigned char b[sizeof(T)];
        } raw;
        std::memcpy(raw.b, &w, sizeof(T));
        return std::bit_cast<T>(raw);
    }
    // Calls f(const T&) with the value of a word that holds one.
    template <class F>
    static decltype(auto) with_value(word w, F&& f) {
        if constexpr (inline_values) {
            if (is_inline(w)) {
                const T v = inline_value(w);
                return std::forward<F>(f)(v);
            }
        }
        return std::forward<F>(f)(std::as_const(node_of(w)->value));
    }
    static T value_of(word w) {
        return with_value(w, [](const T& v) { return v; });
    }
    // A value on its way into an entry: its word, and the node behind it if it needs
    // one, owned until the word is published (then released) and freed otherwise.
    struct staged_value {
        word w = 0;
        std::unique_ptr<node> n;
    };
    static staged_value stage(T&& v) {
        if (const auto w = inline_word(v)) return {*w, nullptr};
        auto n = std::make_unique<node>(std::move(v));
        const word w = of_node(n.get());
        return {w, std::move(n)};
    }

    // Text keys with the default hasher use detail::text_hash for keys and views alike.
    static constexpr bool text_keys =
        std::same_as<Key, std::string> && std::same_as<Hash, std::hash<std::string>>;
    // The table index of a hash: its top bits where the hash is our own well-mixed
    // text hash, else Fibonacci hashing (identity hashes of integers need it).
    static std::size_t index_of(std::size_t hash, unsigned shift) noexcept {
        if constexpr (text_keys && sizeof(std::size_t) == 8) {
            return hash >> shift;
        } else {
            return detail::slot_index(hash, shift);
        }
    }
    template <class K>
    std::size_t hash_of(const K& key) const {
        if constexpr (text_keys) {
            return detail::text_hash(std::string_view(key));
        } else {
            return hash_(key);
        }
    }
    template <class K>
    bool equal(const Key& stored, const K& key) const {
        if constexpr (text_keys && std::same_as<KeyEqual, std::equal_to<std::string>>) {
            return detail::text_equal(stored, std::string_view(key));
        } else {
            return eq_(stored, key);
        }
    }

    template <class K>
    entry* find(const header* h, std::size_t hash, const K& key) const;
    template <class K>
    static entry* find_in(const overlay* o, std::size_t hash, const K& key, const sync_map& m);

    void swap_in(const Key& key, T value, std::optional<T>* previous);
    template <class K>
    void remove(const K& key, std::optional<T>* previous);

    std::unique_lock<std::mutex> lock() const {
        ++detail::epoch::thread_lock_count;
        return std::unique_lock<std::mutex>(mu_);
    }
    // Relaxed: only mu_ holders store read_ (invariant 1), and the caller holds mu_.
    const header* current_locked() const { return read_.load(std::memory_order_relaxed); }
    entry* add_locked(const Key& key, std::size_t hash, T&& value, trash_list& trash);
    bool unexpunge_locked(entry* e);
    void dirty_locked();
    // Publishes `h`, retiring the old header; `trash` must have room for one more
    // (reserve_publish), so that nothing can fail once readers may see `h`.
    void publish_locked(header* h, trash_list& trash) noexcept;
    static void reserve_publish(trash_list& trash, std::size_t more = 0) {
        reserve_more(trash, more + 1);
    }
    // Room for `n` more elements, growing geometrically (an exact reserve per insert
    // would copy the whole vector every time).
    template <class V>
    static void reserve_more(V& v, std::size_t n) {
        if (v.capacity() - v.size() < n) v.reserve(std::max(v.size() + n, 2 * v.capacity()));
    }
    void add_to_overlay_locked(entry* e, trash_list& trash);
    // A new overlay with room for `more` keys beyond those of `o` (null: none), holding them.
    static std::unique_ptr<overlay> grown_overlay_locked(const overlay* o, std::size_t more);
    // Puts `e` into the first free slot of its probe sequence in `o`; `order` is
    // release where readers may already probe `o`, relaxed where `o` is private.
    static void put_in_overlay_locked(overlay* o, entry* e, std::memory_order order) noexcept;
    void maybe_promote_locked(trash_list& trash) noexcept;
    void promote_locked(trash_list& trash);
    // A read table being built, private to the writer until it is installed.
    struct built_table {
        std::unique_ptr<group[]> groups;
        std::unique_ptr<header> h;
    };
    // Allocates a read table holding dirty_ and `more` (keys in no table), and
    // reserves `trash` for what installing it retires. Changes nothing; requires
    // dirty_valid_.
    built_table build_table_locked(const std::vector<entry*>& more, trash_list& trash) const;
    // Publishes `t` in place of the read table and overlay, retiring them and the
    // expunged entries that `t` leaves out; the dirty list starts over.
    void install_table_locked(built_table t, trash_list& trash) noexcept;
    void note_overlay_hit();

    static void retire_node(node* n) {
        detail::epoch::retire(n, &delete_node, sizeof(node) + detail::owned_bytes(n->value));
    }
    static void retire_all(trash_list& trash) {
        for (const retiree& r : trash)
            detail::epoch::retire(r.p, r.deleter, r.bytes);
    }
    // Called while pinned, right after `old` was unlinked from `e`.
    static replaced unlinked(entry* e, word w) noexcept {
        if (!holds_value(w) || is_inline(w)) return {};  // no node to retire
        node* const old = node_of(w);
        if constexpr (!std::is_trivially_destructible_v<T>) {
            // Relaxed: the entry's deleter runs only after this thread unpins (release).
            if (old == &e->first) e->parts.fetch_add(1, std::memory_order_relaxed);
        }
        return {e, old};
    }
    // Called once unpinned, so that the retire may collect.
    static void retire_unlinked(const replaced& r) {
        if (r.old == nullptr) return;
        if (r.old != &r.e->first) {
            retire_node(r.old);
        } else if constexpr (!std::is_trivially_destructible_v<T>) {
            detail::epoch::retire(r.e, &destroy_first, detail::owned_bytes(r.e->first.value));
        }
    }
    static std::size_t overlay_bytes(const overlay* o) noexcept {
        return sizeof(overlay) + o->slots.size() * sizeof(typename overlay::oslot);
    }
    static std::size_t group_bytes(const header* h) noexcept {
        return (std::size_t{1} << (64 - h->shift)) * sizeof(group);
    }
    static void delete_node(void* p) noexcept { delete static_cast<node*>(p); }
    static void release_part(entry* e) noexcept {
        // acq_rel: the last owner's acquire sees the other owner's release of its part.
        if (e->parts.fetch_sub(1, std::memory_order_acq_rel) == 1) delete e;
    }
    static void destroy_first(void* p) noexcept {
        entry* e = static_cast<entry*>(p);
        e->first.~node();
        release_part(e);
    }
    static void delete_entry(void* p) noexcept {
        entry* e = static_cast<entry*>(p);
        const word w = e->p.load(std::memory_order_relaxed);  // no thread can reach e any more
        if (w == of_node(&e->first)) {
            e->first.~node();
        } else {
            // `first` was destroyed when `p` left it, or holds a trivially destructible
            // value, or was never constructed (the first value was stored in place).
            if (holds_value(w) && !is_inline(w)) delete node_of(w);
        }
        release_part(e);
    }
    static void delete_header(void* p) noexcept { delete static_cast<header*>(p); }
    static void delete_overlay(void* p) noexcept { delete static_cast<overlay*>(p); }
    static void delete_groups(void* p) noexcept { delete[] static_cast<group*>(p); }

    // Invariants (Go's I1-I6, adapted so that reads never lock):
    //  1. `read_` is replaced only under mu_, by one release store; the header
    //     and the slot array it points to are immutable; overlay slots are
    //     written once, under mu_.
    //  2. An entry is in at most one of the read table and the overlay of any one
    //     header, and a key has at most one entry in a header: lookups and
    //     `range` see each key once.
    //  3. Entry states: p == null_word: deleted; p == expunged_word(): deleted, not
    //     in dirty_ (so dirty_valid_ holds); else live, holding a node or (only when
    //     inline_values) the value's own bytes. Every state change is one atomic
    //     read-modify-write of `p`, so a reader's one acquire load sees one state
    //     and its value together. Expunged entries leave that state only under
    //     mu_, and are added to dirty_ before mu_ is released (unexpunge).
    //  4. When dirty_valid_, dirty_ lists every non-expunged entry of the read
    //     table plus every entry of the overlay: promotion builds the next read
    //     table from dirty_ alone.
    //  5. The overlay is non-null only while dirty_valid_. Promotion happens when
    //     writers have counted dirty_.size() overlay hits (Go's miss rule, counted
    //     by writers only since readers write nothing) or when the overlay
    //     outgrows half the read table.
    //  6. Reclamation: a replaced header, slot array or overlay, an expunged entry
    //     dropped by promotion, every entry dropped by `clear`, and every replaced
    //     node are retired to the epoch domain after mu_ is released; readers reach
    //     them only under an epoch guard. A word replaced in place owns nothing.
    alignas(64) std::atomic<const header*> read_;
    alignas(64) mutable std::mutex mu_;
    const group* owned_groups_ = nullptr;  // groups of the current header; guarded by mu_
    std::vector<entry*> dirty_;            // guarded by mu_
    bool dirty_valid_ = false;             // guarded by mu_
    alignas(64) std::atomic<std::size_t> overlay_hits_{0};  // writers only
    std::atomic<std::size_t> dirty_size_{0};                // mirror of dirty_.size()
    [[no_unique_address]] Hash hash_;
    [[no_unique_address]] KeyEqual eq_;
};

// ---------------------------------------------------------------------------------------------
// Implementation.

template <class Key, class T, class Hash, class KeyEqual>
sync_map<Key, T, Hash, KeyEqual>::~sync_map() {
    // Relaxed here and below: no other thread uses a map being destroyed.
    const header* h = read_.load(std::memory_order_relaxed);
    for_each_in_table(h, [](entry* e) {
        delete_entry(e);
        return true;
    });
    if (h->added != nullptr) {
        for (auto& s : h->added->slots) {
            if (entry* e = s.e.load(std::memory_order_relaxed)) delete_entry(e);
        }
        delete h->added;
    }
    delete[] owned_groups_;
    delete h;
}

template <class Key, class T, class Hash, class KeyEqual>
template <class K>
auto sync_map<Key, T, Hash, KeyEqual>::find_in(const overlay* o, std::size_t hash, const K& key,
                                               const sync_map& m) -> entry* {
    const std::size_t mask = o->slots.size() - 1;
    for (std::size_t i = index_of(hash, o->shift);; i = (i + 1) & mask) {
        // Acquire pairs with the release store of put_in_overlay_locked (or, for an
        // overlay filled before it was shared, publish_locked's release): a visible entry
        // pointer comes with its slot's hash and the entry's constructed fields.
        entry* e = o->slots[i].e.load(std::memory_order_acquire);
        if (e == nullptr) return nullptr;
        if (o->slots[i].hash.load(std::memory_order_relaxed) == hash && m.equal(e->key, key)) {
            return e;
        }
    }
}

template <class Key, class T, class Hash, class KeyEqual>
template <class K>
[[gnu::always_inline]] inline auto sync_map<Key, T, Hash, KeyEqual>::find(const header* h,
                                                                          std::size_t hash,
                                                                          const K& key) const
    -> entry* {
    const std::size_t mask = (std::size_t{1} << (64 - h->shift)) - 1;
    for (std::size_t i = index_of(hash, h->shift);; i = (i + 1) & mask) {
        const group& g = h->groups[i];
        for (std::uint64_t m = tag_matches(g.tags, tag_of(hash)); m != 0; m &= m - 1) {
            entry* e = g.e[std::countr_zero(m) >> 3];
            if (e->hash == hash && equal(e->key, key)) return e;
        }
        if (g.e[group_width - 1] == nullptr) break;  // groups fill in order: not full, so absent
    }
    return h->added != nullptr ? find_in(h->added, hash, key, *this) : nullptr;
}

template <class Key, class T, class Hash, class KeyEqual>
template <detail::lookup_key<Key, Hash, KeyEqual> K>
[[gnu::always_inline]] inline std::optional<T> sync_map<Key, T, Hash, KeyEqual>::load(
    const K& key) const {
    const std::size_t hash = hash_of(key);
    detail::epoch::guard pin;
    // Acquire pairs with the release store of publish_locked: the header's tables are visible.
    const entry* e = find(read_.load(std::memory_order_acquire), hash, key);
    if (e == nullptr) return std::nullopt;
    // Acquire pairs with the release half of every exchange/CAS that stored the word
    // (a node, or a value in place): a read that sees a store happens after it.
    const word w = e->p.load(std::memory_order_acquire);
    if (!holds_value(w)) return std::nullopt;
    return value_of(w);
}

template <class Key, class T, class Hash, class KeyEqual>
template <detail::lookup_key<Key, Hash, KeyEqual> K, class F>
[[gnu::always_inline]] inline bool sync_map<Key, T, Hash, KeyEqual>::visit(const K& key,
                                                                           F&& f) const {
    const std::size_t hash = hash_of(key);
    detail::epoch::guard pin;
    const entry* e = find(read_.load(std::memory_order_acquire), hash, key);  // as in load()
    if (e == nullptr) return false;
    const word w = e->p.load(std::memory_order_acquire);  // as in load()
    if (!holds_value(w)) return false;
    with_value(w, std::forward<F>(f));
    return true;
}

template <class Key, class T, class Hash, class KeyEqual>
template <class F>
void sync_map<Key, T, Hash, KeyEqual>::range(F&& f) const {
    auto call = [&](const entry* e) {
        const word w = e->p.load(std::memory_order_acquire);  // as in load()
        if (!holds_value(w)) return true;
        return with_value(w, [&](const T& v) {
            if constexpr (std::is_void_v<std::invoke_result_t<F&, const Key&, const T&>>) {
                f(e->key, v);
                return true;
            } else {
                return static_cast<bool>(f(e->key, v));
            }
        });
    };
    detail::epoch::guard pin;
    const header* h = read_.load(std::memory_order_acquire);  // as in load()
    if (!for_each_in_table(h, call) || h->added == nullptr) return;
    for (const auto& s : h->added->slots) {
        const entry* e = s.e.load(std::memory_order_acquire);  // as in find_in()
        if (e != nullptr && !call(e)) return;
    }
}

template <class Key, class T, class Hash, class KeyEqual>
void sync_map<Key, T, Hash, KeyEqual>::note_overlay_hit() {
    // Relaxed: the count only decides when to promote; being off by a few is harmless.
    const std::size_t hits = overlay_hits_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (hits < dirty_size_.load(std::memory_order_relaxed)) return;
    std::unique_lock<std::mutex> guard(mu_, std::try_to_lock);
    if (!guard.owns_lock()) return;  // a writer holds mu_; the next hit tries again
    ++detail::epoch::thread_lock_count;
    trash_list trash;
    try {
        if (current_locked()->added != nullptr) promote_locked(trash);
    } catch (const std::bad_alloc&) {
        // Promotion only speeds up reads of new keys; a later write tries again.
    }
    guard.unlock();
    retire_all(trash);
}

template <class Key, class T, class Hash, class KeyEqual>
void sync_map<Key, T, Hash, KeyEqual>::swap_in(const Key& key, T value,
                                               std::optional<T>* previous) {
    const std::size_t hash = hash_of(key);
    staged_value next;       // `value`'s word once staged
    bool is_staged = false;  // `value` is in `next` (moved into next.n, or copied into next.w)
    replaced r;
    bool done = false;
    bool in_overlay = false;
    {
        detail::epoch::guard pin;
        const header* h = read_.load(std::memory_order_acquire);  // as in load()
        if (entry* e = find(h, hash, key)) {
            // Go's trySwap: fails only on an expunged entry, which needs mu_ to revive.
            // Relaxed: only the CAS's expected value; the CAS below re-reads it.
            word w = e->p.load(std::memory_order_relaxed);
            while (w != expunged_word()) {
                if (!is_staged) {
                    next = stage(std::move(value));
                    is_staged = true;
                }
                // acq_rel: release publishes the new node, or orders this store before
                // every load that reads the word; acquire makes the old node readable
                // for `previous`. Pairs with the acquire loads of load(), visit(), ...
                if (e->p.compare_exchange_weak(w, next.w, std::memory_order_acq_rel,
                                               std::memory_order_relaxed)) {
                    (void)next.n.release();  // published
                    if (holds_value(w) && previous != nullptr) *previous = value_of(w);
                    r = unlinked(e, w);
                    done = true;
                    in_overlay = h->added != nullptr && find_in(h->added, hash, key, *this) == e;
                    break;
                }
            }
        }
    }
    if (done) {
        retire_unlinked(r);
        if (in_overlay) note_overlay_hit();
        return;
    }

    trash_list trash;
    {
        auto guard = lock();
        detail::epoch::guard pin;  // nodes read here may be replaced by lock-free writers
        if (entry* e = find(current_locked(), hash, key)) {
            unexpunge_locked(e);
            if (!is_staged) next = stage(std::move(value));
            const word old = e->p.exchange(next.w, std::memory_order_acq_rel);  // as above
            (void)next.n.release();                                             // published
            if (holds_value(old) && previous != nullptr) *previous = value_of(old);
            r = unlinked(e, old);
        } else {
            // An inline-staged `value` was copied, not moved: it is still whole.
            add_locked(key, hash, next.n != nullptr ? std::move(next.n->value) : std::move(value),
                       trash);
        }
    }
    retire_all(trash);
    retire_unlinked(r);
}

template <class Key, class T, class Hash, class KeyEqual>
auto sync_map<Key, T, Hash, KeyEqual>::add_locked(const Key& key, std::size_t hash, T&& value,
                                                  trash_list& trash) -> entry* {
    // A new key joins the dirty list and the overlay (Go: the dirty map, an amended read map).
    // If an allocation throws, the map is as it was: everything that can fail comes
    // before the overlay publishes the entry, and nothing after it can.
    if (!dirty_valid_) dirty_locked();
    reserve_more(dirty_, 1);
    entry* e = new entry(hash, key, std::move(value));
    try {
        add_to_overlay_locked(e, trash);
    } catch (...) {
        delete_entry(e);  // never published
        throw;
    }
    dirty_.push_back(e);  // reserved above
    // Relaxed, here and wherever mu_ holders update it: dirty_size_ only paces promotion
    // in note_overlay_hit(), where a stale size promotes a little early or late.
    dirty_size_.store(dirty_.size(), std::memory_order_relaxed);
    maybe_promote_locked(trash);
    return e;
}

template <class Key, class T, class Hash, class KeyEqual>
bool sync_map<Key, T, Hash, KeyEqual>::unexpunge_locked(entry* e) {
    reserve_more(dirty_, 1);  // so that nothing fails once `e` is revived
    word w = expunged_word();
    // Only mu_ holders change an expunged entry (invariant 3), so no retry is needed.
    // Relaxed: no value is published; the word stored next is published by acq_rel.
    if (!e->p.compare_exchange_strong(w, null_word, std::memory_order_relaxed)) return false;
    dirty_.push_back(e);
    dirty_size_.store(dirty_.size(), std::memory_order_relaxed);
    return true;
}

template <class Key, class T, class Hash, class KeyEqual>
void sync_map<Key, T, Hash, KeyEqual>::dirty_locked() {
    const header* h = current_locked();
    dirty_.clear();
    dirty_.reserve(h->count + h->count / 4 + 8);
    for_each_in_table(h, [&](entry* e) {
        // Go's tryExpungeLocked: a deleted entry becomes expunged and stays out of dirty_.
        // Relaxed: only null and expunged() are written here, no value to publish.
        word w = e->p.load(std::memory_order_relaxed);
        while (w == null_word &&
               !e->p.compare_exchange_weak(w, expunged_word(), std::memory_order_relaxed)) {
        }
        if (holds_value(w)) dirty_.push_back(e);
        return true;
    });
    dirty_valid_ = true;
    dirty_size_.store(dirty_.size(), std::memory_order_relaxed);
}

template <class Key, class T, class Hash, class KeyEqual>
void sync_map<Key, T, Hash, KeyEqual>::publish_locked(header* h, trash_list& trash) noexcept {
    const header* old = current_locked();
    // Release pairs with the acquire loads of read_: the new tables are complete when seen.
    read_.store(h, std::memory_order_release);
    trash.push_back({const_cast<header*>(old), &delete_header, sizeof(header)});
}

template <class Key, class T, class Hash, class KeyEqual>
auto sync_map<Key, T, Hash, KeyEqual>::grown_overlay_locked(const overlay* o, std::size_t more)
    -> std::unique_ptr<overlay> {
    const std::size_t count = (o != nullptr ? o->count : 0) + more;
    unsigned bits = o != nullptr ? 64 - o->shift : 3;
    while ((std::size_t{1} << bits) < count * 2)
        ++bits;
    auto grown = std::make_unique<overlay>(bits);
    if (o != nullptr) {
        for (auto& s : o->slots) {
            // Relaxed: overlay slots are written only by mu_ holders, as this thread is.
            if (entry* x = s.e.load(std::memory_order_relaxed)) {
                put_in_overlay_locked(grown.get(), x, std::memory_order_relaxed);
            }
        }
    }
    return grown;
}

template <class Key, class T, class Hash, class KeyEqual>
void sync_map<Key, T, Hash, KeyEqual>::put_in_overlay_locked(overlay* o, entry* e,
                                                             std::memory_order order) noexcept {
    const std::size_t mask = o->slots.size() - 1;
    std::size_t i = index_of(e->hash, o->shift);
    // Relaxed probe: slots are written only by mu_ holders, as this thread is. The
    // hash may be relaxed too: readers look at it only after acquiring `e` below.
    while (o->slots[i].e.load(std::memory_order_relaxed) != nullptr)
        i = (i + 1) & mask;
    o->slots[i].hash.store(e->hash, std::memory_order_relaxed);
    // Release where `o` is shared (pairs with find_in()'s acquire); relaxed only for an
    // overlay still private, which publish_locked's release store publishes.
    o->slots[i].e.store(e, order);
    ++o->count;
}

template <class Key, class T, class Hash, class KeyEqual>
void sync_map<Key, T, Hash, KeyEqual>::add_to_overlay_locked(entry* e, trash_list& trash) {
    const header* h = current_locked();
    overlay* o = h->added;
    if (o != nullptr && (o->count + 1) * 2 <= o->slots.size()) {
        put_in_overlay_locked(o, e, std::memory_order_release);  // readers may probe `o`
        return;
    }
    // Grow (or create) the overlay: a new one, published with a new header.
    auto grown = grown_overlay_locked(o, 1);
    auto next = std::make_unique<header>(header{h->groups, h->shift, h->count, grown.get()});
    reserve_publish(trash, 1);  // the old overlay and header; nothing fails below
    put_in_overlay_locked(grown.get(), e, std::memory_order_relaxed);  // published by read_
    if (o != nullptr) trash.push_back({o, &delete_overlay, overlay_bytes(o)});
    (void)grown.release();  // owned by `next` from here
    publish_locked(next.release(), trash);
}

template <class Key, class T, class Hash, class KeyEqual>
void sync_map<Key, T, Hash, KeyEqual>::maybe_promote_locked(trash_list& trash) noexcept {
    const header* h = current_locked();
    if (h->added->count * 2 <= std::max<std::size_t>(h->count, 32)) return;
    try {
        promote_locked(trash);
    } catch (const std::bad_alloc&) {
        // Promotion only speeds up reads of new keys; the next write tries again.
    }
}

template <class Key, class T, class Hash, class KeyEqual>
void sync_map<Key, T, Hash, KeyEqual>::promote_locked(trash_list& trash) {
    if (!dirty_valid_) return;
    install_table_locked(build_table_locked({}, trash), trash);
}

template <class Key, class T, class Hash, class KeyEqual>
auto sync_map<Key, T, Hash, KeyEqual>::build_table_locked(const std::vector<entry*>& more,
                                                          trash_list& trash) const -> built_table {
    // The next read table holds dirty_ (invariant 4) and `more`, its slots at most half full.
    const std::size_t count = dirty_.size() + more.size();
    unsigned bits = 1;
    while ((std::size_t{1} << bits) * group_width < count * 2)
        ++bits;
    auto groups = std::make_unique<group[]>(std::size_t{1} << bits);
    const std::size_t mask = (std::size_t{1} << bits) - 1;
    auto place = [&](entry* e) {
        std::size_t i = index_of(e->hash, 64 - bits);
        while (groups[i].e[group_width - 1] != nullptr)
            i = (i + 1) & mask;
        int k = 0;
        while (groups[i].e[k] != nullptr)
            ++k;
        groups[i].tags |= tag_of(e->hash) << (8 * k);
        groups[i].e[k] = e;
    };
    for (entry* e : dirty_)
        place(e);
    for (entry* e : more)
        place(e);
    auto next = std::make_unique<header>(header{groups.get(), 64 - bits, count, nullptr});

    std::size_t expunged = 0;
    for_each_in_table(current_locked(), [&](entry* e) {
        // Relaxed: only mu_ holders enter or leave expunged() (invariant 3), so it is exact.
        expunged += e->p.load(std::memory_order_relaxed) == expunged_word() ? 1 : 0;
        return true;
    });
    reserve_publish(trash, expunged + 2);  // and the old groups and overlay
    return {std::move(groups), std::move(next)};
}

template <class Key, class T, class Hash, class KeyEqual>
void sync_map<Key, T, Hash, KeyEqual>::install_table_locked(built_table t,
                                                            trash_list& trash) noexcept {
    const header* h = current_locked();
    // Expunged entries of the old table are in no other structure: retire them with it.
    for_each_in_table(h, [&](entry* e) {
        // Relaxed: as in build_table_locked().
        if (e->p.load(std::memory_order_relaxed) == expunged_word()) {
            trash.push_back({e, &delete_entry, sizeof(entry)});
        }
        return true;
    });
    if (owned_groups_ != nullptr) {
        trash.push_back({const_cast<group*>(owned_groups_), &delete_groups, group_bytes(h)});
    }
    if (h->added != nullptr) trash.push_back({h->added, &delete_overlay, overlay_bytes(h->added)});
    owned_groups_ = t.groups.release();
    publish_locked(t.h.release(), trash);

    dirty_.clear();
    dirty_valid_ = false;
    dirty_size_.store(0, std::memory_order_relaxed);    // as in add_locked()
    overlay_hits_.store(0, std::memory_order_relaxed);  // as in note_overlay_hit()
}

template <class Key, class T, class Hash, class KeyEqual>
void sync_map<Key, T, Hash, KeyEqual>::promote() {
    trash_list trash;
    {
        auto guard = lock();
        if (current_locked()->added != nullptr) promote_locked(trash);
    }
    retire_all(trash);
}

template <class Key, class T, class Hash, class KeyEqual>
template <detail::key_value_range<Key, T, Hash, KeyEqual> R>
void sync_map<Key, T, Hash, KeyEqual>::store_all(R&& items) {
    // Entries of keys new to the map, owned here until they are published.
    struct unpublished {
        std::vector<entry*> entries;
        unpublished() = default;
        unpublished(const unpublished&) = delete;
        unpublished& operator=(const unpublished&) = delete;
        ~unpublished() {
            for (entry* e : entries)
                delete_entry(e);
        }
    } fresh;
    std::vector<std::pair<entry*, staged_value>> present;  // new values of present keys
    std::vector<replaced> unlinked_values;
    trash_list trash;
    {
        auto guard = lock();
        detail::epoch::guard pin;  // as in swap_in()
        const header* h = current_locked();

        // Everything that can fail comes first (the map is as it was if it throws),
        // except rebuilding the dirty list and reviving expunged entries, which change no
        // key's value.
        // `seen` finds a new key given twice: open addressing over `fresh`, 0 for an
        // empty slot, else the entry's index + 1.
        std::vector<std::size_t> seen(16);
        unsigned seen_bits = 4;
        auto seen_slot = [&](std::size_t hash, const auto& key) -> std::size_t& {
            const std::size_t mask = seen.size() - 1;
            for (std::size_t i = index_of(hash, 64 - seen_bits);; i = (i + 1) & mask) {
                const std::size_t at = seen[i];
                if (at == 0) return seen[i];
                const entry* e = fresh.entries[at - 1];
                if (e->hash == hash && equal(e->key, key)) return seen[i];
            }
        };
        for (auto&& item : items) {
            const auto& key = std::get<0>(item);
            const std::size_t hash = hash_of(key);
            if (entry* e = find(h, hash, key)) {
                reserve_more(present, 1);
                present.emplace_back(e, stage(T(std::get<1>(std::as_const(item)))));
                continue;
            }
            if ((fresh.entries.size() + 1) * 2 > seen.size()) {
                ++seen_bits;
                seen.assign(std::size_t{1} << seen_bits, 0);
                for (std::size_t n = 0; n < fresh.entries.size(); ++n) {
                    const entry* e = fresh.entries[n];
                    seen_slot(e->hash, e->key) = n + 1;
                }
            }
            std::size_t& slot = seen_slot(hash, key);
            reserve_more(fresh.entries, 1);
            entry* e = new entry(hash, key, T(std::get<1>(std::as_const(item))));
            if (slot != 0) {
                delete_entry(std::exchange(fresh.entries[slot - 1], e));  // the later pair wins
            } else {
                fresh.entries.push_back(e);  // reserved above
                slot = fresh.entries.size();
            }
        }

        if (!fresh.entries.empty() && !dirty_valid_) dirty_locked();
        for (auto& p : present)
            unexpunge_locked(p.first);  // a stored value must be in dirty_ (invariant 3)
        unlinked_values.reserve(present.size());
        // New keys go into a new read table when adding them one by one would promote
        // (maybe_promote_locked's rule), else into the overlay.
        overlay* const o = h->added;
        const std::size_t pending = (o != nullptr ? o->count : 0) + fresh.entries.size();
        built_table rebuilt;
        std::unique_ptr<overlay> grown;
        std::unique_ptr<header> next;
        if (!fresh.entries.empty()) {
            if (pending * 2 > std::max<std::size_t>(h->count, 32)) {
                rebuilt = build_table_locked(fresh.entries, trash);
            } else {
                reserve_more(dirty_, fresh.entries.size());
                if (o == nullptr || pending * 2 > o->slots.size()) {
                    grown = grown_overlay_locked(o, fresh.entries.size());
                    next = std::make_unique<header>(
                        header{h->groups, h->shift, h->count, grown.get()});
                    reserve_publish(trash, 1);  // and the old overlay
                }
            }
        }

        [&]() noexcept {
            for (auto& [e, value] : present) {
                const word old =
                    e->p.exchange(value.w, std::memory_order_acq_rel);  // as in swap_in()
                (void)value.n.release();                                // published
                unlinked_values.push_back(unlinked(e, old));
            }
            if (fresh.entries.empty()) return;
            if (rebuilt.h != nullptr) {
                install_table_locked(std::move(rebuilt), trash);
            } else {
                overlay* const target = grown != nullptr ? grown.get() : o;
                // Relaxed into a new overlay: published by read_ below.
                const auto order =
                    grown != nullptr ? std::memory_order_relaxed : std::memory_order_release;
                for (entry* e : fresh.entries) {
                    put_in_overlay_locked(target, e, order);
                    dirty_.push_back(e);  // reserved above
                }
                dirty_size_.store(dirty_.size(), std::memory_order_relaxed);  // as in add_locked()
                if (grown != nullptr) {
                    if (o != nullptr) trash.push_back({o, &delete_overlay, overlay_bytes(o)});
                    (void)grown.release();  // owned by `next` from here
                    publish_locked(next.release(), trash);
                }
            }
            fresh.entries.clear();  // published
        }();
    }
    retire_all(trash);
    for (const replaced& r : unlinked_values)
        retire_unlinked(r);
}

template <class Key, class T, class Hash, class KeyEqual>
std::pair<T, bool> sync_map<Key, T, Hash, KeyEqual>::load_or_store(const Key& key, T value) {
    const std::size_t hash = hash_of(key);
    staged_value next;  // as in swap_in()
    bool is_staged = false;
    // Go's tryLoadOrStore on entry `e`: returns true when it settled the call, filling `out`.
    auto try_entry = [&](entry* e, std::optional<std::pair<T, bool>>& out) {
        word w = e->p.load(std::memory_order_acquire);  // as in load()
        for (;;) {
            if (w == expunged_word()) return false;
            if (w != null_word) {
                out.emplace(value_of(w), true);
                return true;
            }
            if (!is_staged) {
                next = stage(std::move(value));
                is_staged = true;
            }
            // Release publishes the new word (and node); on failure, acquire makes the
            // winner's node readable. Pairs with load()'s acquire, and with this CAS.
            if (e->p.compare_exchange_weak(w, next.w, std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
                out.emplace(value_of(next.w), false);
                (void)next.n.release();  // published
                return true;
            }
        }
    };

    std::optional<std::pair<T, bool>> out;
    bool in_overlay = false;
    {
        detail::epoch::guard pin;
        const header* h = read_.load(std::memory_order_acquire);  // as in load()
        if (entry* e = find(h, hash, key)) {
            if (try_entry(e, out)) {
                in_overlay =
                    !out->second && h->added != nullptr && find_in(h->added, hash, key, *this) == e;
            }
        }
    }
    if (!out) {
        trash_list trash;
        {
            auto guard = lock();
            detail::epoch::guard pin;
            if (entry* e = find(current_locked(), hash, key)) {
                unexpunge_locked(e);
                try_entry(e, out);  // cannot meet expunged() any more: mu_ is held
            } else {
                entry* added = add_locked(
                    key, hash, next.n != nullptr ? std::move(next.n->value) : std::move(value),
                    trash);
                // Relaxed: this thread stored the word, under the pin and mu_.
                out.emplace(value_of(added->p.load(std::memory_order_relaxed)), false);
            }
        }
        retire_all(trash);
    }
    if (in_overlay) note_overlay_hit();
    return std::move(*out);
}

template <class Key, class T, class Hash, class KeyEqual>
template <class K>
void sync_map<Key, T, Hash, KeyEqual>::remove(const K& key, std::optional<T>* previous) {
    const std::size_t hash = hash_of(key);
    replaced r;
    bool in_overlay = false;
    {
        detail::epoch::guard pin;
        const header* h = read_.load(std::memory_order_acquire);  // as in load()
        entry* e = find(h, hash, key);
        if (e == nullptr) return;  // absent from the read table and the overlay: nothing to do
        word w = e->p.load(std::memory_order_relaxed);  // as in swap_in(): the CAS re-reads
        while (holds_value(w)) {
            // acq_rel: acquire makes the old node readable for `previous`; release
            // orders the delete before the loads that see null (load()'s acquire).
            if (e->p.compare_exchange_weak(w, null_word, std::memory_order_acq_rel,
                                           std::memory_order_relaxed)) {
                if (previous != nullptr) *previous = value_of(w);
                r = unlinked(e, w);
                in_overlay = h->added != nullptr && find_in(h->added, hash, key, *this) == e;
                break;
            }
        }
    }
    retire_unlinked(r);
    if (in_overlay) note_overlay_hit();
}

template <class Key, class T, class Hash, class KeyEqual>
template <detail::lookup_key<Key, Hash, KeyEqual> K>
bool sync_map<Key, T, Hash, KeyEqual>::compare_exchange(const K& key, const T& expected,
                                                        T desired) {
    const std::size_t hash = hash_of(key);
    staged_value next;  // as in swap_in()
    bool is_staged = false;
    bool done = false;
    replaced r;
    {
        // The pin also rules out ABA on nodes: no node read here can be reused. An
        // inline word that comes back is the same value, so its CAS is still right.
        detail::epoch::guard pin;
        entry* e = find(read_.load(std::memory_order_acquire), hash, key);  // as in load()
        if (e == nullptr) return false;
        word w = e->p.load(std::memory_order_acquire);  // as in load(): the value is compared
        while (holds_value(w) && with_value(w, [&](const T& v) { return v == expected; })) {
            if (!is_staged) {
                next = stage(std::move(desired));
                is_staged = true;
            }
            // As in swap_in(); on failure, acquire makes the new node readable.
            if (e->p.compare_exchange_weak(w, next.w, std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
                r = unlinked(e, w);
                (void)next.n.release();  // published
                done = true;
                break;
            }
        }
    }
    retire_unlinked(r);
    return done;
}

template <class Key, class T, class Hash, class KeyEqual>
template <detail::lookup_key<Key, Hash, KeyEqual> K>
bool sync_map<Key, T, Hash, KeyEqual>::compare_erase(const K& key, const T& expected) {
    const std::size_t hash = hash_of(key);
    bool done = false;
    replaced r;
    {
        detail::epoch::guard pin;
        entry* e = find(read_.load(std::memory_order_acquire), hash, key);  // as in load()
        if (e == nullptr) return false;
        word w = e->p.load(std::memory_order_acquire);  // as in compare_exchange()
        while (holds_value(w) && with_value(w, [&](const T& v) { return v == expected; })) {
            if (e->p.compare_exchange_weak(w, null_word, std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
                r = unlinked(e, w);
                done = true;
                break;
            }
        }
    }
    retire_unlinked(r);
    return done;
}

template <class Key, class T, class Hash, class KeyEqual>
void sync_map<Key, T, Hash, KeyEqual>::clear() {
    {
        detail::epoch::guard pin;
        const header* h = read_.load(std::memory_order_acquire);  // as in load()
        if (h->count == 0 && h->added == nullptr) return;         // Go: nothing to clear
    }
    trash_list trash;
    {
        auto next = std::make_unique<header>();  // allocated before anything changes
        auto guard = lock();
        const header* h = current_locked();
        // Every entry is in the read table or the overlay (invariant 4); each is dropped once.
        for_each_in_table(h, [&](entry* e) {
            trash.push_back({e, &delete_entry, sizeof(entry)});
            return true;
        });
        if (h->added != nullptr) {
            for (auto& s : h->added->slots) {
                // Relaxed: overlay slots are written only by mu_ holders, as this thread is.
                if (entry* e = s.e.load(std::memory_order_relaxed)) {
                    trash.push_back({e, &delete_entry, sizeof(entry)});
                }
            }
            trash.push_back({h->added, &delete_overlay, overlay_bytes(h->added)});
        }
        if (owned_groups_ != nullptr) {
            trash.push_back({const_cast<group*>(owned_groups_), &delete_groups, group_bytes(h)});
        }
        reserve_publish(trash);
        owned_groups_ = nullptr;
        publish_locked(next.release(), trash);
        dirty_.clear();
        dirty_valid_ = false;
        dirty_size_.store(0, std::memory_order_relaxed);
        overlay_hits_.store(0, std::memory_order_relaxed);
    }
    retire_all(trash);
}

}  // namespace cfgreg
