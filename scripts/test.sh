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
exec ctest --preset "$preset" --output-on-failure --parallel "$jobs" "$@"
