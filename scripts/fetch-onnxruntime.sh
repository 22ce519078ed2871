#!/usr/bin/env bash
# scripts/fetch-onnxruntime.sh — ONNX Runtime's C/C++ API for the onnxruntime engine.
#
# Debian 12 packages no ONNX Runtime. The npm package com.github.asus4.onnxruntime ships
# the official release binaries (the Linux x64 libonnxruntime.so and the platform
# independent C/C++ API headers); this script takes those two things from it and lays
# them out like an official release, which cmake/FindOnnxRuntime.cmake finds:
#
#   $DETFLOW_CACHE_DIR/onnxruntime/
#     include/onnxruntime_c_api.h, onnxruntime_cxx_api.h, ...
#     lib/libonnxruntime.so.1.29.0
#     lib/libonnxruntime.so.1 -> libonnxruntime.so.1.29.0   (the library's SONAME, what
#     lib/libonnxruntime.so   -> libonnxruntime.so.1         the executables load)
#     VERSION                 (stamp: version, package, integrity; a match skips all work)
#   $DETFLOW_CACHE_DIR/downloads/com.github.asus4.onnxruntime-0.4.9.tgz.integrity
#
# The tarball (150 MB) is verified against the registry and the pin below, extracted and
# deleted. ONNX Runtime is optional: when the registry cannot be reached this prints one
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

readonly ort_version=1.29.0
readonly ort_api_version=29
readonly package=com.github.asus4.onnxruntime
readonly package_version=0.4.9
readonly package_integrity='sha512-BkzxduSZ9IkeDP6Q8lz2TFU2ie7hSSvS7ZIfzMooExoq0CNzJnuuGaUJ7IsojBgqO4ouD1jXah8OYyJbCN29Fg=='
readonly library_member=package/Plugins/Linux/x64/libonnxruntime.so
readonly headers_member='package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers'

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
if detflow_stamp_matches "$target/VERSION" "$expected_stamp" &&
  [[ -f "$target/include/onnxruntime_cxx_api.h" && -f "$target/lib/libonnxruntime.so.$ort_version" &&
    -L "$target/lib/libonnxruntime.so.1" && -L "$target/lib/libonnxruntime.so" ]]; then
  detflow_info "ONNX Runtime $ort_version is in $target"
  exit 0
fi

mkdir -p "$DETFLOW_DOWNLOADS_DIR"
status=0
detflow_npm_fetch "$package" "$package_version" "$package_integrity" "$DETFLOW_DOWNLOADS_DIR" || status=$?
if ((status == 2)); then
  echo "fetch-onnxruntime: ONNX Runtime is not available ($DETFLOW_NPM_FAILURE): the build continues with the OpenCV engine only" >&2
  exit 0
elif ((status != 0)); then
  exit "$status"
fi
tarball="$DETFLOW_NPM_TARBALL"

# Assemble next to the target, then swap whole folders (--touch dates the files now, so
# Ninja relinks what was linked against a previous copy): a build that is linking against
# the old copy at this moment keeps its open files, and nobody ever sees a half-extracted
# folder with a valid stamp.
staging="$(mktemp -d "$DETFLOW_CACHE_DIR/onnxruntime.staging.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
tar -xzf "$tarball" -C "$staging" --no-same-owner --touch --wildcards "$library_member" "$headers_member/*.h"
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

detflow_write_stamp "$tarball.integrity" "$package_integrity"
rm -f "$tarball"
detflow_info "ONNX Runtime $ort_version installed in $target (integrity verified; the tarball was deleted)"
