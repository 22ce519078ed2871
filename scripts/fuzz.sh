#!/usr/bin/env bash
# scripts/fuzz.sh — build and run the libFuzzer targets of fuzz/ (preset fuzz, build/fuzz).
#
#   scripts/fuzz.sh build            configure and build the fuzz preset (clang); without
#                                    clang++ it warns and succeeds, and the smoke tests skip
#   scripts/fuzz.sh build-for-tests  the same for make test: a failed build does not stop
#                                    make test (ctest's summary stays its last line) but
#                                    makes every FuzzSmoke test fail with the reason
#   scripts/fuzz.sh run [TARGET...]  build, then run each target (default: all) for
#                                    FUZZ_SECONDS seconds (default 60); prints the inputs run
#   scripts/fuzz.sh smoke TARGET     what ctest's FuzzSmoke.TARGET runs: the target over its
#                                    seeds, then mutated inputs up to FUZZ_SMOKE_RUNS inputs in
#                                    all; exit 77 (ctest: skipped) when it is not built
#
# Every run: 1 s time-out per input (graph_rewrite: 5 s, see timeout_of), leaks detected,
# -print_final_stats=1. A crash, leak,
# time-out or broken property fails the command and leaves the input in
# build/fuzz/artifacts/ (replay: build/fuzz/bin/TARGET_fuzzer FILE).
# Environment: FUZZ_SECONDS, FUZZ_SMOKE_RUNS, FUZZ_JOBS (build jobs, default JOBS or the
# number of cores), DETFLOW_FUZZ_BUILD_DIR (default build/fuzz).
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

build_dir="${DETFLOW_FUZZ_BUILD_DIR:-$DETFLOW_REPO_DIR/build/fuzz}"
fuzz_dir="$DETFLOW_REPO_DIR/fuzz"
# The targets, as fuzz/CMakeLists.txt lists them (DETFLOW_FUZZ_TARGETS).
mapfile -t all_targets < <(sed -n 's/^set(DETFLOW_FUZZ_TARGETS \(.*\))$/\1/p' "$fuzz_dir/CMakeLists.txt" | tr ' ' '\n')

# Inputs in all (seeds included) for one smoke run: 3-9 s of CPU each in this build (about
# 30 s for all six targets).
smoke_runs_default() {
  case "$1" in
    model_info | graph_rewrite) echo 3000 ;;
    config | labels | jsonl) echo 5000 ;;
    *) echo 20000 ;;
  esac
}

# Seconds one input may take before it counts as a hang. The rewrites of a real detector graph
# (the skeletons of ../shared/models among graph_rewrite's seeds: yolov10n_int8 ~600 nodes)
# take up to 2 s of CPU in this -O1 sanitizer build, so that target gets 5 s.
timeout_of() {
  case "$1" in
    graph_rewrite) echo 5 ;;
    *) echo 1 ;;
  esac
}

dictionary_of() {
  case "$1" in
    model_info | graph_rewrite) echo "$fuzz_dir/dict/onnx.dict" ;;
    config) echo "$fuzz_dir/dict/yaml.dict" ;;
    jsonl) echo "$fuzz_dir/dict/json.dict" ;;
    labels) echo "$fuzz_dir/dict/labels.dict" ;;
    mot) echo "$fuzz_dir/dict/mot.dict" ;;
    *) echo "" ;;
  esac
}

# The seed folders of a target that exist (committed, then made by the build).
seed_dirs_of() {
  local dir
  for dir in "$fuzz_dir/corpus/$1" "$build_dir/seeds/$1"; do
    [[ -d "$dir" ]] && printf '%s\n' "$dir"
  done
  return 0
}

# Options common to every run of TARGET.
fuzzer_options() {
  local dictionary
  dictionary="$(dictionary_of "$1")"
  printf '%s\n' -error_exitcode=1 "-timeout=$(timeout_of "$1")" -rss_limit_mb=2048 -detect_leaks=1 -print_final_stats=1 \
    "-artifact_prefix=$build_dir/artifacts/$1-"
  [[ -z "$dictionary" ]] || printf '%s\n' "-dict=$dictionary"
}

# The sanitizers stop at the first error and show where it came from.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# Written by build-for-tests when the build fails; the smoke tests fail while it exists, so
# fuzzers left from an older build are never taken for current ones.
build_failed_marker="$build_dir/BUILD_FAILED"

fuzz_build() {
  if ! command -v clang++ >/dev/null 2>&1; then
    detflow_warn "clang++ is not installed: the fuzzers are not built and the FuzzSmoke tests will skip (scripts/bootstrap.sh installs clang and libclang-rt-14-dev)"
    return 0
  fi
  detflow_require_command cmake "run scripts/bootstrap.sh (or make bootstrap) first"
  local jobs="${FUZZ_JOBS:-${JOBS:-$(detflow_nproc)}}"
  # Explicit returns: build-for-tests calls this in an `if`, where set -e does not apply.
  cd "$DETFLOW_REPO_DIR" || return 1
  cmake --preset fuzz >/dev/null || return 1
  cmake --build --preset fuzz -j "$jobs" || return 1
}

# fuzz_one TARGET EXTRA_OPTION...: runs TARGET over its working corpus and seeds; prints the
# inputs run; returns the fuzzer's status.
fuzz_one() {
  local target="$1"
  shift
  local executable="$build_dir/bin/${target}_fuzzer"
  local work="$1"
  shift
  local log status
  log="$(mktemp)"
  mkdir -p "$build_dir/artifacts" "$work"
  local -a options seeds
  mapfile -t options < <(fuzzer_options "$target")
  mapfile -t seeds < <(seed_dirs_of "$target")
  status=0
  "$executable" "${options[@]}" "$@" "$work" "${seeds[@]}" >"$log" 2>&1 || status=$?
  local executed new_units
  executed="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
  new_units="$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -n1)"
  if ((status != 0)); then
    # libFuzzer's report: the sanitizer's or the property's message and the saved input.
    grep -v -E '^(#[0-9]+\s+(NEW|REDUCE|pulse|RELOAD)|INFO: )' "$log" | tail -n 60 >&2
    FUZZ_RESULT="$target: FAILED after ${executed:-?} inputs (exit $status); reproducer in $build_dir/artifacts/"
  else
    FUZZ_RESULT="$target: ${executed:-?} inputs run, ${new_units:-0} new inputs kept, no crash, leak or time-out"
  fi
  detflow_info "$FUZZ_RESULT"
  rm -f "$log"
  return "$status"
}

command_run() {
  fuzz_build
  local seconds="${FUZZ_SECONDS:-60}"
  local -a targets=("$@")
  ((${#targets[@]})) || targets=("${all_targets[@]}")
  local target failed=() results=()
  for target in "${targets[@]}"; do
    [[ -x "$build_dir/bin/${target}_fuzzer" ]] || detflow_die "$build_dir/bin/${target}_fuzzer is not built (targets: ${all_targets[*]})"
    detflow_info "$target: fuzzing for $seconds s"
    fuzz_one "$target" "$build_dir/corpus/$target" "-max_total_time=$seconds" || failed+=("$target")
    results+=("$FUZZ_RESULT")
  done
  detflow_info "summary, $seconds s per target:"
  printf '  %s\n' "${results[@]}" >&2
  ((${#failed[@]} == 0)) || detflow_die "crashes in: ${failed[*]} (inputs in $build_dir/artifacts/)"
}

command_smoke() {
  local target="${1:?usage: scripts/fuzz.sh smoke TARGET}"
  local executable="$build_dir/bin/${target}_fuzzer"
  if [[ -f "$build_failed_marker" ]]; then
    echo "error: $(cat "$build_failed_marker")"
    return 1
  fi
  if [[ ! -x "$executable" ]]; then
    echo "skipped: $executable is not built (make test builds it when clang++ is installed; or scripts/fuzz.sh build)"
    exit 77
  fi
  local runs="${FUZZ_SMOKE_RUNS:-$(smoke_runs_default "$target")}"
  # A scratch working corpus: the smoke run adds nothing to the committed or generated seeds.
  local work
  work="$(mktemp -d)"
  local status=0
  fuzz_one "$target" "$work" "-runs=$runs" -seed=1 || status=$?
  rm -rf "$work"
  return "$status"
}

case "${1:-}" in
  build) fuzz_build ;;
  build-for-tests)
    if fuzz_build; then
      rm -f "$build_failed_marker"
    else
      mkdir -p "$build_dir"
      echo "the fuzz preset failed to build (scripts/fuzz.sh build shows why)" >"$build_failed_marker"
      detflow_warn "the fuzz preset failed to build: the FuzzSmoke tests will fail"
    fi
    ;;
  run)
    shift
    command_run "$@"
    ;;
  smoke)
    shift
    command_smoke "$@"
    ;;
  *) detflow_die "usage: scripts/fuzz.sh build | build-for-tests | run [TARGET...] | smoke TARGET" ;;
esac
