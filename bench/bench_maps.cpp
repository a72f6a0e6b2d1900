// SPDX-License-Identifier: MIT
// cfgreg::sync_map beside its peers: same keys, workloads and threads, one binary.
//
// Names read "<workload>/<map>/<parameter>:<value>.../real_time/threads:<n>";
// scripts/bench_report.py parses them back. State shared by a run's threads (the
// map, its keys, each thread's access pattern, a background writer) is built by a
// Setup callback before the threads start, so that no timed loop pays for it, and
// every map answers the same key sequence.
//
// Throughput: Google Benchmark times each thread on its own clock and averages, which
// overstates the aggregate when threads take turns on fewer cores than threads (4
// threads on 2 cores, or a busy machine). Each benchmark therefore also reports
// `group_ops_per_s`: all threads' operations over the wall time from the last thread
// ready to the first thread done.

#include <benchmark/benchmark.h>

#include <absl/container/flat_hash_map.h>
#include <tbb/concurrent_hash_map.h>
#include <libcuckoo/cuckoohash_map.hh>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#if __has_include(<cfgreg/sync_map.hpp>)
#include <cfgreg/sync_map.hpp>
#define CFGREG_BENCH_SYNC_MAP 1
#else
#define CFGREG_BENCH_SYNC_MAP 0
#endif

namespace {

using value_t = std::int64_t;
using key_list = std::vector<std::string>;

// Each thread walks a precomputed ring of key indexes, so no random number is drawn
// inside a timed loop; at 64 Ki entries the ring is too long for any map to learn.
constexpr std::size_t ring_size = std::size_t{1} << 16;
constexpr std::size_t ring_mask = ring_size - 1;
constexpr int thread_counts[] = {1, 2, 4};  // one core, every core (2 here), oversubscribed
constexpr double zipf_exponent = 0.99;
constexpr std::uint64_t churn_window = 64;  // new keys a churning thread keeps alive at once

// ---- Keys and access patterns ----

/// Key number `i` of a set: `bytes` long (11 or 64), ending in seven digits. Present
/// and absent sets differ in their first letters, so an absent key never equals a
/// present one.
std::string make_key(std::size_t i, std::size_t bytes, bool absent) {
    static constexpr std::string_view filler =
        "services.frontend.http.upstream_pool.connection_limits.max_";
    static_assert(filler.size() >= 64 - 11);
    std::string key(absent ? "abs." : "srv.");
    key.append(filler.substr(0, bytes - 11));
    char digits[16];
    std::snprintf(digits, sizeof digits, "%07zu", i);
    key.append(digits);
    return key;
}

/// The key sets, each built once and shared by every benchmark that uses it. Called
/// only from Setup callbacks, which run one at a time.
const key_list& key_set(std::size_t count, std::size_t bytes, bool absent) {
    static std::map<std::tuple<std::size_t, std::size_t, bool>, key_list> cache;
    key_list& keys = cache[{count, bytes, absent}];
    if (keys.empty()) {
        keys.reserve(count);
        for (std::size_t i = 0; i < count; ++i)
            keys.push_back(make_key(i, bytes, absent));
    }
    return keys;
}

/// `ring_size` indexes below `count`: uniform, or Zipf over a fixed shuffle of the keys
/// so that the hot keys are not neighbours in the key list.
std::vector<std::uint32_t> access_ring(std::size_t count, bool zipf, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::uint32_t> ring(ring_size);
    if (!zipf) {
        std::uniform_int_distribution<std::uint32_t> pick(0, static_cast<std::uint32_t>(count - 1));
        for (auto& index : ring)
            index = pick(rng);
        return ring;
    }

    std::vector<double> cdf(count);
    double total = 0;
    for (std::size_t rank = 0; rank < count; ++rank) {
        total += 1.0 / std::pow(static_cast<double>(rank + 1), zipf_exponent);
        cdf[rank] = total;
    }
    std::vector<std::uint32_t> key_of_rank(count);
    std::iota(key_of_rank.begin(), key_of_rank.end(), 0u);
    std::shuffle(key_of_rank.begin(), key_of_rank.end(), std::mt19937_64(count));

    std::uniform_real_distribution<double> pick(0.0, total);
    for (auto& index : ring) {
        const auto rank = std::lower_bound(cdf.begin(), cdf.end(), pick(rng)) - cdf.begin();
        index = key_of_rank[std::min<std::size_t>(static_cast<std::size_t>(rank), count - 1)];
    }
    return ring;
}

/// `ring_size` flags, each 1 (write) with probability `write_pct` %.
std::vector<std::uint8_t> write_ring(std::int64_t write_pct, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::bernoulli_distribution is_write(static_cast<double>(write_pct) / 100.0);
    std::vector<std::uint8_t> ring(ring_size);
    for (auto& flag : ring)
        flag = is_write(rng) ? 1 : 0;
    return ring;
}

// ---- The maps, behind one interface ----
//
// fill() runs alone before a run; load(), store() and erase() run concurrently;
// replace_all() installs a whole new configuration the way that map does it best: one
// pointer swap where the design allows it, one store per key where it does not.

using flat_map = absl::flat_hash_map<std::string, value_t>;

flat_map make_flat(const key_list& keys, value_t first) {
    flat_map map;
    map.reserve(keys.size());
    for (const auto& key : keys)
        map.emplace(key, first++);
    return map;
}

/// Unsynchronized absl::flat_hash_map: the floor, what a lookup costs with no
/// synchronization at all. Measured only where nothing writes.
struct absl_flat_unsync {
    static constexpr const char* name = "absl_flat_unsync";
    static constexpr bool thread_safe = false;
    flat_map map;

    void fill(const key_list& keys) { map = make_flat(keys, 0); }
    bool load(const std::string& key, value_t& out) const {
        const auto it = map.find(key);
        if (it == map.end()) return false;
        out = it->second;
        return true;
    }
};

/// The floor for reads beside a writer: the unsynchronized absl::flat_hash_map whose
/// values are atomic words that the writer updates in place. Its shape never changes
/// after fill(), so only the words are shared: what remains of a reader's cost beside
/// a writer is the cache-line transfer that any shared-memory write costs. Measured
/// only by `read` and `read_with_writer` (stores into present keys).
struct absl_flat_atomic_values {
    static constexpr const char* name = "absl_flat_atomic_values";
    static constexpr bool thread_safe = false;  // for structural changes; see above
    struct cell {
        std::atomic<value_t> v;
        explicit cell(value_t x) : v(x) {}
        // Relaxed: copies happen in fill() only, before any thread reads.
        cell(const cell& o) : v(o.v.load(std::memory_order_relaxed)) {}
    };
    absl::flat_hash_map<std::string, cell> map;

    void fill(const key_list& keys) {
        map.reserve(keys.size());
        value_t value = 0;
        for (const auto& key : keys)
            map.emplace(key, cell(value++));
    }
    bool load(const std::string& key, value_t& out) const {
        const auto it = map.find(key);
        if (it == map.end()) return false;
        out = it->second.v.load(std::memory_order_acquire);  // pairs with store()'s release
        return true;
    }
    void store(const std::string& key, value_t value) {
        // Release, as sync_map's store: the same ordering promise, in place.
        map.find(key)->second.v.store(value, std::memory_order_release);
    }
};

/// absl::flat_hash_map behind a std::shared_mutex: readers take it shared.
struct shared_mutex_absl_flat {
    static constexpr const char* name = "shared_mutex_absl_flat";
    static constexpr bool thread_safe = true;
    mutable std::shared_mutex mu;
    flat_map map;  // guarded by mu

    void fill(const key_list& keys) { map = make_flat(keys, 0); }
    bool load(const std::string& key, value_t& out) const {
        std::shared_lock lock(mu);
        const auto it = map.find(key);
        if (it == map.end()) return false;
        out = it->second;
        return true;
    }
    void store(const std::string& key, value_t value) {
        std::unique_lock lock(mu);
        map.insert_or_assign(key, value);
    }
    void erase(const std::string& key) {
        std::unique_lock lock(mu);
        map.erase(key);
    }
    void replace_all(const key_list& keys, value_t first) {
        flat_map next = make_flat(keys, first);
        std::unique_lock lock(mu);
        map.swap(next);
        lock.unlock();  // the old map dies with `next`, outside the lock
    }
};

/// std::unordered_map behind a std::mutex: the textbook answer.
struct mutex_unordered_map {
    static constexpr const char* name = "mutex_std_unordered";
    static constexpr bool thread_safe = true;
    using map_type = std::unordered_map<std::string, value_t>;
    mutable std::mutex mu;
    map_type map;  // guarded by mu

    static map_type make(const key_list& keys, value_t first) {
        map_type next;
        next.reserve(keys.size());
        for (const auto& key : keys)
            next.emplace(key, first++);
        return next;
    }
    void fill(const key_list& keys) { map = make(keys, 0); }
    bool load(const std::string& key, value_t& out) const {
        std::lock_guard lock(mu);
        const auto it = map.find(key);
        if (it == map.end()) return false;
        out = it->second;
        return true;
    }
    void store(const std::string& key, value_t value) {
        std::lock_guard lock(mu);
        map.insert_or_assign(key, value);
    }
    void erase(const std::string& key) {
        std::lock_guard lock(mu);
        map.erase(key);
    }
    void replace_all(const key_list& keys, value_t first) {
        map_type next = make(keys, first);
        std::unique_lock lock(mu);
        map.swap(next);
        lock.unlock();  // the old map dies with `next`, outside the lock
    }
};

/// Copy-on-write: readers load a std::atomic<std::shared_ptr<const map>>; a writer
/// copies the whole map under a writers' mutex and publishes the copy. libstdc++
/// guards that atomic with a spin lock in the pointer's low bit, taken by loads too.
struct cow_atomic_shared_ptr {
    static constexpr const char* name = "cow_atomic_shared_ptr";
    static constexpr bool thread_safe = true;
    std::atomic<std::shared_ptr<const flat_map>> current{std::make_shared<const flat_map>()};
    std::mutex write_mu;  // serializes copy-and-publish

    void fill(const key_list& keys) {
        // Release pairs with the readers' acquire load, as every store below does.
        current.store(std::make_shared<const flat_map>(make_flat(keys, 0)),
                      std::memory_order_release);
    }
    bool load(const std::string& key, value_t& out) const {
        const auto snapshot = current.load(std::memory_order_acquire);  // pairs with store()s
        const auto it = snapshot->find(key);
        if (it == snapshot->end()) return false;
        out = it->second;
        return true;  // the last reader to drop an old snapshot frees it, here
    }
    template <class Edit>
    void write(Edit&& edit) {
        std::lock_guard lock(write_mu);
        // Relaxed: write_mu orders this writer after the last one to store.
        auto next = std::make_shared<flat_map>(*current.load(std::memory_order_relaxed));
        edit(*next);
        current.store(std::move(next), std::memory_order_release);  // pairs with load()
    }
    void store(const std::string& key, value_t value) {
        write([&](flat_map& map) { map.insert_or_assign(key, value); });
    }
    void erase(const std::string& key) {
        write([&](flat_map& map) { map.erase(key); });
    }
    void replace_all(const key_list& keys, value_t first) {
        auto next = std::make_shared<const flat_map>(make_flat(keys, first));
        std::lock_guard lock(write_mu);
        current.store(std::move(next), std::memory_order_release);  // pairs with load()
    }
};

/// oneTBB concurrent_hash_map: a reader holds its bucket's lock through an accessor.
struct tbb_concurrent_hash_map {
    static constexpr const char* name = "tbb_concurrent_hash_map";
    static constexpr bool thread_safe = true;
    using map_type = tbb::concurrent_hash_map<std::string, value_t>;
    map_type map;

    void fill(const key_list& keys) {
        value_t value = 0;
        for (const auto& key : keys)
            map.insert({key, value++});
    }
    bool load(const std::string& key, value_t& out) const {
        map_type::const_accessor found;
        if (!map.find(found, key)) return false;
        out = found->second;
        return true;
    }
    void store(const std::string& key, value_t value) {
        map_type::accessor slot;
        map.insert(slot, key);
        slot->second = value;
    }
    void erase(const std::string& key) { map.erase(key); }
    void replace_all(const key_list& keys, value_t first) {
        for (const auto& key : keys)
            store(key, first++);
    }
};

/// libcuckoo cuckoohash_map: a reader takes the spin locks of the key's two buckets.
struct libcuckoo_map {
    static constexpr const char* name = "libcuckoo";
    static constexpr bool thread_safe = true;
    libcuckoo::cuckoohash_map<std::string, value_t> map;

    void fill(const key_list& keys) {
        map.reserve(keys.size());
        value_t value = 0;
        for (const auto& key : keys)
            map.insert(key, value++);
    }
    bool load(const std::string& key, value_t& out) const { return map.find(key, out); }
    void store(const std::string& key, value_t value) { map.insert_or_assign(key, value); }
    void erase(const std::string& key) { map.erase(key); }
    void replace_all(const key_list& keys, value_t first) {
        for (const auto& key : keys)
            map.insert_or_assign(key, first++);
    }
};

#if CFGREG_BENCH_SYNC_MAP
/// cfgreg::sync_map: lock-free reads; an existing key's store is one atomic exchange.
struct cfgreg_sync_map {
    static constexpr const char* name = "cfgreg_sync_map";
    static constexpr bool thread_safe = true;
    cfgreg::sync_map<std::string, value_t> map;

    void fill(const key_list& keys) {
        value_t value = 0;
        for (const auto& key : keys)
            map.store(key, value++);
        // A loaded configuration is read for a long time: measure the steady state,
        // with every key in the read map, as a registry leaves it after loading.
        map.promote();
    }
    bool load(const std::string& key, value_t& out) const {
        const auto found = map.load(key);
        if (!found) return false;
        out = *found;
        return true;
    }
    void store(const std::string& key, value_t value) { map.store(key, value); }
    void erase(const std::string& key) { map.erase(key); }
    void replace_all(const key_list& keys, value_t first) {
        for (const auto& key : keys)
            map.store(key, first++);
    }
};
#endif

// ---- Workloads ----

enum class workload {
    read,              // 100 % reads of present keys
    read_absent,       // 100 % reads of absent keys
    mix,               // reads and stores over present keys, write_pct % stores
    read_with_writer,  // reads while one more thread stores into the same keys nonstop
    read_with_reload,  // reads while the whole configuration is replaced every 10 ms
    write_disjoint,    // every thread stores into its own share of the keys
    churn,             // every thread inserts new keys and erases them again
};

/// The wall time of a thread group, from the last thread ready to the first thread
/// done, and the group's throughput over it. Each thread writes only its own slots.
struct group_clock {
    std::vector<std::chrono::steady_clock::time_point> ready, done;
    std::vector<std::int64_t> operations;
    std::atomic<std::size_t> finished{0};

    /// Called by the Setup callback, before the threads start.
    void reset(std::size_t threads) {
        ready.assign(threads, {});
        done.assign(threads, {});
        operations.assign(threads, 0);
        finished.store(0, std::memory_order_relaxed);  // the threads start after Setup returns
    }

    /// Called by each thread just before its timed loop.
    void start(const benchmark::State& state) {
        ready[static_cast<std::size_t>(state.thread_index())] = std::chrono::steady_clock::now();
    }

    /// Called by each thread after its timed loop, which all threads leave together;
    /// the last thread here reports the group's throughput.
    void finish(benchmark::State& state) {
        const auto thread = static_cast<std::size_t>(state.thread_index());
        done[thread] = std::chrono::steady_clock::now();
        operations[thread] = state.iterations();
        state.SetItemsProcessed(state.iterations());

        // acq_rel publishes this thread's slots; the last thread's acquire sees them
        // all, since the increments form one release sequence.
        if (finished.fetch_add(1, std::memory_order_acq_rel) + 1 != ready.size()) return;

        const auto first_done = *std::min_element(done.begin(), done.end());
        const auto last_ready = *std::max_element(ready.begin(), ready.end());
        const double seconds = std::chrono::duration<double>(first_done - last_ready).count();
        const auto total = std::accumulate(operations.begin(), operations.end(), std::int64_t{0});
        state.counters["group_ops_per_s"] = static_cast<double>(total) / seconds;
    }
};

/// Everything a run's threads share: built by setup(), freed by teardown().
struct run_base {
    virtual ~run_base() = default;
};
std::unique_ptr<run_base> current_run;  // Google Benchmark runs one benchmark at a time

template <class Map>
struct run_state : run_base {
    Map map;
    const key_list* keys = nullptr;                 // the keys in the map
    const key_list* probes = nullptr;               // the keys read: `keys`, or absent ones
    std::vector<std::vector<std::uint32_t>> rings;  // per thread, indexes into probes
    std::vector<std::vector<std::uint8_t>> writes;  // per thread, 1 = store (mix only)
    std::atomic<bool> stop{false};
    std::thread background;  // the writer or the reloader, if the workload has one

    group_clock clock;

    ~run_state() override {
        // Relaxed: the loop only has to see it eventually; join() orders the rest.
        stop.store(true, std::memory_order_relaxed);
        if (background.joinable()) background.join();
    }
};

template <class Map>
run_state<Map>& this_run() {
    return static_cast<run_state<Map>&>(*current_run);
}

/// One thread storing into the readers' keys as fast as it can.
template <class Map>
void writer_loop(run_state<Map>& run) {
    const auto ring = access_ring(run.keys->size(), false, 7);
    for (std::size_t i = 0; !run.stop.load(std::memory_order_relaxed); ++i) {
        run.map.store((*run.keys)[ring[i & ring_mask]], static_cast<value_t>(i));
    }
}

/// One thread installing a whole new configuration every 10 ms.
template <class Map>
void reload_loop(run_state<Map>& run) {
    auto next = std::chrono::steady_clock::now();
    for (value_t generation = 1; !run.stop.load(std::memory_order_relaxed); ++generation) {
        next += std::chrono::milliseconds(10);
        std::this_thread::sleep_until(next);
        run.map.replace_all(*run.keys, generation * 1'000'000);
    }
}

/// Setup callback: arguments are keys, key_bytes, zipf and, for mix, write_pct.
template <class Map, workload W>
void setup(const benchmark::State& state) {
    auto run = std::make_unique<run_state<Map>>();
    const auto count = static_cast<std::size_t>(state.range(0));
    const auto bytes = static_cast<std::size_t>(state.range(1));
    const bool zipf = state.range(2) != 0;
    const auto threads = static_cast<std::size_t>(state.threads());

    run->keys = &key_set(count, bytes, false);
    run->probes = W == workload::read_absent ? &key_set(count, bytes, true) : run->keys;
    run->map.fill(*run->keys);
    run->clock.reset(threads);
    for (std::size_t t = 0; t < threads; ++t) {
        if constexpr (W == workload::write_disjoint) {
            // Thread t owns the keys whose index is t modulo the thread count.
            auto ring = access_ring(count / threads, zipf, 1000 + t);
            for (auto& index : ring)
                index = static_cast<std::uint32_t>(index * threads + t);
            run->rings.push_back(std::move(ring));
        } else {
            run->rings.push_back(access_ring(count, zipf, 1000 + t));
        }
        if constexpr (W == workload::mix)
            run->writes.push_back(write_ring(state.range(3), 2000 + t));
    }

    run_state<Map>* shared = run.get();
    if constexpr (W == workload::read_with_writer) {
        run->background = std::thread([shared] { writer_loop(*shared); });
    } else if constexpr (W == workload::read_with_reload) {
        run->background = std::thread([shared] { reload_loop(*shared); });
    }
    current_run = std::move(run);
}

void teardown(const benchmark::State&) {
    current_run.reset();
}

/// Reads along the thread's ring: hits, misses, or hits beside a background writer.
template <class Map>
void bm_read(benchmark::State& state) {
    auto& run = this_run<Map>();
    const key_list& probes = *run.probes;
    const auto& ring = run.rings[static_cast<std::size_t>(state.thread_index())];
    std::size_t i = 0;
    value_t sum = 0;
    run.clock.start(state);
    for (auto _ : state) {
        value_t value = 0;
        if (run.map.load(probes[ring[i++ & ring_mask]], value)) sum += value;
    }
    run.clock.finish(state);
    benchmark::DoNotOptimize(sum);
}

/// Reads and stores of present keys; the write ring says which.
template <class Map>
void bm_mix(benchmark::State& state) {
    auto& run = this_run<Map>();
    const key_list& keys = *run.keys;
    const auto thread = static_cast<std::size_t>(state.thread_index());
    const auto& ring = run.rings[thread];
    const auto& writes = run.writes[thread];
    std::size_t i = 0;
    value_t sum = 0;
    run.clock.start(state);
    for (auto _ : state) {
        const std::string& key = keys[ring[i & ring_mask]];
        value_t value = 0;
        if (writes[i & ring_mask] != 0) {
            run.map.store(key, static_cast<value_t>(i));
        } else if (run.map.load(key, value)) {
            sum += value;
        }
        ++i;
    }
    run.clock.finish(state);
    benchmark::DoNotOptimize(sum);
}

/// Stores of present keys, each thread into its own share.
template <class Map>
void bm_write(benchmark::State& state) {
    auto& run = this_run<Map>();
    const key_list& keys = *run.keys;
    const auto& ring = run.rings[static_cast<std::size_t>(state.thread_index())];
    std::size_t i = 0;
    run.clock.start(state);
    for (auto _ : state) {
        run.map.store(keys[ring[i & ring_mask]], static_cast<value_t>(i));
        ++i;
    }
    run.clock.finish(state);
}

/// Writes `n` as the last twelve digits of a churn key "c<thread>.<12 digits>" (15
/// bytes, so every map stores it inline in std::string's small buffer).
void set_churn_number(std::string& key, std::uint64_t n) {
    for (std::size_t pos = key.size(); pos-- > 3;) {
        key[pos] = static_cast<char>('0' + n % 10);
        n /= 10;
    }
}

/// Each iteration inserts a key never seen before and erases the one inserted
/// `churn_window` iterations earlier, beside the map's resident keys.
template <class Map>
void bm_churn(benchmark::State& state) {
    auto& run = this_run<Map>();
    std::string fresh = "c?.000000000000";
    fresh[1] = static_cast<char>('a' + state.thread_index());
    std::string old = fresh;
    std::uint64_t n = 0;
    run.clock.start(state);
    for (auto _ : state) {
        set_churn_number(fresh, n);
        run.map.store(fresh, static_cast<value_t>(n));
        if (n >= churn_window) {
            set_churn_number(old, n - churn_window);
            run.map.erase(old);
        }
        ++n;
    }
    run.clock.finish(state);
}

/// The floor for typed handles: an atomic load of a value nobody writes meanwhile.
std::atomic<value_t> typed_value{42};
group_clock atomic_clock;

void setup_atomic(const benchmark::State& state) {
    atomic_clock.reset(static_cast<std::size_t>(state.threads()));
}

void bm_atomic_load(benchmark::State& state) {
    value_t sum = 0;
    atomic_clock.start(state);
    for (auto _ : state) {
        sum += typed_value.load(std::memory_order_acquire);  // nothing stores during the run
    }
    atomic_clock.finish(state);
    benchmark::DoNotOptimize(sum);
}

// ---- Registration ----

using arg_list = std::vector<std::vector<std::int64_t>>;

template <class Map, workload W>
void add(const std::string& workload_name, void (*body)(benchmark::State&), const arg_list& args) {
    auto* bench = benchmark::RegisterBenchmark((workload_name + "/" + Map::name).c_str(), body);
    if (W == workload::mix) {
        bench->ArgNames({"keys", "key_bytes", "zipf", "write_pct"});
    } else {
        bench->ArgNames({"keys", "key_bytes", "zipf"});
    }
    for (const auto& a : args)
        bench->Args(a);
    for (const int threads : thread_counts)
        bench->Threads(threads);
    bench->UseRealTime()->Setup(setup<Map, W>)->Teardown(teardown);
}

template <class Map>
void register_map() {
    arg_list reads;
    for (const std::int64_t keys : {10, 1000, 100000}) {
        for (const std::int64_t bytes : {11, 64}) {
            for (const std::int64_t zipf : {0, 1})
                reads.push_back({keys, bytes, zipf});
        }
    }
    add<Map, workload::read>("read", bm_read<Map>, reads);
    add<Map, workload::read_absent>("read_absent", bm_read<Map>, {{1000, 11, 0}, {100000, 11, 0}});

    if constexpr (Map::thread_safe) {
        arg_list mixes;
        for (const std::int64_t zipf : {0, 1}) {
            for (const std::int64_t pct : {1, 10, 50})
                mixes.push_back({1000, 11, zipf, pct});
        }
        add<Map, workload::mix>("mix", bm_mix<Map>, mixes);
        add<Map, workload::read_with_writer>("read_with_writer", bm_read<Map>, {{1000, 11, 0}});
        add<Map, workload::read_with_reload>("read_with_reload", bm_read<Map>,
                                             {{1000, 11, 0}, {100000, 11, 0}});
        add<Map, workload::write_disjoint>("write_disjoint", bm_write<Map>, {{1000, 11, 0}});
        add<Map, workload::churn>("churn", bm_churn<Map>, {{1000, 11, 0}, {100000, 11, 0}});
    }
}

void register_all() {
    register_map<absl_flat_unsync>();
    add<absl_flat_atomic_values, workload::read>("read", bm_read<absl_flat_atomic_values>,
                                                 {{1000, 11, 0}});
    add<absl_flat_atomic_values, workload::read_with_writer>(
        "read_with_writer", bm_read<absl_flat_atomic_values>, {{1000, 11, 0}});
    register_map<shared_mutex_absl_flat>();
    register_map<mutex_unordered_map>();
    register_map<cow_atomic_shared_ptr>();
    register_map<tbb_concurrent_hash_map>();
    register_map<libcuckoo_map>();
#if CFGREG_BENCH_SYNC_MAP
    register_map<cfgreg_sync_map>();
#endif
    auto* atomic_bench = benchmark::RegisterBenchmark("typed/atomic_int64_load", bm_atomic_load);
    for (const int threads : thread_counts)
        atomic_bench->Threads(threads);
    atomic_bench->UseRealTime()->Setup(setup_atomic);
}

}  // namespace

int main(int argc, char** argv) {
    // Keep the suite to minutes: 50 ms per run unless the command line says more.
    std::vector<char*> args(argv, argv + argc);
    std::string default_min_time = "--benchmark_min_time=0.05";
    const bool has_min_time = std::any_of(args.begin() + 1, args.end(), [](const char* arg) {
        return std::string_view(arg).starts_with("--benchmark_min_time");
    });
    if (!has_min_time) args.insert(args.begin() + 1, default_min_time.data());
    int count = static_cast<int>(args.size());
    args.push_back(nullptr);

    benchmark::Initialize(&count, args.data());
    if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
#if defined(__clang__)
    benchmark::AddCustomContext("compiler", "clang " __clang_version__);
#else
    benchmark::AddCustomContext("compiler", "g++ " __VERSION__);
#endif
    benchmark::AddCustomContext("cfgreg_sync_map",
                                CFGREG_BENCH_SYNC_MAP ? "measured" : "not built: header missing");
    register_all();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
