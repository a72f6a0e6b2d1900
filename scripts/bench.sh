#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the benchmarks (Release, build-bench/), runs every bench/bench_*.cpp program with JSON
# output, and writes BENCHMARKS.md and its chart with scripts/bench_report.py.
#
#   scripts/bench.sh [Google Benchmark flags, e.g. --benchmark_filter=read/]
#
# Environment: CFGREG_BENCH_REPETITIONS (default 3), CFGREG_BENCH_MIN_TIME (seconds per run,
# default 0.05), CXX (compiler, when build-bench/ is first configured; default g++).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=$root/build-bench
results=$build_dir/results

"$root/scripts/install-deps.sh" --bench

CXX=${CXX:-g++} cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCFGREG_BUILD_BENCH=ON -DCFGREG_BUILD_TESTS=OFF -DCFGREG_BUILD_EXAMPLES=OFF \
    -DCFGREG_BUILD_CLI=OFF
cmake --build "$build_dir"

# bench_maps (sync_map and its peers) and bench_registry (the registry against its floors, toml++
# and itself) both feed the targets table: a run without either would leave rows unmeasured.
for required in bench_maps bench_registry; do
    if [[ ! -x $build_dir/bench/$required ]]; then
        echo "bench.sh: $build_dir/bench/$required was not built" >&2
        exit 1
    fi
done

# The build just kept every core busy: let the 1-minute load average fall below a quarter of
# the cores (the report's mark of a busy machine) before measuring, for up to three minutes;
# past that the run goes on and the report says the machine was busy.
idle_below=$(awk -v n="$(nproc)" 'BEGIN { print n / 4 }')
for attempt in $(seq 36); do
    [[ -r /proc/loadavg ]] || break
    read -r load1 _ </proc/loadavg
    awk -v l="$load1" -v m="$idle_below" 'BEGIN { exit !(l < m) }' && break
    if [[ $attempt -eq 36 ]]; then
        echo "bench.sh: load average still $load1 after 3 minutes; measuring anyway"
        break
    fi
    echo "bench.sh: waiting for the load average ($load1) to fall below $idle_below"
    sleep 5
done

rm -rf "$results"
mkdir -p "$results"
for program in "$build_dir"/bench/bench_*; do
    [[ -f $program && -x $program ]] || continue
    name=$(basename "$program")
    echo "== $name"
    # Repetitions are interleaved at random, so that a slow spell of the machine spreads over
    # every map instead of landing on one; ratios are taken between medians of the same run.
    "$program" \
        --benchmark_repetitions="${CFGREG_BENCH_REPETITIONS:-3}" \
        --benchmark_min_time="${CFGREG_BENCH_MIN_TIME:-0.05}" \
        --benchmark_enable_random_interleaving=true \
        --benchmark_display_aggregates_only=true \
        --benchmark_out="$results/$name.json" --benchmark_out_format=json \
        "$@"
done

python3 "$root/scripts/bench_report.py" --out "$root/BENCHMARKS.md" \
    --chart "$root/bench/read_threads.png" --min-time "${CFGREG_BENCH_MIN_TIME:-0.05}" \
    "$results"/*.json
echo "bench.sh: wrote BENCHMARKS.md and bench/read_threads.png"
