#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, builds cfgreg, and runs the main job: the service example, which
# reloads examples/config/service.toml while it runs. Ctrl-C stops it.
#
#   scripts/run.sh [CONFIG] [--seconds N]    arguments go to the service; CONFIG defaults to
#                                            examples/config/service.toml
#
# Environment: CFGREG_BUILD_DIR (default build), CFGREG_BUILD_TYPE (default RelWithDebInfo).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${CFGREG_BUILD_DIR:-$root/build}
program=service

"$root/scripts/install-deps.sh"

cmake -S "$root" -B "$build_dir" -G Ninja \
    -DCMAKE_BUILD_TYPE="${CFGREG_BUILD_TYPE:-RelWithDebInfo}" -DCFGREG_BUILD_EXAMPLES=ON
cmake --build "$build_dir" --target "$program"

if [[ $# -eq 0 || $1 == -* ]]; then
    set -- "$root/examples/config/service.toml" "$@"
fi
exec "$build_dir/examples/$program" "$@"
