#!/usr/bin/env bash
# scripts/build.sh — configure and build one CMake preset (CMakePresets.json).
#
#   scripts/build.sh [PRESET] [TARGET...]     PRESET: release (default), debug, asan or arm64
#
# Builds into build/PRESET with JOBS parallel jobs (default: the number of cores); no
# TARGET builds everything. Configuring again is cheap and picks up CMakeLists changes.
# Expects scripts/bootstrap.sh to have run (make build does that first).
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

preset="${1:-release}"
shift || true
jobs="${JOBS:-$(detflow_nproc)}"
detflow_require_command cmake "run scripts/bootstrap.sh (or make bootstrap) first"
detflow_require_command ninja "run scripts/bootstrap.sh (or make bootstrap) first: the presets use Ninja"
if [[ "$preset" == arm64 ]]; then
  # The cross build reads libraries (and ONNX Runtime, at /opt/onnxruntime) from an arm64
  # Debian root; making it the first time takes a few minutes.
  DETFLOW_ARM64_SYSROOT="$("$(dirname "${BASH_SOURCE[0]}")/arm64-sysroot.sh")"
  export DETFLOW_ARM64_SYSROOT
else
  detflow_export_onnxruntime_root
fi

cd "$DETFLOW_REPO_DIR"
cmake --preset "$preset"
targets=()
if (($#)); then targets=(--target "$@"); fi
cmake --build --preset "$preset" -j "$jobs" "${targets[@]}"
