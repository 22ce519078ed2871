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
if [[ "$preset" != arm64 ]]; then
  exec ctest --preset "$preset" --output-on-failure --parallel "$jobs" "$@"
fi

# arm64 under qemu-aarch64 (a frame costs seconds there). FFmpeg's YUV-to-BGR conversion and
# MPEG-4 IDCT are not bit-exact between x86-64 and arm64 (per-architecture SIMD), and the
# references were decoded on x86-64; so the reference test reads the videos' first frames as this
# machine's x86-64 build decodes them (lossless PNG files, DETFLOW_REFERENCE_DECODED_FRAMES) and
# checks detflow on them, and it also prints, without checking, the F1 on arm64's own decoding.
# A DETFLOW_REFERENCE_DECODED_FRAMES already set is used as it is.
export DETFLOW_REFERENCE_VIDEO_FRAMES="${DETFLOW_REFERENCE_VIDEO_FRAMES:-5}"
status=0
if [[ -z "${DETFLOW_REFERENCE_DECODED_FRAMES:-}" ]]; then
  x86_reference_test="$DETFLOW_REPO_DIR/build/release/tests/integration/detflow_reference_test"
  writer=ReferenceVideoFrames.DISABLED_WriteDecodedFrames
  has_writer() {
    [[ -x "$x86_reference_test" ]] &&
      "$x86_reference_test" --gtest_list_tests --gtest_filter="$writer" 2>/dev/null | grep -q "${writer#*.}"
  }
  if ! has_writer; then
    # Missing, or built before it could write frames: build that one x86-64 test.
    detflow_info "building the x86-64 reference test: it decodes the video frames the arm64 check reads"
    "$DETFLOW_REPO_DIR/scripts/build.sh" release detflow_reference_test >&2 || true
  fi
  frames_dir="$(mktemp -d "${TMPDIR:-/tmp}/detflow-arm64-frames.XXXXXX")"
  trap 'rm -rf "$frames_dir"' EXIT
  if ! has_writer; then
    detflow_warn "build/release has no x86-64 reference test: videos are read with arm64's own decoder (see the README)"
    status=1
  elif ! DETFLOW_REFERENCE_WRITE_DECODED_FRAMES="$frames_dir" "$x86_reference_test" --gtest_also_run_disabled_tests \
    --gtest_filter="$writer" --gtest_brief=1 >&2; then
    detflow_warn "the x86-64 build could not write the decoded video frames (above)"
    status=1
  elif compgen -G "$frames_dir/*/000000.png" >/dev/null; then
    export DETFLOW_REFERENCE_DECODED_FRAMES="$frames_dir"
  fi # else no ../shared: the reference tests skip, saying so
fi
if (($#)); then
  ctest --preset arm64 --output-on-failure --parallel "$jobs" "$@" || status=1
  exit "$status"
fi

# Without arguments, a stated subset, in two ctest runs:
#   1. every unit test of the kernels, decoders and tracker: labels pre (letterbox and resize
#      kernels checked against the scalar reference), post (decoders, NMS) and track;
#   2. the reference fidelity test for YOLOX-nano and YOLOv8n on ONNX Runtime and OpenCV (every
#      photo, the first DETFLOW_REFERENCE_VIDEO_FRAMES frames of each video, default 5, decoded
#      as above) and the command line on vtest.avi (frame counts of the video and the JSON Lines,
#      exit codes).
# Everything else runs with extra arguments, e.g. scripts/test.sh arm64 -R Source.
start=$SECONDS
detflow_info "arm64 (emulated) 1/2: unit tests of the kernels, decoders and tracker"
ctest --preset arm64 --output-on-failure --parallel "$jobs" -L '^(pre|post|track)$' || status=1
detflow_info "arm64 (emulated) 2/2: fidelity on yolox_nano and yolov8n (both engines), the CLI on vtest.avi"
ctest --preset arm64 --output-on-failure --parallel "$jobs" \
  -R '^(SharedReference/ReferenceTest\.AgreesWithReference/(yolox_nano|yolov8n)__|CliRun\.FortyFrames|CliExitCodes\.)' ||
  status=1
detflow_info "arm64 (emulated) subset: $((SECONDS - start)) s, $([[ $status == 0 ]] && echo passed || echo FAILED)"
exit "$status"
