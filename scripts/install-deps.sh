#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian bookworm packages cfgreg needs, skipping those already installed.
#
#   scripts/install-deps.sh   cmake g++ ninja-build libtomlplusplus-dev libboost-dev catch2
#                             libbenchmark-dev (build, test, run, and Google Benchmark)
#   --ci                      adds clang libclang-rt-14-dev (clang++ and its sanitizer
#                             runtimes, for .ci/run)
#   --bench                   adds libabsl-dev libtbb-dev libcuckoo-dev gnuplot-nox python3
#                             (the benchmark peers and the report)
#
# The options combine. Runs apt-get as root, or through sudo otherwise; does nothing when
# all are installed.
set -euo pipefail

packages=(cmake g++ ninja-build libtomlplusplus-dev libboost-dev catch2 libbenchmark-dev)
for arg in "$@"; do
    case "$arg" in
        --ci) packages+=(clang libclang-rt-14-dev) ;;
        --bench) packages+=(libabsl-dev libtbb-dev libcuckoo-dev gnuplot-nox python3) ;;
        -h | --help) sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install-deps.sh: unknown option '$arg'" >&2; exit 2 ;;
    esac
done

missing=()
for pkg in "${packages[@]}"; do
    if [[ $(dpkg -s "$pkg" 2>/dev/null) != *"Status: install ok installed"* ]]; then
        missing+=("$pkg")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

echo "install-deps.sh: installing ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null; then
    sudo=(sudo)
else
    echo "install-deps.sh: not root and no sudo; install these first: ${missing[*]}" >&2
    exit 1
fi
"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
