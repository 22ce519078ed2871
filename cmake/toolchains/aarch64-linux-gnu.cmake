# Cross-compiling detflow for 64-bit ARM Debian 12 (Raspberry Pi OS bookworm, other arm64
# boards) on an x86-64 Debian 12 machine.
#
# Compilers: Debian's crossbuild-essential-arm64 (aarch64-linux-gnu-gcc/g++ 12).
# Libraries and headers: an arm64 Debian 12 root made by scripts/arm64-sysroot.sh (the same
# -dev packages as a native build, extracted, nothing run); its path comes from
# DETFLOW_ARM64_SYSROOT. Debian's arm64 -dev packages cannot be installed next to the amd64
# ones (libopencv-dev and others are not co-installable across architectures), hence the
# separate root.
# Tests run under user-mode emulation: CMAKE_CROSSCOMPILING_EMULATOR is qemu-aarch64-static
# with the root as its library prefix, so ctest and gtest_discover_tests run the arm64
# executables transparently.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

if(NOT DEFINED ENV{DETFLOW_ARM64_SYSROOT} AND NOT DEFINED DETFLOW_ARM64_SYSROOT)
  message(FATAL_ERROR "DETFLOW_ARM64_SYSROOT is not set: run scripts/arm64-sysroot.sh (make test PRESET=arm64 does)")
endif()
if(NOT DEFINED DETFLOW_ARM64_SYSROOT)
  set(DETFLOW_ARM64_SYSROOT "$ENV{DETFLOW_ARM64_SYSROOT}")
endif()
set(DETFLOW_ARM64_SYSROOT "${DETFLOW_ARM64_SYSROOT}" CACHE PATH "arm64 Debian 12 root with detflow's -dev packages")
set(CMAKE_SYSROOT "${DETFLOW_ARM64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH "${DETFLOW_ARM64_SYSROOT}")
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# Programs (protoc, pkg-config) from the build machine; everything else from the root.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(ENV{PKG_CONFIG_SYSROOT_DIR} "${DETFLOW_ARM64_SYSROOT}")
set(ENV{PKG_CONFIG_LIBDIR}
    "${DETFLOW_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${DETFLOW_ARM64_SYSROOT}/usr/share/pkgconfig")

# The root's shared libraries name their own dependencies (DT_NEEDED) without a path; the
# linker looks for those in the root only where -rpath-link says.
set(CMAKE_EXE_LINKER_FLAGS_INIT
    "-Wl,-rpath-link,${DETFLOW_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu -Wl,-rpath-link,${DETFLOW_ARM64_SYSROOT}/usr/lib")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "${CMAKE_EXE_LINKER_FLAGS_INIT}")

find_program(DETFLOW_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64 REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR "${DETFLOW_QEMU_AARCH64};-L;${DETFLOW_ARM64_SYSROOT}")
