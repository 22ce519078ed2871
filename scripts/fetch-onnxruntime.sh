#!/usr/bin/env bash
# scripts/fetch-onnxruntime.sh — ONNX Runtime's C/C++ API for the onnxruntime engine.
#
# Debian 12 packages no ONNX Runtime. The npm package com.github.asus4.onnxruntime ships
# the official release binaries (the Linux x64 libonnxruntime.so and the platform
# independent C/C++ API headers); on x86_64 this script takes those two things from it.
# On aarch64 (Raspberry Pi OS bookworm and other Debian 12 arm64 boards) the library comes
# from onnxruntime-node@1.30.0 (bin/napi-v6/linux/arm64/libonnxruntime.so.1, an official
# release build) and the headers still from the asus4 package: the C API is versioned, a
# 1.30 library serves the 1.29 API that the headers ask for (the engine checks this at
# start). Any other architecture gets one line saying the build is OpenCV DNN only.
# Everything is laid out like an official release, which cmake/FindOnnxRuntime.cmake finds:
#
#   $DETFLOW_CACHE_DIR/onnxruntime/
#     include/onnxruntime_c_api.h, onnxruntime_cxx_api.h, ...
#     lib/libonnxruntime.so.X.Y.Z
#     lib/libonnxruntime.so.1 -> libonnxruntime.so.X.Y.Z    (the library's SONAME, what
#     lib/libonnxruntime.so   -> libonnxruntime.so.1         the executables load)
#     VERSION                 (stamp: version, architecture, packages, integrity; a match
#                              skips all work)
#
# Each tarball (110-150 MB) is verified against the registry and the pins below, extracted
# and deleted. ONNX Runtime is optional: when the registry cannot be reached this prints one
# line and exits 0, and the build has the OpenCV DNN engine only. An integrity mismatch
# is an error.
#
# Environment:
#   ONNXRUNTIME_ROOT   an official release folder to use instead (nothing is downloaded;
#                      it must hold include/onnxruntime_cxx_api.h and lib/libonnxruntime.so*)
#   DETFLOW_CACHE_DIR  see scripts/lib/common.sh
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

readonly ort_api_version=29
readonly package=com.github.asus4.onnxruntime
readonly package_version=0.4.9
readonly package_integrity='sha512-BkzxduSZ9IkeDP6Q8lz2TFU2ie7hSSvS7ZIfzMooExoq0CNzJnuuGaUJ7IsojBgqO4ouD1jXah8OYyJbCN29Fg=='
readonly headers_member='package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers'

# Where the library comes from, by machine (DETFLOW_ARCH overrides uname -m, for tests).
architecture="${DETFLOW_ARCH:-$(uname -m)}"
case "$architecture" in
  x86_64 | amd64)
    ort_version=1.29.0
    library_package="$package" library_package_version="$package_version"
    library_package_integrity="$package_integrity"
    library_member=package/Plugins/Linux/x64/libonnxruntime.so
    ;;
  aarch64 | arm64)
    ort_version=1.30.0
    library_package=onnxruntime-node library_package_version=1.30.0
    library_package_integrity='sha512-twhs1C2C/BFkz1yc5OY0KIU2GUq6DURO7hD4bx5Q2Qy3nAMJwRXW8xU3NVczE29VA9lolLOYepoD8fjTGOfIqw=='
    library_member=package/bin/napi-v6/linux/arm64/libonnxruntime.so.1
    ;;
  *)
    echo "fetch-onnxruntime: no ONNX Runtime release is fetched for the $architecture architecture (x86_64 and aarch64 are): the build continues with the OpenCV DNN engine only (or set ONNXRUNTIME_ROOT to a release built for it)" >&2
    exit 0
    ;;
esac
readonly architecture ort_version library_package library_package_version library_package_integrity library_member

if [[ -n "${ONNXRUNTIME_ROOT:-}" ]]; then
  [[ -f "$ONNXRUNTIME_ROOT/include/onnxruntime_cxx_api.h" ]] ||
    detflow_die "ONNXRUNTIME_ROOT=$ONNXRUNTIME_ROOT has no include/onnxruntime_cxx_api.h: point it at an extracted official release (onnxruntime-linux-x64-<version>) or unset it"
  compgen -G "$ONNXRUNTIME_ROOT/lib/libonnxruntime.so*" >/dev/null ||
    detflow_die "ONNXRUNTIME_ROOT=$ONNXRUNTIME_ROOT has no lib/libonnxruntime.so*: point it at an extracted official release (onnxruntime-linux-x64-<version>) or unset it"
  detflow_info "using the ONNX Runtime in ONNXRUNTIME_ROOT=$ONNXRUNTIME_ROOT; nothing to download"
  exit 0
fi

target="$DETFLOW_ONNXRUNTIME_DIR"
expected_stamp="onnxruntime $ort_version
package $package@$package_version
integrity $package_integrity"
if [[ "$library_package" != "$package" ]]; then
  expected_stamp+="
architecture $architecture
library $library_package@$library_package_version
library integrity $library_package_integrity"
fi
if detflow_stamp_matches "$target/VERSION" "$expected_stamp" &&
  [[ -f "$target/include/onnxruntime_cxx_api.h" && -f "$target/lib/libonnxruntime.so.$ort_version" &&
    -L "$target/lib/libonnxruntime.so.1" && -L "$target/lib/libonnxruntime.so" ]]; then
  detflow_info "ONNX Runtime $ort_version is in $target"
  exit 0
fi

mkdir -p "$DETFLOW_DOWNLOADS_DIR"
# fetch NAME VERSION INTEGRITY: sets tarball, or exits (0 when the registry cannot serve it).
fetch() {
  local status=0
  detflow_npm_fetch "$1" "$2" "$3" "$DETFLOW_DOWNLOADS_DIR" || status=$?
  if ((status == 2)); then
    echo "fetch-onnxruntime: ONNX Runtime is not available ($DETFLOW_NPM_FAILURE): the build continues with the OpenCV engine only" >&2
    exit 0
  elif ((status != 0)); then
    exit "$status"
  fi
  tarball="$DETFLOW_NPM_TARBALL"
}
fetch "$package" "$package_version" "$package_integrity"
headers_tarball="$tarball"
library_tarball="$tarball"
if [[ "$library_package" != "$package" ]]; then
  fetch "$library_package" "$library_package_version" "$library_package_integrity"
  library_tarball="$tarball"
fi

# Assemble next to the target, then swap whole folders (--touch dates the files now, so
# Ninja relinks what was linked against a previous copy): a build that is linking against
# the old copy at this moment keeps its open files, and nobody ever sees a half-extracted
# folder with a valid stamp.
staging="$(mktemp -d "$DETFLOW_CACHE_DIR/onnxruntime.staging.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
tar -xzf "$headers_tarball" -C "$staging" --no-same-owner --touch --wildcards "$headers_member/*.h"
tar -xzf "$library_tarball" -C "$staging" --no-same-owner --touch "$library_member"
mkdir -p "$staging/include" "$staging/lib"
mv "$staging/$headers_member"/*.h "$staging/include/"
mv "$staging/$library_member" "$staging/lib/libonnxruntime.so.$ort_version"
ln -s "libonnxruntime.so.$ort_version" "$staging/lib/libonnxruntime.so.1"
ln -s libonnxruntime.so.1 "$staging/lib/libonnxruntime.so"
rm -rf "$staging/package"

grep -q "^#define ORT_API_VERSION $ort_api_version\$" "$staging/include/onnxruntime_c_api.h" ||
  detflow_die "$package@$package_version does not hold the ONNX Runtime $ort_version headers (ORT_API_VERSION is not $ort_api_version)"
soname="$(objdump -p "$staging/lib/libonnxruntime.so.$ort_version" 2>/dev/null | awk '/SONAME/ {print $2}')"
[[ -z "$soname" || "$soname" == libonnxruntime.so.1 ]] ||
  detflow_die "libonnxruntime.so from $package@$package_version has SONAME $soname, expected libonnxruntime.so.1"

detflow_write_stamp "$staging/VERSION" "$expected_stamp"
chmod 755 "$staging"
previous="$target.previous.$$"
[[ ! -e "$target" ]] || mv "$target" "$previous"
mv "$staging" "$target"
rm -rf "$previous"
trap - EXIT

detflow_write_stamp "$headers_tarball.integrity" "$package_integrity"
rm -f "$headers_tarball"
if [[ "$library_tarball" != "$headers_tarball" ]]; then
  detflow_write_stamp "$library_tarball.integrity" "$library_package_integrity"
  rm -f "$library_tarball"
fi
detflow_info "ONNX Runtime $ort_version for $architecture installed in $target (integrity verified; the tarballs were deleted)"
