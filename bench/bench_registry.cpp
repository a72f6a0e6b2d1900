// SPDX-License-Identifier: MIT
// cfgreg::registry beside its floors: typed reads, handles, snapshots, loading, memory, reload.
//
// Names read "<workload>/<implementation>/<parameter>:<value>..." as in bench_maps.cpp, and
// every benchmark reports `group_ops_per_s` the same way, so scripts/bench_report.py reads both
// binaries with one parser. Each registry figure stands beside the figure it is judged against,
// measured in this binary, in this run, on the same keys or the same bytes:
//
//   registry_get/{cfgreg_registry,absl_flat_unsync}    get<std::int64_t> by key vs the floor
//   registry_get/sync_map_value_visit                  the registry's map alone, to attribute
//   registry_get_absent/{cfgreg_registry,absl_flat_unsync}   get_or of keys with no value
//   setting_get/{cfgreg_setting_int64,...,atomic_int64_load}   typed handles vs an atomic load
//   snapshot, snapshot_iterate/cfgreg_registry         taking a snapshot, and walking it
//   load/{cfgreg_load_string,cfgreg_load_file,toml_parse}/file:<f>   a real file, per load
//   memory/{cfgreg_registry,toml_table}/file:<f>       heap bytes per leaf (counters)
//   reload_latency/cfgreg_watch                        file renamed -> subscriber, counters in us
//   registry_read_with_reload/cfgreg_registry          get<> while the config is replaced / 10 ms
//
// Heap bytes come from the replacement operator new/delete at the bottom of this file: every
// allocation carries a 16-byte tag saying whether it was made inside a measuring window, so a
// free inside the window of an object made before it (an epoch bag emptying, say) is not
// subtracted. A request of n bytes counts as the chunk glibc would give it without the tag.

#include <benchmark/benchmark.h>

#include <absl/container/flat_hash_map.h>
#include <toml++/toml.h>

#include <cfgreg/registry.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using value_t = std::int64_t;
using key_list = std::vector<std::string>;

constexpr std::size_t ring_size = std::size_t{1} << 16;  // as in bench_maps.cpp
constexpr std::size_t ring_mask = ring_size - 1;
constexpr std::size_t headline_keys = 1000;
constexpr auto reload_period = 10ms;
constexpr auto watch_debounce = 5ms;
constexpr int reload_samples = 40;  // file saves per repetition of reload_latency

// ---- Heap accounting (the operators are defined after this namespace) ----

struct heap_counters {
    std::atomic<bool> measuring{false};
    std::atomic<std::int64_t> chunk_bytes{0};  // glibc chunk sizes of live tagged requests
    std::atomic<std::int64_t> requested{0};    // requested sizes of the same
};
constinit heap_counters heap;

/// Bytes on the heap made by the enclosed code and still alive at the end of the window.
class heap_window {
  public:
    heap_window() {
        heap.chunk_bytes.store(0, std::memory_order_relaxed);  // one thread measures at a time
        heap.requested.store(0, std::memory_order_relaxed);
        heap.measuring.store(true, std::memory_order_relaxed);
    }
    ~heap_window() { heap.measuring.store(false, std::memory_order_relaxed); }
    std::int64_t chunk_bytes() const { return heap.chunk_bytes.load(std::memory_order_relaxed); }
    std::int64_t requested() const { return heap.requested.load(std::memory_order_relaxed); }
};

// ---- Keys, documents and access sequence ----

/// Key `i`: "srv.0000042", 11 bytes, as bench_maps.cpp's 11-byte keys and canonical as written.
/// With `absent`, "srv.a000042": the same shape under the same table, held by no document.
std::string make_key(std::size_t i, bool absent = false) {
    char text[32];
    if (absent)
        std::snprintf(text, sizeof text, "srv.a%06zu", i);
    else
        std::snprintf(text, sizeof text, "srv.%07zu", i);
    return text;
}

/// The headline keys, or as many absent ones.
const key_list& headline_key_list(bool absent = false) {
    static const auto make = [](bool a) {
        key_list out;
        for (std::size_t i = 0; i < headline_keys; ++i)
            out.push_back(make_key(i, a));
        return out;
    };
    static const key_list present = make(false);
    static const key_list missing = make(true);
    return absent ? missing : present;
}

/// A TOML document holding the first `count` keys under `[srv]`, key i with value base + i.
std::string make_document(std::size_t count, value_t base) {
    std::string doc = "[srv]\n";
    for (std::size_t i = 0; i < count; ++i)
        doc +=
            make_key(i).substr(4) + " = " + std::to_string(base + static_cast<value_t>(i)) + "\n";
    return doc;
}

/// The pre-shuffled access sequence every reader follows: uniform indexes, fixed seed.
const std::vector<std::uint32_t>& access_ring() {
    static const std::vector<std::uint32_t> ring = [] {
        std::mt19937_64 rng(1000);  // the seed of bench_maps.cpp's first thread
        std::uniform_int_distribution<std::uint32_t> pick(0, headline_keys - 1);
        std::vector<std::uint32_t> out(ring_size);
        for (auto& index : out)
            index = pick(rng);
        return out;
    }();
    return ring;
}

// ---- The real files ----

struct corpus_file {
    std::string name;  // file stem: the `file:` parameter
    fs::path path;
    std::string bytes;
};

const std::vector<corpus_file>& corpus() {
    static const std::vector<corpus_file> files = [] {
        std::vector<corpus_file> out;
        const fs::path dir = fs::path(CFGREG_CORPUS_DIR) / "real";
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(dir, ec)) {
            if (!entry.is_regular_file()) continue;
            std::ifstream in(entry.path(), std::ios::binary);
            std::ostringstream text;
            text << in.rdbuf();
            out.push_back({entry.path().stem().string(), entry.path(), text.str()});
        }
        std::sort(out.begin(), out.end(),
                  [](const corpus_file& a, const corpus_file& b) { return a.name < b.name; });
        return out;
    }();
    return files;
}

// ---- Group wall time, as in bench_maps.cpp ----

/// From the last thread ready to the first thread done; reports `group_ops_per_s`.
struct group_clock {
    std::vector<std::chrono::steady_clock::time_point> ready, done;
    std::vector<std::int64_t> operations;
    std::atomic<std::size_t> finished{0};

    void reset(std::size_t threads) {
        ready.assign(threads, {});
        done.assign(threads, {});
        operations.assign(threads, 0);
        finished.store(0, std::memory_order_relaxed);  // the threads start after Setup returns
    }
    void start(const benchmark::State& state) {
        ready[static_cast<std::size_t>(state.thread_index())] = std::chrono::steady_clock::now();
    }
    void finish(benchmark::State& state, std::int64_t items_per_iteration = 1) {
        const auto thread = static_cast<std::size_t>(state.thread_index());
        done[thread] = std::chrono::steady_clock::now();
        operations[thread] = state.iterations();
        state.SetItemsProcessed(state.iterations() * items_per_iteration);

        // acq_rel publishes this thread's slots to the last thread, as in bench_maps.cpp.
        if (finished.fetch_add(1, std::memory_order_acq_rel) + 1 != ready.size()) return;
        const auto first_done = *std::min_element(done.begin(), done.end());
        const auto last_ready = *std::max_element(ready.begin(), ready.end());
        const double seconds = std::chrono::duration<double>(first_done - last_ready).count();
        const auto total = std::accumulate(operations.begin(), operations.end(), std::int64_t{0});
        state.counters["group_ops_per_s"] = static_cast<double>(total) / seconds;
    }
};

// ---- Shared state of a run, built by Setup before the threads start ----

struct run_state {
    cfgreg::registry reg;
    absl::flat_hash_map<std::string, value_t> floor;
    cfgreg::sync_map<std::string, cfgreg::value> values;  // the registry's map, bare
    cfgreg::setting<value_t> int_handle;
    cfgreg::setting<std::string> string_handle;
    std::atomic<value_t> atomic_value{42};
    std::atomic<bool> stop{false};
    std::thread reloader;
    group_clock clock;

    run_state()
        : int_handle(reg.setting<value_t>(make_key(0), -1)),
          string_handle(reg.setting<std::string>("srv.name", "")) {}

    ~run_state() {
        // Relaxed: the loop only has to see it eventually; join() orders the rest.
        stop.store(true, std::memory_order_relaxed);
        if (reloader.joinable()) reloader.join();
    }
};
std::unique_ptr<run_state> current_run;  // Google Benchmark runs one benchmark at a time

/// Replaces the whole configuration every 10 ms, alternating two documents with other values.
void reload_loop(run_state& run) {
    const std::string docs[2] = {make_document(headline_keys, 1'000'000),
                                 make_document(headline_keys, 0)};
    auto next = std::chrono::steady_clock::now();
    for (std::size_t n = 0; !run.stop.load(std::memory_order_relaxed); ++n) {
        next += reload_period;
        std::this_thread::sleep_until(next);
        if (!run.reg.load_string(docs[n % 2], "bench.toml")) std::abort();
    }
}

template <bool Reload>
void setup(const benchmark::State& state) {
    auto run = std::make_unique<run_state>();
    const key_list& keys = headline_key_list();
    std::string doc = make_document(headline_keys, 0);
    doc += "name = \"db-primary.internal:5432\"\n";  // 28 bytes: beyond std::string's SSO
    if (!run->reg.load_string(doc, "bench.toml")) std::abort();
    run->floor.reserve(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
        run->floor.emplace(keys[i], static_cast<value_t>(i));
        run->values.store(keys[i], cfgreg::value(static_cast<value_t>(i)));
    }
    run->values.promote();  // as the registry leaves it after a load
    run->clock.reset(static_cast<std::size_t>(state.threads()));
    if constexpr (Reload) {
        run_state* shared = run.get();
        run->reloader = std::thread([shared] { reload_loop(*shared); });
    }
    current_run = std::move(run);
}

void teardown(const benchmark::State&) {
    current_run.reset();
}

// ---- Reads ----

/// registry::get<std::int64_t> along the shared access sequence; also with the reloader.
/// With `Absent`, get_or of keys that have no value: the fallback path.
template <bool Absent>
void bm_registry_get(benchmark::State& state) {
    auto& run = *current_run;
    const key_list& keys = headline_key_list(Absent);
    const auto& ring = access_ring();
    std::size_t i = 0;
    value_t sum = 0;
    run.clock.start(state);
    for (auto _ : state) {
        const std::string& key = keys[ring[i++ & ring_mask]];
        if constexpr (Absent) {
            sum += run.reg.get_or<value_t>(key, 1);
        } else if (auto v = run.reg.get<value_t>(key)) {
            sum += *v;
        }
    }
    run.clock.finish(state);
    benchmark::DoNotOptimize(sum);
}

/// The floor: the same keys, in the same order, from an unsynchronized flat_hash_map.
template <bool Absent>
void bm_floor_get(benchmark::State& state) {
    auto& run = *current_run;
    const key_list& keys = headline_key_list(Absent);
    const auto& ring = access_ring();
    std::size_t i = 0;
    value_t sum = 0;
    run.clock.start(state);
    for (auto _ : state) {
        const auto it = run.floor.find(keys[ring[i++ & ring_mask]]);
        if constexpr (Absent)
            sum += it != run.floor.end() ? it->second : 1;
        else if (it != run.floor.end())
            sum += it->second;
    }
    run.clock.finish(state);
    benchmark::DoNotOptimize(sum);
}

/// Where registry_get's cost goes: the same keys in a bare sync_map of cfgreg::value,
/// read in place through visit() as the registry's hit path does, without conversion.
void bm_sync_map_visit(benchmark::State& state) {
    auto& run = *current_run;
    const key_list& keys = headline_key_list();
    const auto& ring = access_ring();
    std::size_t i = 0;
    value_t sum = 0;
    run.clock.start(state);
    for (auto _ : state) {
        run.values.visit(keys[ring[i++ & ring_mask]], [&](const cfgreg::value& v) {
            if (const value_t* n = v.as_integer()) sum += *n;
        });
    }
    run.clock.finish(state);
    benchmark::DoNotOptimize(sum);
}

void bm_setting_int64(benchmark::State& state) {
    auto& run = *current_run;
    value_t sum = 0;
    run.clock.start(state);
    for (auto _ : state)
        sum += run.int_handle.get();
    run.clock.finish(state);
    benchmark::DoNotOptimize(sum);
}

void bm_setting_string(benchmark::State& state) {
    auto& run = *current_run;
    std::size_t sum = 0;
    run.clock.start(state);
    for (auto _ : state)
        sum += run.string_handle.get().size();
    run.clock.finish(state);
    benchmark::DoNotOptimize(sum);
}

/// The same handle read in place: no copy, no allocation.
void bm_setting_string_visit(benchmark::State& state) {
    auto& run = *current_run;
    std::size_t sum = 0;
    run.clock.start(state);
    for (auto _ : state)
        sum += run.string_handle.visit([](const std::string& s) { return s.size(); });
    run.clock.finish(state);
    benchmark::DoNotOptimize(sum);
}

/// The floor for typed handles, as typed/atomic_int64_load in bench_maps.cpp.
void bm_atomic_load(benchmark::State& state) {
    auto& run = *current_run;
    value_t sum = 0;
    run.clock.start(state);
    for (auto _ : state)
        sum += run.atomic_value.load(std::memory_order_acquire);  // nothing stores meanwhile
    run.clock.finish(state);
    benchmark::DoNotOptimize(sum);
}

void bm_snapshot(benchmark::State& state) {
    auto& run = *current_run;
    std::size_t sum = 0;
    run.clock.start(state);
    for (auto _ : state) {
        const cfgreg::snapshot s = run.reg.snapshot();
        sum += s.size();
    }
    run.clock.finish(state);
    benchmark::DoNotOptimize(sum);
}

/// A snapshot and a walk over every entry; items are entries, so items/s is per entry.
void bm_snapshot_iterate(benchmark::State& state) {
    auto& run = *current_run;
    value_t sum = 0;
    std::int64_t entries = 0;
    run.clock.start(state);
    for (auto _ : state) {
        const cfgreg::snapshot s = run.reg.snapshot();
        entries = static_cast<std::int64_t>(s.size());
        for (const cfgreg::snapshot_entry& e : s) {
            if (const value_t* v = e.val.as_integer()) sum += *v;
        }
    }
    run.clock.finish(state, entries);
    state.counters["entries"] = static_cast<double>(entries);
    benchmark::DoNotOptimize(sum);
}

// ---- Loading a real file ----
//
// Each iteration builds from the bytes in memory (or the file) and the result is destroyed
// with the timer paused, on both sides: the figure is what start-up pays.

group_clock load_clock;

void setup_load(const benchmark::State& state) {
    load_clock.reset(static_cast<std::size_t>(state.threads()));
}

void bm_load_string(benchmark::State& state, const corpus_file* file) {
    load_clock.start(state);
    for (auto _ : state) {
        auto reg = std::make_unique<cfgreg::registry>();
        if (!reg->load_string(file->bytes, file->path.string())) {
            state.SkipWithError("load_string failed");
            break;
        }
        state.PauseTiming();
        reg.reset();
        state.ResumeTiming();
    }
    load_clock.finish(state);
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(file->bytes.size()));
}

void bm_load_file(benchmark::State& state, const corpus_file* file) {
    load_clock.start(state);
    for (auto _ : state) {
        auto reg = std::make_unique<cfgreg::registry>();
        if (!reg->load_file(file->path)) {
            state.SkipWithError("load_file failed");
            break;
        }
        state.PauseTiming();
        reg.reset();
        state.ResumeTiming();
    }
    load_clock.finish(state);
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(file->bytes.size()));
}

void bm_toml_parse(benchmark::State& state, const corpus_file* file) {
    load_clock.start(state);
    for (auto _ : state) {
        auto table = std::make_unique<toml::table>(toml::parse(file->bytes, file->path.string()));
        state.PauseTiming();
        table.reset();
        state.ResumeTiming();
    }
    load_clock.finish(state);
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(file->bytes.size()));
}

// ---- Memory per leaf ----
//
// Both sides are divided by the registry's leaf count (scalars, empty arrays and empty
// tables: the entries of its snapshot), so their ratio is the ratio of their heap bytes.

std::size_t leaf_count(const corpus_file& file) {
    cfgreg::registry reg;
    if (!reg.load_string(file.bytes, file.path.string())) return 0;
    return reg.snapshot().size();
}

void report_memory(benchmark::State& state, std::int64_t chunk, std::int64_t requested,
                   std::size_t leaves) {
    const double n = static_cast<double>(std::max<std::size_t>(leaves, 1));
    state.counters["leaves"] = static_cast<double>(leaves);
    state.counters["heap_bytes"] = static_cast<double>(chunk);
    state.counters["bytes_per_leaf"] = static_cast<double>(chunk) / n;
    state.counters["requested_bytes_per_leaf"] = static_cast<double>(requested) / n;
}

void bm_memory_registry(benchmark::State& state, const corpus_file* file) {
    const std::size_t leaves = leaf_count(*file);
    std::int64_t chunk = 0, requested = 0;
    load_clock.start(state);
    for (auto _ : state) {
        std::unique_ptr<cfgreg::registry> reg;
        {
            heap_window window;
            reg = std::make_unique<cfgreg::registry>();
            if (!reg->load_string(file->bytes, file->path.string())) {
                state.SkipWithError("load_string failed");
                break;
            }
            chunk = window.chunk_bytes();
            requested = window.requested();
        }
    }
    load_clock.finish(state);
    report_memory(state, chunk, requested, leaves);
}

void bm_memory_toml(benchmark::State& state, const corpus_file* file) {
    const std::size_t leaves = leaf_count(*file);
    std::int64_t chunk = 0, requested = 0;
    load_clock.start(state);
    for (auto _ : state) {
        std::unique_ptr<toml::table> table;
        {
            heap_window window;
            table = std::make_unique<toml::table>(toml::parse(file->bytes, file->path.string()));
            chunk = window.chunk_bytes();
            requested = window.requested();
        }
    }
    load_clock.finish(state);
    report_memory(state, chunk, requested, leaves);
}

// ---- Reload latency ----

/// Saves a file the way most editors do: write a temporary beside it, rename it over.
void save_by_rename(const fs::path& file, const std::string& content) {
    const fs::path temporary = file.parent_path() / (file.filename().string() + ".tmp");
    {
        std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
        out << content;
    }
    fs::rename(temporary, file);
}

/// From the rename that saves a new version to the start of the batch subscriber's call,
/// minus the debounce. Manual time is that latency; counters give mean, median and p90 in us.
void bm_reload_latency(benchmark::State& state) {
    const auto keys = static_cast<std::size_t>(state.range(0));
    const fs::path dir = fs::temp_directory_path() / ("cfgreg-bench-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path file = dir / "reload.toml";
    save_by_rename(file, make_document(keys, 0));

    std::mutex mu;
    std::condition_variable called;
    std::uint64_t calls = 0;                     // guarded by mu
    std::chrono::steady_clock::time_point when;  // guarded by mu
    std::vector<double> latencies_us;
    cfgreg::watch_options options;
    options.debounce = watch_debounce;
    options.max_wait = 100ms;
    {
        cfgreg::registry reg;
        auto sub = reg.subscribe_batch([&](const cfgreg::change_batch&) {
            const auto now = std::chrono::steady_clock::now();
            std::lock_guard lock(mu);
            when = now;
            ++calls;
            called.notify_one();
        });
        auto watch = reg.watch(file, options);

        value_t version = 0;
        for (auto _ : state) {
            std::unique_lock lock(mu);
            const std::uint64_t expected = calls + 1;
            lock.unlock();
            save_by_rename(file, make_document(keys, ++version * 1'000'000));
            const auto saved = std::chrono::steady_clock::now();
            lock.lock();
            if (!called.wait_for(lock, 2s, [&] { return calls >= expected; })) {
                state.SkipWithError("no reload within 2 s");
                break;
            }
            const auto latency = std::chrono::duration<double>(when - saved - watch_debounce);
            state.SetIterationTime(std::max(latency.count(), 0.0));
            latencies_us.push_back(latency.count() * 1e6);
        }
    }
    fs::remove_all(dir);

    state.SetItemsProcessed(state.iterations());
    if (latencies_us.empty()) return;
    std::sort(latencies_us.begin(), latencies_us.end());
    const auto at = [&](double q) {
        return latencies_us[static_cast<std::size_t>(q *
                                                     static_cast<double>(latencies_us.size() - 1))];
    };
    state.counters["latency_mean_us"] =
        std::accumulate(latencies_us.begin(), latencies_us.end(), 0.0) /
        static_cast<double>(latencies_us.size());
    state.counters["latency_median_us"] = at(0.5);
    state.counters["latency_p90_us"] = at(0.9);
    // The settle window (two reads this far apart must agree) is the rest of the wait.
    state.counters["settle_us"] = std::chrono::duration<double, std::micro>(options.settle).count();
    state.counters["debounce_us"] =
        std::chrono::duration<double, std::micro>(watch_debounce).count();
}

// ---- Registration ----

void register_all() {
    const auto reads = [](const char* name, void (*body)(benchmark::State&), auto setup_fn) {
        return benchmark::RegisterBenchmark(name, body)
            ->ArgNames({"keys", "key_bytes"})
            ->Args({static_cast<std::int64_t>(headline_keys), 11})
            ->UseRealTime()
            ->Setup(setup_fn)
            ->Teardown(teardown);
    };
    reads("registry_get/cfgreg_registry", bm_registry_get<false>, setup<false>);
    reads("registry_get/absl_flat_unsync", bm_floor_get<false>, setup<false>);
    reads("registry_get/sync_map_value_visit", bm_sync_map_visit, setup<false>);
    reads("registry_get_absent/cfgreg_registry", bm_registry_get<true>, setup<false>);
    reads("registry_get_absent/absl_flat_unsync", bm_floor_get<true>, setup<false>);
    // Long enough to span 50 reloads; the reader's CPU time is set against registry_get's.
    reads("registry_read_with_reload/cfgreg_registry", bm_registry_get<false>, setup<true>)
        ->MinTime(0.5);

    for (const int threads : {1, 2}) {
        const auto plain = [&](const char* name, void (*body)(benchmark::State&)) {
            benchmark::RegisterBenchmark(name, body)
                ->Threads(threads)
                ->UseRealTime()
                ->Setup(setup<false>)
                ->Teardown(teardown);
        };
        plain("setting_get/atomic_int64_load", bm_atomic_load);
        plain("setting_get/cfgreg_setting_int64", bm_setting_int64);
        plain("setting_get/cfgreg_setting_string", bm_setting_string);
        plain("setting_get/cfgreg_setting_string_visit", bm_setting_string_visit);
        plain("snapshot/cfgreg_registry", bm_snapshot);
        plain("snapshot_iterate/cfgreg_registry", bm_snapshot_iterate);
    }

    for (const corpus_file& file : corpus()) {
        const std::string suffix = "/file:" + file.name;
        const auto per_file = [&](const std::string& name, auto body) {
            return benchmark::RegisterBenchmark((name + suffix).c_str(), body, &file)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime()
                ->Setup(setup_load);
        };
        per_file("load/toml_parse", bm_toml_parse);
        per_file("load/cfgreg_load_string", bm_load_string);
        per_file("load/cfgreg_load_file", bm_load_file);
        per_file("memory/toml_table", bm_memory_toml)->Iterations(1);
        per_file("memory/cfgreg_registry", bm_memory_registry)->Iterations(1);
    }

    benchmark::RegisterBenchmark("reload_latency/cfgreg_watch", bm_reload_latency)
        ->ArgNames({"keys"})
        ->Arg(10)
        ->Arg(static_cast<std::int64_t>(headline_keys))
        ->Iterations(reload_samples)
        ->Unit(benchmark::kMicrosecond)
        ->UseManualTime();
}

}  // namespace

// ---- Replacement operator new and delete: every allocation carries a 16-byte tag ----
//
// The tag sits just before the pointer handed out (for over-aligned requests, at the end of
// the alignment padding) and holds the request's size when it was made inside a heap_window,
// else zero. Array forms reach these through the standard library's defaults.

namespace {

constexpr std::size_t tag_bytes = 16;  // keeps malloc's 16-byte alignment

/// The chunk glibc's malloc gives a request of `n` bytes: n plus an 8-byte header, rounded
/// up to 16, at least 32.
std::int64_t glibc_chunk(std::size_t n) {
    return static_cast<std::int64_t>(std::max<std::size_t>(32, (n + 8 + 15) & ~std::size_t{15}));
}

void* tag(void* raw, std::size_t offset, std::size_t n) noexcept {
    auto* user = static_cast<unsigned char*>(raw) + offset;
    std::size_t recorded = 0;
    // Relaxed: the window opens and closes on the thread it measures.
    if (heap.measuring.load(std::memory_order_relaxed)) {
        recorded = n;
        heap.chunk_bytes.fetch_add(glibc_chunk(n), std::memory_order_relaxed);
        heap.requested.fetch_add(static_cast<std::int64_t>(n), std::memory_order_relaxed);
    }
    std::memcpy(user - tag_bytes, &recorded, sizeof recorded);
    return user;
}

void* untag(void* user, std::size_t offset) noexcept {
    auto* p = static_cast<unsigned char*>(user);
    std::size_t recorded = 0;
    std::memcpy(&recorded, p - tag_bytes, sizeof recorded);
    if (recorded != 0) {
        heap.chunk_bytes.fetch_sub(glibc_chunk(recorded), std::memory_order_relaxed);
        heap.requested.fetch_sub(static_cast<std::int64_t>(recorded), std::memory_order_relaxed);
    }
    return p - offset;
}

void* allocate(std::size_t n) noexcept {
    void* raw = std::malloc(n + tag_bytes);
    return raw == nullptr ? nullptr : tag(raw, tag_bytes, n);
}

void* allocate_aligned(std::size_t n, std::size_t align) noexcept {
    const std::size_t offset = std::max(align, tag_bytes);
    const std::size_t total = (n + offset + offset - 1) / offset * offset;
    void* raw = std::aligned_alloc(offset, total);
    return raw == nullptr ? nullptr : tag(raw, offset, n);
}

}  // namespace

void* operator new(std::size_t n) {
    if (void* p = allocate(n)) return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    return allocate(n);
}
void* operator new(std::size_t n, std::align_val_t align) {
    if (void* p = allocate_aligned(n, static_cast<std::size_t>(align))) return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t align, const std::nothrow_t&) noexcept {
    return allocate_aligned(n, static_cast<std::size_t>(align));
}
void operator delete(void* p) noexcept {
    if (p != nullptr) std::free(untag(p, tag_bytes));
}
void operator delete(void* p, std::size_t) noexcept {
    operator delete(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    operator delete(p);
}
void operator delete(void* p, std::align_val_t align) noexcept {
    if (p != nullptr) std::free(untag(p, std::max(static_cast<std::size_t>(align), tag_bytes)));
}
void operator delete(void* p, std::size_t, std::align_val_t align) noexcept {
    operator delete(p, align);
}
void operator delete(void* p, std::align_val_t align, const std::nothrow_t&) noexcept {
    operator delete(p, align);
}

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
    benchmark::AddCustomContext("corpus", CFGREG_CORPUS_DIR "/real");
    register_all();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
