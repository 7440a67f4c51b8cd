# Cross build for 64-bit ARM Linux with Debian's cross toolchain (docs/PLATFORMS.md):
#   cmake -S . -B build/cross-curl -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake ...
# Needs gcc-aarch64-linux-gnu and g++-aarch64-linux-gnu, and the arm64 libraries through Debian's multi-arch
# (dpkg --add-architecture arm64; libcurl4-openssl-dev:arm64 libzstd-dev:arm64 libsodium-dev:arm64 zlib1g-dev:arm64
# libgtest-dev:arm64): scripts/install-deps.sh --group cross installs them. SQLCipher's -dev package is not
# multi-arch (installing the arm64 one removes the native one), so its arm64 files come from a sysroot made by
# scripts/cross-sysroot.sh: pass -DFERRY_CROSS_SYSROOT=<dir> (its pkg-config files are searched first).
# Programs and tests run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR: qemu-aarch64-static), with the arm64
# loader and libraries that multi-arch put under / and the sysroot's libraries on LD_LIBRARY_PATH (no -L: with -L
# and multi-arch libraries threaded programs can hang).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(FERRY_CROSS_TRIPLE aarch64-linux-gnu)

set(CMAKE_C_COMPILER ${FERRY_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${FERRY_CROSS_TRIPLE}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${FERRY_CROSS_TRIPLE})

# The sysroot with SQLCipher's arm64 files (optional; also read from the environment so try_compile sees it).
if(NOT FERRY_CROSS_SYSROOT AND DEFINED ENV{FERRY_CROSS_SYSROOT})
  set(FERRY_CROSS_SYSROOT $ENV{FERRY_CROSS_SYSROOT})
endif()
if(FERRY_CROSS_SYSROOT)
  set(ENV{FERRY_CROSS_SYSROOT} ${FERRY_CROSS_SYSROOT})
endif()
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES FERRY_CROSS_SYSROOT)

# pkg-config: only arm64 .pc files (never the build machine's), the sysroot's first.
set(_ferry_pc_dirs /usr/lib/${FERRY_CROSS_TRIPLE}/pkgconfig /usr/share/pkgconfig)
if(FERRY_CROSS_SYSROOT)
  list(PREPEND _ferry_pc_dirs ${FERRY_CROSS_SYSROOT}/pkgconfig)
endif()
list(JOIN _ferry_pc_dirs ":" _ferry_pc_libdir)
set(ENV{PKG_CONFIG_LIBDIR} ${_ferry_pc_libdir})
set(ENV{PKG_CONFIG_PATH} "")

# Libraries and headers: the cross compiler's own search path (Debian's multi-arch layout), then the sysroot.
set(CMAKE_FIND_ROOT_PATH / ${FERRY_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# The tools that read target binaries (tests/c_api/check_exports.cmake).
find_program(CMAKE_NM NAMES ${FERRY_CROSS_TRIPLE}-nm nm)
find_program(CMAKE_READELF NAMES ${FERRY_CROSS_TRIPLE}-readelf readelf)

# Running target programs (ctest, gtest_discover_tests).
find_program(FERRY_QEMU NAMES qemu-aarch64-static qemu-aarch64)
if(FERRY_QEMU)
  set(_ferry_emulator ${FERRY_QEMU})
  if(FERRY_CROSS_SYSROOT)
    list(APPEND _ferry_emulator -E LD_LIBRARY_PATH=${FERRY_CROSS_SYSROOT}/usr/lib/${FERRY_CROSS_TRIPLE})
  endif()
  set(CMAKE_CROSSCOMPILING_EMULATOR ${_ferry_emulator})
endif()
