#!/usr/bin/env bash
# scripts/test.sh — run the whole test suite of a built preset through ctest.
#
#   scripts/test.sh [PRESET] [CTEST_ARGUMENT...]     e.g. scripts/test.sh release -R Nms
#
# Runs JOBS tests at once (default: the number of cores), prints the output of failing
# tests and ends with ctest's summary ("100% tests passed, 0 tests failed out of N").
# Fails when a test fails, times out or when no test is registered at all (the test
# presets set noTestsAction=error: an empty suite is a broken build, not a pass).
# make test bootstraps and builds first.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

preset="${1:-release}"
shift || true
jobs="${JOBS:-$(detflow_nproc)}"
detflow_require_command ctest "run scripts/bootstrap.sh (or make bootstrap) first"
[[ -f "$DETFLOW_REPO_DIR/build/$preset/CTestTestfile.cmake" ]] ||
  detflow_die "build/$preset is not built: run make build PRESET=$preset (or scripts/build.sh $preset) first"

cd "$DETFLOW_REPO_DIR"
if [[ "$preset" != arm64 || $# -gt 0 ]]; then
  exec ctest --preset "$preset" --output-on-failure --parallel "$jobs" "$@"
fi

# arm64 under qemu-aarch64 (a frame costs seconds there), so a stated subset, in two ctest runs:
#   1. every unit test of the kernels, decoders and tracker: labels pre (letterbox and resize
#      kernels checked against the scalar reference), post (decoders, NMS) and track;
#   2. the reference fidelity test for YOLOX-nano and YOLOv8n on ONNX Runtime and OpenCV (every
#      photo, the first DETFLOW_REFERENCE_VIDEO_FRAMES frames of each video, default 5) and the
#      command line on vtest.avi (frame counts of the video and the JSON Lines, exit codes).
# Everything else runs with extra arguments, e.g. scripts/test.sh arm64 -R Source.
export DETFLOW_REFERENCE_VIDEO_FRAMES="${DETFLOW_REFERENCE_VIDEO_FRAMES:-5}"
start=$SECONDS
status=0
detflow_info "arm64 (emulated) 1/2: unit tests of the kernels, decoders and tracker"
ctest --preset arm64 --output-on-failure --parallel "$jobs" -L '^(pre|post|track)$' || status=1
detflow_info "arm64 (emulated) 2/2: fidelity on yolox_nano and yolov8n (both engines), the CLI on vtest.avi"
ctest --preset arm64 --output-on-failure --parallel "$jobs" \
  -R '^(SharedReference/ReferenceTest\.AgreesWithReference/(yolox_nano|yolov8n)__|CliRun\.FortyFrames|CliExitCodes\.)' ||
  status=1
detflow_info "arm64 (emulated) subset: $((SECONDS - start)) s, $([[ $status == 0 ]] && echo passed || echo FAILED)"
exit "$status"
