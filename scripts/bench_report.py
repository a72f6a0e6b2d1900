#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes BENCHMARKS.md and a chart from Google Benchmark JSON files (scripts/bench.sh).

Benchmarks are named "<workload>/<implementation>/<parameter>:<value>.../threads:<n>". The
throughput of a run is its `group_ops_per_s` counter (all threads' operations over the group's
wall time; bench/bench_maps.cpp says why), or items_per_second where a benchmark lacks it.
Each figure is the median over repetitions; every ratio compares two medians of the same run.
bench/bench_registry.cpp adds the registry-level rows: its memory and reload-latency figures
are user counters (`bytes_per_leaf`, `latency_median_us`, ...), read the same way.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

SYNC_MAP = "cfgreg_sync_map"
FLOOR = "absl_flat_unsync"
PEERS = [
    "shared_mutex_absl_flat",
    "mutex_std_unordered",
    "cow_atomic_shared_ptr",
    "tbb_concurrent_hash_map",
    "libcuckoo",
]
MAPS = [FLOOR, SYNC_MAP] + PEERS
LEGEND = {
    FLOOR: "`absl::flat_hash_map`, no synchronization: the floor (read-only workloads)",
    SYNC_MAP: "`cfgreg::sync_map<std::string, std::int64_t>`",
    "shared_mutex_absl_flat": "`std::shared_mutex` + `absl::flat_hash_map`",
    "mutex_std_unordered": "`std::mutex` + `std::unordered_map`",
    "cow_atomic_shared_ptr": "copy-on-write map behind `std::atomic<std::shared_ptr<const map>>`",
    "tbb_concurrent_hash_map": "oneTBB `concurrent_hash_map` (reader holds a bucket lock)",
    "libcuckoo": "libcuckoo `cuckoohash_map` (reader locks two buckets)",
}
WORKLOADS = {
    "read": "100 % reads of present keys",
    "read_absent": "100 % reads of absent keys",
    "mix": "reads and stores of present keys; `write_pct` % stores",
    "read_with_writer": "reads while one more thread stores into the same keys nonstop",
    "read_with_reload": "reads while the whole configuration is replaced every 10 ms",
    "write_disjoint": "stores only: each thread into its own share of the keys",
    "churn": "each op inserts a new key and erases the one inserted 64 ops before",
    "typed": "a plain `std::atomic<std::int64_t>` load: the floor for typed handles",
}
HEADLINE = (("keys", 1000), ("key_bytes", 11), ("zipf", 0))
MAP_WORKLOADS = set(WORKLOADS)  # bench_maps.cpp; everything else is bench_registry.cpp's
REGISTRY = "cfgreg_registry"
FLOOR_ATOMIC = "atomic_int64_load"
REG_KEYS = (("keys", 1000), ("key_bytes", 11))  # bench_registry.cpp's read benchmarks
LOAD_LIMIT = 1.5    # loading a real file: at most this x toml++'s parse of the same bytes
MEMORY_LIMIT = 2.0  # heap bytes per leaf: at most this x toml++'s table of the same file
# Run-name parts that describe how a benchmark was run rather than what it measured.
RUN_PARAMS = {"threads", "iterations", "min_time", "repeats"}
CHURN_FLAT_LIMIT = 1.5  # "flat from 1 000 to 100 000 keys": the 100 000-key op costs at most this
# The floor map for reads beside a writer: values are atomic words stored in place.
FLOOR_IN_PLACE = "absl_flat_atomic_values"
# Maps whose churn growth is reported beside sync_map's (the floor map cannot churn).
CHURN_PEERS = ("shared_mutex_absl_flat", "mutex_std_unordered", "tbb_concurrent_hash_map",
               "libcuckoo")


# Why the design cannot meet some targets, measured where a figure is given. Kept here so that
# every regenerated BENCHMARKS.md carries it next to the verdicts.
BOUNDS = [
    "- **`sync_map::load` and `registry::get` against the floor.** A hit hashes the key, reads"
    " the read table's group (seven one-byte hash tags and seven entry pointers), then the key's"
    " entry (key, hash and the value: in place for trivially copyable values of up to 8 bytes),"
    " which the read table shares with the write side so that an update is one atomic operation"
    " visible through every table. The floor finds its slot through one control byte per slot,"
    " which stays in the first-level cache, and keeps key and value inside the slot: one"
    " dependent cache line fewer. The epoch pin costs about 0.4 ns of the rest. `registry::get`"
    " adds the conversion of the stored value, and one more dependent load: the registry's map"
    " holds, in place, a pointer to the leaf in its layer's list (shared with snapshots)"
    " rather than a third copy of every value.",
    "- **`setting<std::string>::get`.** `get` returns a copy, and a string longer than the"
    " small-string buffer allocates: no copy can cost 3 atomic loads. `visit` reads the same"
    " value in place (an epoch pin and one acquire load), which is the row a hot path should"
    " use for strings; the atomic load is the floor for word-sized values, which `get` meets.",
    "- **Reads while a writer stores into the same keys, or while 100 000 keys are replaced"
    " every 10 ms** (replacing 100 000 keys takes most of those 10 ms, so the writer never"
    " rests). A trivially copyable value of up to 8 bytes (the benchmark's `std::int64_t`) is"
    " stored in place, one atomic exchange on the entry's word: no allocation, no retire, no"
    " second line. What remains is the transfer of the cache line that the writer just wrote,"
    " which any shared-memory design pays: the floor map whose values are atomic words stored"
    " in place, in the same run, shows the ratio that transfer costs (reference row). Larger"
    " values are new immutable objects, so the reader also misses on the new value's line; they"
    " cannot be updated in place without a lock or a retry loop on the read side, which the"
    " read path's promise rules out.",
    "- **50/50 mix.** Go's sync.Map design trades writes for reads. The benchmark's"
    " `std::int64_t` values are stored in place, so a store into a present key is one atomic"
    " exchange; values that do not fit a word (or any value off x86-64) allocate and retire a"
    " node per store, and there TBB's buckets, updated in place under a lock, are the better"
    " fit. This is the design's known weak spot: it favours reads.",
    "- **100 % reads, 2 threads, against libcuckoo and TBB.** Both peers' lookups take a"
    " per-bucket lock (a shared cache-line write), sync_map's take none. No map can beat these"
    " peers by more than the unsynchronized floor map does, read for read on the same keys:"
    " the reference rows give that ceiling from the same run. Where the ceiling itself lies"
    " near the target, sync_map, a little slower per read than the floor (first row), lands"
    " near the line or under it; on this 2-core virtual machine the ratio also moves by about"
    " 0.5x between runs.",
    "- **Churn of new keys.** The cost per insert and erase grows from 1 000 to 100 000 keys"
    " while the key count grows 100x: no insert copies the map. A promotion builds a new read"
    " table once per half-map of inserts, so the number of entries it touches per insert is"
    " constant; but the promotion and the rebuild of the write side's list after it each pass"
    " over every entry (to place it by its hash, to find the deleted ones), and once the entries"
    " outgrow the cache each of those touches is a miss."
    " Every peer's cost grows with its table as well: the reference row gives their growth"
    " over the same keys in the same run.",
    "- **Loading a file and memory per leaf.** A load parses with toml++ (the floor itself),"
    " then flattens and frees toml++'s tree: a key path and the value per leaf (strings are"
    " moved out of the tree, not copied), stored once in the file's layer, which snapshots"
    " share. The lock-free map adds, per key, an entry with its own copy of the key and a"
    " pointer to the leaf; a load adds all its keys with `sync_map::store_all`, under one"
    " lock and into one new read table. What a load adds to the parse is then, per leaf,"
    " the key path, the map entry and, past the small-string buffer, the entry's key: two"
    " or three allocations of the heap that toml++'s own nodes just left, and freeing the"
    " parsed tree. Files of small values under long keys (`cargo-Cargo`, 28 bytes of TOML"
    " per leaf) pay the most against the parse, because the parse of each leaf is short."
    " The bytes per leaf include any table the epoch domain has not freed yet (up to"
    " 256 KiB per writing thread), so they vary a little between repetitions; with 29"
    " leaves (`telegraf`) the registry's fixed tables weigh the most.",
]

def parse_name(run_name):
    parts = run_name.split("/")
    params = []
    for part in parts[2:]:
        key, sep, value = part.partition(":")
        if sep and key not in RUN_PARAMS:
            params.append((key, int(value) if value.lstrip("-").isdigit() else value))
    return parts[0], parts[1] if len(parts) > 1 else "", tuple(params)


TIME_UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
# User counters of bench_registry.cpp that the report reads (medians over repetitions).
COUNTERS = ("bytes_per_leaf", "requested_bytes_per_leaf", "heap_bytes", "leaves", "entries",
            "latency_mean_us", "latency_median_us", "latency_p90_us", "debounce_us", "settle_us")


def load_runs(paths):
    """Returns ({(workload, params, threads): {impl: ops_per_second}}, {same key: {impl: CPU
    ns per operation per thread}}, {same key: {impl: {counter: value}}}, contexts,
    repetitions)."""
    samples, cpu_samples, counter_samples, contexts, repetitions = {}, {}, {}, [], 1
    for path in paths:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        contexts.append(data.get("context", {}))
        for bench in data.get("benchmarks", []):
            if bench.get("run_type", "iteration") != "iteration" or "items_per_second" not in bench:
                continue
            if bench.get("error_occurred"):
                continue
            workload, impl, params = parse_name(bench.get("run_name", bench["name"]))
            key = (workload, params, int(bench.get("threads", 1)))
            ops = bench.get("group_ops_per_s", bench["items_per_second"])
            samples.setdefault(key, {}).setdefault(impl, []).append(ops)
            cpu_ns = bench["cpu_time"] * TIME_UNIT_NS.get(bench.get("time_unit", "ns"), 1.0)
            cpu_samples.setdefault(key, {}).setdefault(impl, []).append(cpu_ns)
            counters = counter_samples.setdefault(key, {}).setdefault(impl, {})
            for name in COUNTERS:
                if isinstance(bench.get(name), (int, float)):
                    counters.setdefault(name, []).append(bench[name])
            repetitions = max(repetitions, int(bench.get("repetitions", 1)))

    def medians(table):
        return {key: {impl: statistics.median(v) for impl, v in by_impl.items()}
                for key, by_impl in table.items()}

    counter_medians = {key: {impl: {name: statistics.median(v) for name, v in by_name.items()}
                             for impl, by_name in by_impl.items()}
                       for key, by_impl in counter_samples.items()}
    return medians(samples), medians(cpu_samples), counter_medians, contexts, repetitions


def ns_per_op(ops_per_second, threads):
    """Wall time one thread spends per operation."""
    return threads * 1e9 / ops_per_second


def fmt(x, digits=3):
    if x is None:
        return "n/a"
    if x >= 10 ** digits:
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


def ratio(x):
    return "n/a" if x is None else f"{x:.2f}x"


def params_text(params):
    return ", ".join(f"{k} {v}" for k, v in params) or "-"


def machine_lines(contexts):
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    context = contexts[0] if contexts else {}
    lines = [
        f"- Machine: {model}, {cpus} CPUs (`nproc`), Linux {platform.release()}",
        f"- Compiler: {context.get('compiler', 'unknown')}, Release build; the Google Benchmark"
        f" library itself reports a {context.get('library_build_type', 'unknown')} build",
        f"- Date: {context.get('date', datetime.datetime.now().isoformat(timespec='seconds'))}",
    ]
    load = context.get("load_avg")
    if load:
        busy = load[0] >= 0.25 * cpus  # scripts/bench.sh waits for less before measuring
        lines.append("- Load average when the run started: "
                     + ", ".join(f"{x:.2f}" for x in load)
                     + (" (**the machine was busy with other work; absolute figures are"
                        " pessimistic, ratios within the run less so**)" if busy else ""))
    if context.get("cfgreg_sync_map", "measured") != "measured":
        lines.append(f"- `cfgreg::sync_map`: {context['cfgreg_sync_map']}")
    return lines


class Report:
    def __init__(self, medians, cpu_medians, counters):
        self.medians = medians
        self.cpu_medians = cpu_medians
        self.counters = counters

    def counter(self, workload, impl, name, params=(), threads=1):
        return self.counters.get((workload, tuple(params), threads), {}).get(impl, {}).get(name)

    def files(self, workload):
        """The `file` parameters of a registry workload, sorted."""
        return sorted({dict(params)["file"] for (w, params, _) in self.medians
                       if w == workload and "file" in dict(params)})

    def ops(self, workload, impl, threads, params=HEADLINE):
        return self.medians.get((workload, tuple(params), threads), {}).get(impl)

    def ns(self, workload, impl, threads, params=HEADLINE):
        ops = self.ops(workload, impl, threads, params)
        return None if ops is None else ns_per_op(ops, threads)

    def cpu_ns(self, workload, impl, params=HEADLINE, threads=1):
        """CPU time per operation with one thread: the cost itself, even on a busy machine."""
        return self.cpu_medians.get((workload, tuple(params), threads), {}).get(impl)

    def one_thread(self, workload, impl, base_workload, base_impl, params=HEADLINE,
                   unit=("ns", 1.0)):
        """(ratio, text) of a 1-thread cost over another. The ratio is of CPU times, which
        equal wall times on an idle machine and stay true on a busy one; wall times are
        shown beside, in `unit` (name, nanoseconds in one)."""
        ca, cb = self.cpu_ns(workload, impl, params), self.cpu_ns(base_workload, base_impl, params)
        if not ca or not cb:
            return None, None
        a, b = self.ns(workload, impl, 1, params), self.ns(base_workload, base_impl, 1, params)
        name, scale = unit
        wall = ("" if a is None or b is None
                else f" (wall {a / scale:.1f} vs {b / scale:.1f} {name}: {a / b:.2f}x)")
        return ca / cb, (f"{ca / scale:.1f} {name} vs {cb / scale:.1f} {name}: {ca / cb:.2f}x"
                         f"{wall}")

    def targets(self):
        """Rows of (what, target, measured, verdict)."""
        rows = []

        def row(what, target, value, shown=None, *, limit, at_most):
            if value is None:
                rows.append((what, target, "not measured", "not measured"))
                return
            met = value <= limit if at_most else value >= limit
            rows.append((what, target, shown or ratio(value), "met" if met else "**missed**"))

        def div(a, b):
            return None if a is None or b is None else a / b

        row("`sync_map::load` hit, 1 000 keys, 1 thread", "<= 1.15x the floor map's lookup",
            *self.one_thread("read", SYNC_MAP, "read", FLOOR), limit=1.15, at_most=True)
        row("`registry::get<std::int64_t>` by key, 1 000 keys, 1 thread",
            "<= 1.3x the floor map's lookup",
            *self.one_thread("registry_get", REGISTRY, "registry_get", FLOOR, REG_KEYS),
            limit=1.3, at_most=True)
        for impl, what in (("cfgreg_setting_int64", "`setting<std::int64_t>::get`"),
                           ("cfgreg_setting_string_visit",
                            "`setting<std::string>::visit` (read in place)"),
                           ("cfgreg_setting_string", "`setting<std::string>::get` (a copy)")):
            row(f"{what}, 1 thread", "<= 3x a plain atomic load",
                *self.one_thread("setting_get", impl, "setting_get", FLOOR_ATOMIC, ()),
                limit=3, at_most=True)
        s2 = self.ops("read", SYNC_MAP, 2)
        floor2 = self.ops("read", FLOOR, 2)
        for peer, limit in (("shared_mutex_absl_flat", 3), ("tbb_concurrent_hash_map", 4),
                            ("libcuckoo", 4), ("cow_atomic_shared_ptr", 2)):
            peer2 = self.ops("read", peer, 2)
            row(f"100 % reads, 2 threads, aggregate, vs `{peer}`", f">= {limit}x",
                div(s2, peer2), limit=limit, at_most=False)
            bound = div(floor2, peer2)
            if peer in ("tbb_concurrent_hash_map", "libcuckoo") and bound is not None:
                # What no map can beat: the unsynchronized floor's own ratio to the peer.
                rows.append((f"reference: the unsynchronized floor map vs `{peer}`, same run",
                             "none (the ceiling of any map's ratio)", ratio(bound),
                             "reference"))
        row("reads while one writer stores into the same keys (1 reader)",
            "reader cost <= 1.5x its cost with no writer",
            *self.one_thread("read_with_writer", SYNC_MAP, "read", SYNC_MAP),
            limit=1.5, at_most=True)
        # The same ratio for the floor map with values updated in place: the cost of the
        # cache-line transfer alone, which no shared-memory design avoids.
        ratio_floor, shown = self.one_thread("read_with_writer", FLOOR_IN_PLACE, "read",
                                             FLOOR_IN_PLACE)
        if ratio_floor is not None:
            rows.append(("reference: the same for the floor map whose values are atomic words"
                         " stored in place", "none (what a cache-line transfer costs)", shown,
                         "reference"))
        for keys in (1000, 100000):
            params = (("keys", keys), ("key_bytes", 11), ("zipf", 0))
            row(f"reads while the whole configuration ({keys} keys) is replaced every 10 ms",
                "<= 1.3x the no-writer cost",
                *self.one_thread("read_with_reload", SYNC_MAP, "read", SYNC_MAP, params),
                limit=1.3, at_most=True)
        mix50 = (("keys", 1000), ("key_bytes", 11), ("zipf", 0), ("write_pct", 50))
        row("50/50 mix, 2 threads, aggregate", ">= 0.5x TBB `concurrent_hash_map`",
            div(self.ops("mix", SYNC_MAP, 2, mix50),
                self.ops("mix", "tbb_concurrent_hash_map", 2, mix50)), limit=0.5, at_most=False)
        small = self.ns("churn", SYNC_MAP, 1, HEADLINE)
        large = self.ns("churn", SYNC_MAP, 1, (("keys", 100000), ("key_bytes", 11), ("zipf", 0)))
        row("churn of new keys, 1 thread",
            f"flat from 1 000 to 100 000 keys (cost ratio <= {CHURN_FLAT_LIMIT})",
            div(large, small),
            None if small is None or large is None
            else f"{small:.0f} ns -> {large:.0f} ns per insert+erase: {large / small:.2f}x",
            limit=CHURN_FLAT_LIMIT, at_most=True)
        # The peers' growth over the same keys in the same run: what larger tables cost
        # any map.
        growth = []
        for peer in CHURN_PEERS:
            a = self.ns("churn", peer, 1, HEADLINE)
            b = self.ns("churn", peer, 1, (("keys", 100000), ("key_bytes", 11), ("zipf", 0)))
            if a and b:
                growth.append(f"`{peer}` {b / a:.2f}x")
        if growth:
            rows.append(("reference: the peers' churn cost growth from 1 000 to 100 000 keys",
                         "none (larger tables miss the cache more in any map)",
                         ", ".join(growth), "reference"))
        row("registry `get<std::int64_t>` while the whole configuration (1 000 keys) is"
            " replaced every 10 ms by `load_string`", "<= 1.3x the no-writer cost",
            *self.one_thread("registry_read_with_reload", REGISTRY, "registry_get", REGISTRY,
                             REG_KEYS), limit=1.3, at_most=True)
        files = self.files("load")
        if not files:
            rows.append(("loading a real file", f"<= {LOAD_LIMIT}x toml++'s parse of the same file",
                         "not measured", "not measured"))
        for name in files:
            params = (("file", name),)
            row(f"loading `{name}` (`load_string`)", f"<= {LOAD_LIMIT}x toml++'s parse of it",
                *self.one_thread("load", "cfgreg_load_string", "load", "toml_parse", params,
                                 unit=("us", 1e3)),
                limit=LOAD_LIMIT, at_most=True)
        files = self.files("memory")
        if not files:
            rows.append(("resident memory per leaf", f"<= {MEMORY_LIMIT}x toml++'s table of the"
                         " same file", "not measured", "not measured"))
        for name in files:
            params = (("file", name),)
            ours = self.counter("memory", REGISTRY, "bytes_per_leaf", params)
            theirs = self.counter("memory", "toml_table", "bytes_per_leaf", params)
            row(f"heap bytes per leaf, `{name}`", f"<= {MEMORY_LIMIT}x toml++'s table of it",
                div(ours, theirs),
                None if ours is None or not theirs
                else f"{ours:.0f} B vs {theirs:.0f} B: {ours / theirs:.2f}x",
                limit=MEMORY_LIMIT, at_most=True)
        return rows

    def registry_tables(self):
        """The registry-level sections: reads, loading, memory and reload latency."""
        out = ["One thread unless stated: CPU time per operation (wall time beside it).", "",
               "| what | CPU ns/op | wall ns/op | x its floor |",
               "| --- | ---: | ---: | ---: |"]
        reads = (
            ("`absl::flat_hash_map` lookup, 1 000 keys (floor of `get`)", "registry_get", FLOOR,
             REG_KEYS, None),
            ("`registry::get<std::int64_t>`", "registry_get", REGISTRY, REG_KEYS, FLOOR),
            ("`sync_map<std::string, value>::visit` alone (where `get`'s cost goes)",
             "registry_get", "sync_map_value_visit", REG_KEYS, FLOOR),
            ("`absl::flat_hash_map` lookup of an absent key (floor of the next row)",
             "registry_get_absent", FLOOR, REG_KEYS, None),
            ("`get_or<std::int64_t>` of an absent key (parses the key, binary search)",
             "registry_get_absent", REGISTRY, REG_KEYS, FLOOR),
            ("`get<std::int64_t>` while `load_string` replaces all 1 000 keys every 10 ms",
             "registry_read_with_reload", REGISTRY, REG_KEYS, FLOOR),
            ("`std::atomic<std::int64_t>` load (floor of handles)", "setting_get", FLOOR_ATOMIC,
             (), None),
            ("`setting<std::int64_t>::get`", "setting_get", "cfgreg_setting_int64", (),
             FLOOR_ATOMIC),
            ("`setting<std::string>::get` (28-byte value: a copy that allocates)", "setting_get",
             "cfgreg_setting_string", (), FLOOR_ATOMIC),
            ("`setting<std::string>::visit` (the same value read in place)", "setting_get",
             "cfgreg_setting_string_visit", (), FLOOR_ATOMIC),
            ("`snapshot()`", "snapshot", REGISTRY, (), None),
        )
        for label, workload, impl, params, floor in reads:
            cpu = self.cpu_ns(workload, impl, params)
            if cpu is None:
                continue
            base = None
            if floor is not None:
                # A workload without a floor map row of its own (the reload one) is set
                # against registry_get's.
                floor_workload = workload
                if floor == FLOOR and self.cpu_ns(workload, FLOOR, REG_KEYS) is None:
                    floor_workload = "registry_get"
                fcpu = self.cpu_ns(floor_workload, floor, REG_KEYS if floor == FLOOR else params)
                base = fcpu and cpu / fcpu
            out.append(f"| {label} | {fmt(cpu)} | {fmt(self.ns(workload, impl, 1, params))} | "
                       f"{ratio(base) if floor else '-'} |")
        walk = self.cpu_ns("snapshot_iterate", REGISTRY, ())
        entries = self.counter("snapshot_iterate", REGISTRY, "entries")
        if walk is not None and entries:
            out.append(f"| `snapshot()` and a walk over its {entries:.0f} entries | {fmt(walk)} |"
                       f" {fmt(self.ns('snapshot_iterate', REGISTRY, 1, ()))} |"
                       f" {walk / entries:.2f} ns per entry |")
        two = [(label, w, i) for label, w, i in (
            ("`setting<std::int64_t>::get`", "setting_get", "cfgreg_setting_int64"),
            ("`std::atomic<std::int64_t>` load", "setting_get", FLOOR_ATOMIC),
            ("`snapshot()`", "snapshot", REGISTRY)) if self.ops(w, i, 2, ()) is not None]
        if two:
            out += ["", "Two threads, all threads' operations per second of the group's wall time: "
                    + "; ".join(f"{label} {self.ops(w, i, 2, ()) / 1e6:.1f} Mops/s"
                                for label, w, i in two) + "."]

        out += ["", "### Loading a real file", "",
                "Bytes in memory (`load_string`) or on disk (`load_file`) into a fresh registry,"
                " against `toml::parse` of the same bytes alone; CPU time per load, the result"
                " destroyed outside the timing on both sides.", "",
                "| file | toml++ parse, ms | `load_string`, ms | x toml++ | `load_file`, ms |"
                " x toml++ |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for name in self.files("load"):
            params = (("file", name),)
            parse = self.cpu_ns("load", "toml_parse", params)
            string = self.cpu_ns("load", "cfgreg_load_string", params)
            path = self.cpu_ns("load", "cfgreg_load_file", params)
            ms = lambda x: fmt(x and x / 1e6)
            out.append(f"| `{name}` | {ms(parse)} | {ms(string)} | "
                       f"{ratio(parse and string and string / parse)} | {ms(path)} | "
                       f"{ratio(parse and path and path / parse)} |")

        out += ["", "### Heap bytes per leaf", "",
                "Live heap after building a registry from the file (`load_string`), and after"
                " `toml::parse` of it, counted by the benchmark's replacement `operator new`"
                " as glibc chunk sizes; both divided by the registry's leaf count (scalars,"
                " empty arrays and empty tables).", "",
                "| file | leaves | toml++ table, B/leaf | registry, B/leaf | x toml++ |",
                "| --- | ---: | ---: | ---: | ---: |"]
        for name in self.files("memory"):
            params = (("file", name),)
            ours = self.counter("memory", REGISTRY, "bytes_per_leaf", params)
            theirs = self.counter("memory", "toml_table", "bytes_per_leaf", params)
            leaves = self.counter("memory", REGISTRY, "leaves", params)
            out.append(f"| `{name}` | {fmt(leaves)} | {fmt(theirs)} | {fmt(ours)} | "
                       f"{ratio(ours and theirs and ours / theirs)} |")

        out += ["", "### Reload latency", "",
                "A new version saved by rename-over, to the start of the `subscribe_batch`"
                " callback, with the watch's debounce subtracted (file written -> subscriber"
                " called); medians over repetitions of each figure. The watch then waits out its"
                " settle window (the file read twice this far apart must agree, so that a file"
                " caught mid-write is never applied): the last column is the median without"
                " that wait, the work of reading, parsing, committing and notifying.", "",
                "| keys in the file | debounce, ms | settle, ms | mean, ms | median, ms | p90, ms |"
                " median past the settle window, ms |",
                "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        runs = sorted((dict(p).get("keys", 0), p) for (w, p, _) in self.counters
                      if w == "reload_latency")
        for keys, params in runs:
            get = lambda name: self.counter("reload_latency", "cfgreg_watch", name, params)
            ms = lambda x: fmt(x and x / 1e3)
            median, settle = get("latency_median_us"), get("settle_us")
            past = None if median is None or settle is None else median - settle
            out.append(f"| {keys} | {ms(get('debounce_us'))} | {ms(settle)} | "
                       f"{ms(get('latency_mean_us'))} | {ms(median)} | "
                       f"{ms(get('latency_p90_us'))} | {ms(past)} |")
        return out

    def headline_table(self):
        out = ["| map | 1 thread, CPU ns/op | x floor | 2 threads, Mops/s | 4 threads, Mops/s "
               "| sync_map speed-up, 2 threads |",
               "| --- | ---: | ---: | ---: | ---: | ---: |"]
        floor = self.cpu_ns("read", FLOOR)
        sync2 = self.ops("read", SYNC_MAP, 2)
        for impl in MAPS:
            one = self.cpu_ns("read", impl)
            if one is None:
                continue
            two, four = self.ops("read", impl, 2), self.ops("read", impl, 4)
            speedup = None if sync2 is None or two is None or impl == SYNC_MAP else sync2 / two
            out.append(f"| `{impl}` | {fmt(one)} | {ratio(None if floor is None else one / floor)}"
                       f" | {fmt(two and two / 1e6)} | {fmt(four and four / 1e6)}"
                       f" | {ratio(speedup) if impl != SYNC_MAP else '-'} |")
        return out

    def ratio_table(self):
        peers = [p for p in PEERS if any(p in v for v in self.medians.values())]
        out = ["| workload | parameters | threads | sync_map ns/op | x floor | "
               + " | ".join(f"vs `{p}`" for p in peers) + " |",
               "| --- | --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in peers) + " |"]
        for (workload, params, threads), by_impl in sorted(self.medians.items()):
            if workload not in MAP_WORKLOADS:
                continue
            sync = by_impl.get(SYNC_MAP)
            if sync is None:
                continue
            floor = by_impl.get(FLOOR)
            cells = [ratio(by_impl[p] and sync / by_impl[p]) if p in by_impl else "-"
                     for p in peers]
            out.append(f"| {workload} | {params_text(params)} | {threads} | "
                       f"{fmt(ns_per_op(sync, threads))} | "
                       f"{ratio(floor / sync) if floor else '-'} | " + " | ".join(cells) + " |")
        return out

    def medians_table(self):
        impls = [m for m in MAPS if any(m in v for v in self.medians.values())]
        out = ["| workload | parameters | threads | " + " | ".join(f"`{m}`" for m in impls)
               + " |",
               "| --- | --- | ---: | " + " | ".join("---:" for _ in impls) + " |"]
        for (workload, params, threads), by_impl in sorted(self.medians.items()):
            if workload == "typed" or workload not in MAP_WORKLOADS:
                continue
            cells = [fmt(ns_per_op(by_impl[m], threads)) if m in by_impl else "-" for m in impls]
            out.append(f"| {workload} | {params_text(params)} | {threads} | "
                       + " | ".join(cells) + " |")
        typed = sorted((t, v["atomic_int64_load"]) for (w, _, t), v in self.medians.items()
                       if w == "typed" and "atomic_int64_load" in v)
        if typed:
            out.append("")
            out.append("Plain `std::atomic<std::int64_t>` load (typed-handle floor): "
                       + ", ".join(f"{t} thread{'s' if t > 1 else ''} {ns_per_op(v, t):.2f} ns"
                                   for t, v in typed) + ".")
        return out

    def chart(self, png):
        """Read throughput against threads, headline keys, one line per map, with gnuplot."""
        gnuplot = shutil.which("gnuplot")
        if gnuplot is None:
            print("bench_report.py: gnuplot not found, no chart", file=sys.stderr)
            return False
        series = []
        for impl in MAPS:
            points = [(t, self.ops("read", impl, t)) for t in (1, 2, 4)]
            points = [(t, v / 1e6) for t, v in points if v is not None]
            if points:
                series.append((impl, points))
        if not series:
            return False
        with tempfile.TemporaryDirectory() as tmp:
            data = os.path.join(tmp, "read.dat")
            with open(data, "w", encoding="utf-8") as f:
                for _, points in series:
                    f.writelines(f"{t} {v}\n" for t, v in points)
                    f.write("\n\n")
            plots = ", ".join(f"'{data}' index {i} using 1:2 with linespoints lw 2 pt 7 "
                              f"title '{impl}'" for i, (impl, _) in enumerate(series))
            script = "\n".join([
                "set terminal pngcairo size 960,560 noenhanced font ',11'",
                f"set output '{png}'",
                "set title '100 % reads, 1000 keys of 11 bytes, uniform: all threads together'",
                "set xlabel 'threads'",
                "set ylabel 'million reads per second'",
                "set logscale x 2",
                "set xtics (1, 2, 4)",
                "set xrange [0.9:4.4]",
                "set yrange [0:*]",
                "set grid",
                "set key outside right top",
                f"plot {plots}",
            ])
            subprocess.run([gnuplot], input=script, text=True, check=True)
        return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="+", help="Google Benchmark JSON output files")
    parser.add_argument("--out", default="BENCHMARKS.md")
    parser.add_argument("--chart", default="bench/read_threads.png")
    parser.add_argument("--min-time", default="0.05", help="seconds per run, for the text")
    args = parser.parse_args()

    medians, cpu_medians, counters, contexts, repetitions = load_runs(args.json)
    if not medians:
        sys.exit("bench_report.py: no benchmark results in " + " ".join(args.json))
    report = Report(medians, cpu_medians, counters)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    has_chart = report.chart(os.path.abspath(args.chart))

    lines = [
        "# Benchmarks",
        "",
        "Written by `scripts/bench.sh` (Google Benchmark, Release build); do not edit by hand.",
        f"Every figure is the median of {repetitions} repetitions of at least {args.min_time} s"
        " each, run in random order; every ratio compares medians of the same run, on the same"
        " keys, in the same binary.",
        "",
        *machine_lines(contexts),
        "",
        "## Targets",
        "",
        "| what | target | measured | verdict |",
        "| --- | --- | --- | --- |",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in report.targets()),
        "",
        "## What bounds the missed targets",
        "",
        *BOUNDS,
        "",
        "## 100 % reads, 1 000 keys of 11 bytes, uniform",
        "",
        "One thread: CPU time per operation. Several threads: all threads' operations per"
        " second of the group's wall time (Mops/s).",
        "",
        *report.headline_table(),
        "",
    ]
    if has_chart:
        rel = os.path.relpath(os.path.abspath(args.chart), out_dir)
        lines += [f"![Read throughput against threads]({rel})", ""]
    lines += [
        "## sync_map against the floor and each peer",
        "",
        "`x floor` is sync_map's cost over the unsynchronized map's (lower is better, 1.00x is"
        " the limit); `vs <peer>` is sync_map's throughput over the peer's (above 1.00x,"
        " sync_map is faster).",
        "",
        *report.ratio_table(),
        "",
        "## Registry",
        "",
        *report.registry_tables(),
        "",
        "## All medians (ns/op per thread)",
        "",
        *report.medians_table(),
        "",
        "## What was measured",
        "",
        "Maps:",
        "",
        *(f"- `{k}`: {v}" for k, v in LEGEND.items()),
        "",
        "Workloads:",
        "",
        *(f"- `{k}`: {v}" for k, v in WORKLOADS.items()),
        "",
        "Keys are 11 bytes (kept inline by `std::string`) or 64 bytes; `zipf 1` draws them with a"
        " Zipf(0.99) law, `zipf 0` uniformly. Each thread follows a precomputed sequence of"
        " 65 536 keys, the same for every map. 4 threads on a 2-CPU machine are oversubscribed"
        " on purpose: that is where spinning readers suffer. `cfgreg_sync_map` is measured"
        " after `promote()`, as a loaded configuration is. One-thread figures compare CPU"
        " time per operation, which equals wall time on an idle machine and which other work"
        " on a busy one does not inflate, but which leaves out time spent blocked: the wall"
        " time stands beside it. Tables of ns/op per thread are wall time.",
        "",
    ]
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
