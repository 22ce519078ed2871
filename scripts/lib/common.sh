# scripts/lib/common.sh — sourced (never run) by the scripts in scripts/.
# shellcheck shell=bash disable=SC2034 # the variables set here are read by the scripts that source this file
#
# Provides: where the repository and the download cache are, messages, the check that a
# stamp file still describes what is installed, and verified downloads from the npm
# registry. Every function either succeeds or stops the script with one line saying what
# failed and what to do, except detflow_npm_fetch, whose "registry unreachable" result
# the caller decides about (the build can go on without optional downloads).
#
# Environment read here:
#   DETFLOW_CACHE_DIR  where downloads, ONNX Runtime and demo assets live
#                      (default: $HOME/.cache/detflow, the place cmake/FindOnnxRuntime.cmake
#                      looks in)

DETFLOW_REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DETFLOW_CACHE_DIR="${DETFLOW_CACHE_DIR:-${HOME:?HOME is not set; set HOME or DETFLOW_CACHE_DIR}/.cache/detflow}"
DETFLOW_DEFAULT_CACHE_DIR="${HOME:-/nonexistent}/.cache/detflow"
DETFLOW_ASSETS_DIR="$DETFLOW_CACHE_DIR/assets"
DETFLOW_ONNXRUNTIME_DIR="$DETFLOW_CACHE_DIR/onnxruntime"
DETFLOW_DOWNLOADS_DIR="$DETFLOW_CACHE_DIR/downloads"

# The name messages start with: the running script's name without .sh.
DETFLOW_LOG_NAME="${DETFLOW_LOG_NAME:-$(basename "${BASH_SOURCE[-1]}" .sh)}"

detflow_info() { printf '%s: %s\n' "$DETFLOW_LOG_NAME" "$*" >&2; }
detflow_warn() { printf '%s: warning: %s\n' "$DETFLOW_LOG_NAME" "$*" >&2; }
detflow_die() {
  printf '%s: error: %s\n' "$DETFLOW_LOG_NAME" "$*" >&2
  exit 1
}

# detflow_require_command NAME HINT: stops with HINT when NAME is not on PATH.
detflow_require_command() {
  command -v "$1" >/dev/null 2>&1 || detflow_die "'$1' is not installed: $2"
}

# detflow_stamp_matches FILE EXPECTED: true when FILE exists and holds exactly EXPECTED.
# Stamps record where an installed file came from (package, version, checksum); when the
# script's pins change, the stamp no longer matches and the file is fetched again.
detflow_stamp_matches() {
  [[ -f "$1" ]] && [[ "$(cat "$1")" == "$2" ]]
}

# detflow_write_stamp FILE CONTENT: replaces FILE atomically, so an interrupted run never
# leaves a stamp that claims more than was installed.
detflow_write_stamp() {
  printf '%s\n' "$2" >"$1.partial"
  mv -f "$1.partial" "$1"
}

# detflow_sha256 FILE: prints the hex SHA-256 of FILE.
detflow_sha256() {
  sha256sum "$1" | cut -d' ' -f1
}

# detflow_sri_sha512 FILE: prints FILE's Subresource Integrity string ("sha512-<base64>"),
# the form the npm registry publishes as dist.integrity.
detflow_sri_sha512() {
  if command -v openssl >/dev/null 2>&1; then
    printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$1" | base64 -w0)"
  else
    node -e 'const c = require("crypto"), fs = require("fs");
             const h = c.createHash("sha512");
             h.update(fs.readFileSync(process.argv[1]));
             process.stdout.write("sha512-" + h.digest("base64"));' "$1"
  fi
}

# detflow_npm_fetch NAME VERSION PINNED_INTEGRITY DEST_DIR
#   Downloads the tarball of NAME@VERSION into DEST_DIR and checks it three ways: npm's
#   own check while packing, the integrity the registry reports now, and the integrity
#   pinned in this repository (which catches a registry that was tampered with, or a
#   version that was republished). Call it directly, not in $(...): it sets
#   DETFLOW_NPM_TARBALL to the verified tarball's path and returns 0, or returns 2 when
#   the registry cannot be reached or cannot serve the package, with the reason in
#   DETFLOW_NPM_FAILURE. Any integrity mismatch stops the script.
detflow_npm_fetch() {
  local name="$1" version="$2" pinned="$3" dest="$4"
  local spec="$name@$version" reported npm_log npm_cache tarball actual
  DETFLOW_NPM_FAILURE=""
  DETFLOW_NPM_TARBALL=""
  if ! command -v npm >/dev/null 2>&1; then
    DETFLOW_NPM_FAILURE="npm is not installed (apt-get install npm)"
    return 2
  fi
  mkdir -p "$dest"
  npm_log="$(mktemp)"
  # A private npm cache: the tarballs are large and are kept (verified) in $dest, so a
  # second copy in ~/.npm would only waste space.
  npm_cache="$(mktemp -d)"
  # Few, short retries: an unreachable registry should cost seconds, not minutes.
  local -a npm_options=(--cache "$npm_cache" --fetch-retries=1 --fetch-retry-mintimeout=2000
    --fetch-retry-maxtimeout=5000 --no-audit --no-fund --loglevel=error)
  if ! reported="$(npm view "${npm_options[@]}" "$spec" dist.integrity 2>"$npm_log")" || [[ -z "$reported" ]]; then
    DETFLOW_NPM_FAILURE="$(detflow_npm_error_summary "$npm_log" "npm view $spec")"
    rm -rf "$npm_log" "$npm_cache"
    return 2
  fi
  if [[ "$reported" != "$pinned" ]]; then
    rm -rf "$npm_log" "$npm_cache"
    detflow_die "the registry reports integrity $reported for $spec, but this repository pins $pinned: refusing to use it (update the pin in scripts/ only after checking the package)"
  fi
  detflow_info "downloading $spec from the npm registry"
  if ! (cd "$dest" && npm pack "${npm_options[@]}" --ignore-scripts "$spec" >/dev/null 2>"$npm_log"); then
    DETFLOW_NPM_FAILURE="$(detflow_npm_error_summary "$npm_log" "npm pack $spec")"
    rm -rf "$npm_log" "$npm_cache"
    return 2
  fi
  rm -rf "$npm_log" "$npm_cache"
  # npm names the tarball <name>-<version>.tgz, with a scope's "@" dropped and "/" as "-".
  tarball="$dest/$(printf '%s' "$name" | sed -e 's/^@//' -e 's#/#-#')-$version.tgz"
  [[ -f "$tarball" ]] || detflow_die "npm pack $spec did not produce $tarball"
  actual="$(detflow_sri_sha512 "$tarball")"
  if [[ "$actual" != "$pinned" ]]; then
    rm -f "$tarball"
    detflow_die "downloaded $spec has integrity $actual, expected $pinned: the file was deleted; retry, and report it if it persists"
  fi
  DETFLOW_NPM_TARBALL="$tarball"
}

# detflow_npm_error_summary LOG WHAT: one line from npm's error output (its error code and
# first message) for the "unreachable" message.
detflow_npm_error_summary() {
  local code message
  code="$(grep -m1 -oE '^npm (error|ERR!) code [A-Za-z0-9_]+' "$1" | awk '{print $NF}' || true)"
  message="$(grep -E '^npm (error|ERR!) ' "$1" | grep -v -E '^npm (error|ERR!) +(code|syscall|errno|at |A complete log)' |
    grep -v -E '^npm (error|ERR!) +[{}]' | head -n1 | sed -E 's/^npm (error|ERR!) +//' || true)"
  printf '%s failed%s%s' "$2" "${code:+ ($code)}" "${message:+: $message}"
}

# detflow_export_onnxruntime_root: when the cache is not the default one, CMake's
# FindOnnxRuntime would not look in it; point it there through ONNXRUNTIME_ROOT (unless
# the user chose an ONNX Runtime already).
detflow_export_onnxruntime_root() {
  if [[ -z "${ONNXRUNTIME_ROOT:-}" && "$DETFLOW_CACHE_DIR" != "$DETFLOW_DEFAULT_CACHE_DIR" &&
    -f "$DETFLOW_ONNXRUNTIME_DIR/include/onnxruntime_cxx_api.h" ]]; then
    export ONNXRUNTIME_ROOT="$DETFLOW_ONNXRUNTIME_DIR"
  fi
}

# detflow_nproc: the number of cores to build and test with.
detflow_nproc() {
  nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2
}

# detflow_choose_demo_inputs: what make demo and make bench run on, from MODEL, SOURCE
# and FAMILY (all optional). Sets DEMO_MODEL, DEMO_FAMILY (empty: auto-detect),
# DEMO_SOURCE, DEMO_LABELS and DEMO_NAME (the output files' base name).
#   no MODEL:  the cached BlazeFace face detector (family ssd) on the cached faces.mp4
#   MODEL=m:   that model (a COCO detector, family auto-detected) on the cached vtest.avi
# SOURCE replaces the video in both cases, FAMILY the family. DEMO_LABELS is the
# BlazeFace class name file, empty for MODEL (its metadata or COCO names apply).
detflow_choose_demo_inputs() {
  DEMO_LABELS=""
  if [[ -z "${MODEL:-}" ]]; then
    DEMO_MODEL="$DETFLOW_ASSETS_DIR/blazeface.onnx"
    DEMO_FAMILY="${FAMILY:-ssd}"
    [[ ! -f "$DETFLOW_ASSETS_DIR/blazeface.labels" ]] || DEMO_LABELS="$DETFLOW_ASSETS_DIR/blazeface.labels"
    DEMO_SOURCE="${SOURCE:-$DETFLOW_ASSETS_DIR/faces.mp4}"
    DEMO_NAME=demo
  else
    DEMO_MODEL="$MODEL"
    DEMO_FAMILY="${FAMILY:-}"
    DEMO_SOURCE="${SOURCE:-$DETFLOW_ASSETS_DIR/vtest.avi}"
    DEMO_NAME="demo-$(basename "${MODEL%.onnx}")"
  fi
  [[ -f "$DEMO_MODEL" ]] || {
    [[ -n "${MODEL:-}" ]] && detflow_die "MODEL=$MODEL: no such file (give the path of an .onnx model)"
    detflow_die "the demo model $DEMO_MODEL is missing: run scripts/bootstrap.sh assets (it needs the npm registry)"
  }
  # Only paths are checked here; cameras, URLs and gst: pipelines are left to detflow.
  if [[ "$DEMO_SOURCE" != *://* && "$DEMO_SOURCE" != gst:* && ! "$DEMO_SOURCE" =~ ^[0-9]+$ &&
    "$DEMO_SOURCE" != /dev/video* && "$DEMO_SOURCE" != *[*?]* && ! -e "$DEMO_SOURCE" ]]; then
    [[ -n "${SOURCE:-}" ]] && detflow_die "SOURCE=$SOURCE: no such file or folder (give a video, an image, a folder, a camera index or a URL)"
    detflow_die "the demo video $DEMO_SOURCE is missing: run scripts/bootstrap.sh assets (it needs Debian's archive)"
  fi
}

# detflow_executable PRESET: the built detflow command line, or stops saying how to build it.
detflow_executable() {
  local executable="$DETFLOW_REPO_DIR/build/$1/apps/detflow"
  [[ -x "$executable" ]] || detflow_die "$executable is not built: run make build (or scripts/build.sh $1 detflow)"
  printf '%s\n' "$executable"
}
