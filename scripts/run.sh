#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, builds cfgreg, and runs the main job: the template_cache example.
#
#   scripts/run.sh [arguments passed to the program]
#
# Environment: CFGREG_BUILD_DIR (default build), CFGREG_BUILD_TYPE (default RelWithDebInfo).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${CFGREG_BUILD_DIR:-$root/build}
program=template_cache

"$root/scripts/install-deps.sh"

cmake -S "$root" -B "$build_dir" -G Ninja \
    -DCMAKE_BUILD_TYPE="${CFGREG_BUILD_TYPE:-RelWithDebInfo}" -DCFGREG_BUILD_EXAMPLES=ON
cmake --build "$build_dir" --target "$program"
exec "$build_dir/examples/$program" "$@"
