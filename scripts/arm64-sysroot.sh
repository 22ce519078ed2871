#!/usr/bin/env bash
# scripts/arm64-sysroot.sh — what the arm64 preset (make test PRESET=arm64) builds and runs with.
#
# On an x86-64 Debian 12 machine:
#   - the cross compilers and the emulator from Debian: crossbuild-essential-arm64
#     (aarch64-linux-gnu-g++ 12), qemu-user-static (runs arm64 executables), mmdebstrap;
#   - an arm64 Debian 12 root in $DETFLOW_CACHE_DIR/arm64-sysroot holding the same -dev
#     packages as a native build (scripts/install-system-packages.sh --list-libraries) plus
#     the GStreamer plugins the tests decode with. Debian's arm64 -dev packages cannot be
#     installed beside the amd64 ones (libopencv-dev is not co-installable), so they are
#     extracted into their own root (mmdebstrap --variant=extract: nothing is run);
#   - ONNX Runtime for Linux arm64 (scripts/fetch-onnxruntime.sh with DETFLOW_ARCH=aarch64,
#     integrity pinned there), copied into the root at /opt/onnxruntime, where the
#     cross build finds it and the emulator's library prefix (-L root) serves it.
# cmake/toolchains/aarch64-linux-gnu.cmake uses the root (DETFLOW_ARM64_SYSROOT).
#
# Idempotent: a stamp with the package list and the ONNX Runtime stamp skips all work.
# Needs about 2 GB of disk and, the first time, 600 MB of downloads from Debian's archive.
#
# Prints the root's path on standard output (the rest goes to standard error).
set -euo pipefail
scripts="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
source "$scripts/lib/common.sh"

case "$(uname -m)" in
  aarch64 | arm64)
    detflow_die "this machine is arm64 already: build natively (make test), no cross root is needed"
    ;;
esac

root="$DETFLOW_CACHE_DIR/arm64-sysroot"
readonly -a host_tools=(crossbuild-essential-arm64 qemu-user-static mmdebstrap)
mapfile -t libraries < <("$scripts/install-system-packages.sh" --list-libraries)
# Run-time pieces the tests need inside the root: decoders and muxers for the source and
# video sink tests, and the C/C++ runtime headers the cross compiler reads from the root.
readonly -a runtime=(libc6-dev libstdc++-12-dev gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav)

missing=()
for tool in "${host_tools[@]}"; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$tool" 2>/dev/null | grep -q '^ii' || missing+=("$tool")
done
if ((${#missing[@]})); then
  detflow_info "installing the cross tools: ${missing[*]}"
  as_root=()
  if [[ "$(id -u)" != 0 ]]; then as_root=(sudo -n); fi
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -q >&2 || detflow_die "apt-get update failed; as root run: apt-get install ${missing[*]}"
  "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
    detflow_die "apt-get install failed for: ${missing[*]}"
fi

# ONNX Runtime for arm64 in a cache folder of its own (the x86-64 one stays where it is).
arm64_cache="$DETFLOW_CACHE_DIR/arm64"
DETFLOW_ARCH=aarch64 DETFLOW_CACHE_DIR="$arm64_cache" "$scripts/fetch-onnxruntime.sh" >&2
ort_stamp=""
[[ -f "$arm64_cache/onnxruntime/VERSION" ]] && ort_stamp="$(cat "$arm64_cache/onnxruntime/VERSION")"

packages="$(printf '%s\n' "${libraries[@]}" "${runtime[@]}" | sort -u | paste -sd, -)"
expected_stamp="debian bookworm arm64 (alternatives linked)
packages $packages
$ort_stamp"
# Under qemu-user, an arm64 program reading /proc/cpuinfo gets the x86 host's, which ONNX
# Runtime's CPU detection (pytorch/cpuinfo) cannot parse: it dereferences NULL while loading
# (every test that links ONNX Runtime crashed while listing its tests). qemu's -L prefix is
# looked at first for every absolute path, so a cpuinfo in the root is what the emulated
# programs read: a Raspberry Pi 5's (Cortex-A76, implementer 0x41 part 0xd0b), one entry per
# host core. Only emulated runs read it; a real arm64 machine never sees this root.
write_emulated_cpuinfo() {
  local folder="$1/proc" core
  mkdir -p "$folder"
  for ((core = 0; core < $(nproc); core++)); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n' "$core"
  done >"$folder/cpuinfo"
}

if detflow_stamp_matches "$root/.detflow-stamp" "$expected_stamp"; then
  write_emulated_cpuinfo "$root"
  detflow_info "the arm64 root is in $root"
  printf '%s\n' "$root"
  exit 0
fi

detflow_info "making the arm64 Debian 12 root in $root (about 600 MB of packages; a few minutes)"
staging="$(mktemp -d "$DETFLOW_CACHE_DIR/arm64-sysroot.staging.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
rmdir "$staging"  # mmdebstrap wants to create the folder itself
mmdebstrap --quiet --mode=root --variant=extract --arch=arm64 --include="$packages" bookworm "$staging" >&2 ||
  detflow_die "mmdebstrap could not make the arm64 root (see above)"
# Nothing was configured, so the links that update-alternatives makes on a real system are
# missing: libblas.so.3 and liblapack.so.3 (OpenCV's core needs both) live in subfolders.
for alternative in blas lapack; do
  for library in "$staging/usr/lib/aarch64-linux-gnu/$alternative"/lib*.so*; do
    [[ -e "$library" ]] || continue
    link="$staging/usr/lib/aarch64-linux-gnu/$(basename "$library")"
    [[ -e "$link" ]] || ln -s "$alternative/$(basename "$library")" "$link"
  done
done
if [[ -f "$arm64_cache/onnxruntime/VERSION" ]]; then
  mkdir -p "$staging/opt"
  cp -a "$arm64_cache/onnxruntime" "$staging/opt/onnxruntime"
else
  detflow_warn "no ONNX Runtime for arm64: the arm64 build has the OpenCV DNN engine only"
fi
write_emulated_cpuinfo "$staging"
detflow_write_stamp "$staging/.detflow-stamp" "$expected_stamp"
previous="$root.previous.$$"
[[ ! -e "$root" ]] || mv "$root" "$previous"
mv "$staging" "$root"
rm -rf "$previous"
trap - EXIT
detflow_info "the arm64 root is ready in $root"
printf '%s\n' "$root"
