#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, builds cfgreg with its tests, and runs them with ctest.
#
#   scripts/test.sh [extra CMake arguments]
#
# Environment: CFGREG_BUILD_DIR (default build), CFGREG_BUILD_TYPE (default RelWithDebInfo),
# CXX picks the compiler when the build folder is first configured.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${CFGREG_BUILD_DIR:-$root/build}

"$root/scripts/install-deps.sh"

cmake -S "$root" -B "$build_dir" -G Ninja \
    -DCMAKE_BUILD_TYPE="${CFGREG_BUILD_TYPE:-RelWithDebInfo}" -DCFGREG_BUILD_TESTS=ON "$@"
cmake --build "$build_dir"
cd "$build_dir"
ctest --output-on-failure -j "$(nproc)"
