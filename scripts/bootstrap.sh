#!/usr/bin/env bash
# scripts/bootstrap.sh — everything detflow needs that is not in the repository.
#
#   scripts/bootstrap.sh [system] [onnxruntime] [assets]     (no argument: all three)
#
#   system       Debian packages: compiler, CMake, Ninja, OpenCV, oneTBB, ONNX, GStreamer,
#                test and bench libraries, PoCL, ffmpeg   (scripts/install-system-packages.sh)
#   onnxruntime  ONNX Runtime 1.29 C/C++ API into the cache, optional
#                (scripts/fetch-onnxruntime.sh)
#   assets       the demo's face detector and videos into the cache
#                (scripts/fetch-demo-assets.sh)
#
# Idempotent: what is installed and stamped is skipped, so a second run takes well under
# a second and needs neither root nor the network. Runs as root, or through sudo when
# packages are missing. Exit status is non-zero only for what the build cannot do
# without (a missing system package that could not be installed, a checksum mismatch);
# an unreachable registry costs one line per optional piece.
#
# Environment (see each script): DETFLOW_CACHE_DIR (default ~/.cache/detflow),
# ONNXRUNTIME_ROOT, DETFLOW_OS_RELEASE, DETFLOW_SKIP_SYSTEM_PACKAGES, npm_config_registry.
set -euo pipefail
scripts="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
source "$scripts/lib/common.sh"

steps=("$@")
((${#steps[@]})) || steps=(system onnxruntime assets)
for step in "${steps[@]}"; do
  case "$step" in
    system | onnxruntime | assets) ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "bootstrap: error: unknown step '$step'; accepted: system, onnxruntime, assets (none: all)" >&2
      exit 2
      ;;
  esac
done

# Two bootstraps at once (make -j demo test, two checkouts) would download and swap the
# same cache folders: the second waits for the first, then finds everything stamped.
mkdir -p "$DETFLOW_CACHE_DIR"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$DETFLOW_CACHE_DIR/.bootstrap.lock"
  flock 9
fi

for step in "${steps[@]}"; do
  case "$step" in
    system) "$scripts/install-system-packages.sh" ;;
    onnxruntime) "$scripts/fetch-onnxruntime.sh" ;;
    assets) "$scripts/fetch-demo-assets.sh" ;;
  esac
done
