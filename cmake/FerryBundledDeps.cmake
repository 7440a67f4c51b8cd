# FerryBundledDeps.cmake — FERRY_BUNDLED_DEPS=ON: SQLCipher (with a crypto backend), zstd and libsodium built from
# source archives as static, position-independent libraries for the target (an Android NDK or Apple toolchain, or
# any cross toolchain), for targets without system packages. Included from the top-level CMakeLists.txt instead of
# the pkg-config look-ups; it defines the same targets: PkgConfig::ZSTD, PkgConfig::SQLCIPHER, PkgConfig::SODIUM
# (and ZLIB::ZLIB through find_package(ZLIB): every NDK and Apple SDK has zlib).
#
# NOT BUILT OR RUN ON THIS PROJECT'S CI: its machines have no internet and no archives. What CI checks is the
# configure logic (tests/scripts/bundled_deps_test.sh): missing archives and wrong hashes stop the configure with a
# message naming each archive, its expected SHA-256 and where to get it. docs/PLATFORMS.md says how to use it.
#
# Archives: FERRY_DEP_<NAME>_URL and FERRY_DEP_<NAME>_SHA256 for NAME in ZSTD, SODIUM, SQLCIPHER, OPENSSL (the
# crypto backend on every target but Apple's, which use CommonCrypto). The defaults are the upstream release URLs;
# FERRY_DEPS_ARCHIVE_DIR=<dir> makes every default a file <dir>/<archive name> instead (an offline build: put the
# archives there). A local archive is checked at configure time (present, hash); a remote one when it is downloaded.
# Cross builds: the autotools-built archives (libsodium, OpenSSL, SQLCipher) need FERRY_DEPS_HOST, the configure
# --host triple (e.g. aarch64-linux-android), and OpenSSL needs FERRY_DEPS_OPENSSL_TARGET (e.g. android-arm64,
# linux-aarch64, ios64-xcrun); native builds guess both. Building SQLCipher needs tclsh on the build machine.
include(ExternalProject)

set(_ferry_deps_names ZSTD SODIUM SQLCIPHER)
if(APPLE)
  set(FERRY_DEPS_SQLCIPHER_CRYPTO "commoncrypto" CACHE STRING "SQLCipher's crypto backend: commoncrypto or openssl")
else()
  set(FERRY_DEPS_SQLCIPHER_CRYPTO "openssl" CACHE STRING "SQLCipher's crypto backend: openssl")
endif()
if(NOT FERRY_DEPS_SQLCIPHER_CRYPTO MATCHES "^(openssl|commoncrypto)$" OR
   (FERRY_DEPS_SQLCIPHER_CRYPTO STREQUAL "commoncrypto" AND NOT APPLE))
  message(FATAL_ERROR "FERRY_DEPS_SQLCIPHER_CRYPTO must be openssl, or commoncrypto on Apple targets")
endif()
if(FERRY_DEPS_SQLCIPHER_CRYPTO STREQUAL "openssl")
  list(APPEND _ferry_deps_names OPENSSL)
endif()

set(FERRY_DEPS_ARCHIVE_DIR "" CACHE PATH "A folder holding the dependency archives (an offline build); empty: upstream URLs")

# ferry_dep_archive(NAME FILE UPSTREAM_URL SHA256): the cache variables FERRY_DEP_<NAME>_URL and _SHA256.
function(ferry_dep_archive name file upstream sha256)
  if(FERRY_DEPS_ARCHIVE_DIR)
    set(default_url ${FERRY_DEPS_ARCHIVE_DIR}/${file})
  else()
    set(default_url ${upstream})
  endif()
  set(FERRY_DEP_${name}_URL ${default_url} CACHE STRING "Where the ${name} source archive is (URL or local file)")
  set(FERRY_DEP_${name}_SHA256 ${sha256} CACHE STRING "The SHA-256 of the ${name} source archive")
  set(FERRY_DEP_${name}_UPSTREAM ${upstream} PARENT_SCOPE)
endfunction()

ferry_dep_archive(ZSTD zstd-1.5.6.tar.gz
  https://github.com/facebook/zstd/releases/download/v1.5.6/zstd-1.5.6.tar.gz
  8c29e06cf42aacc1eafc4077ae2ec6c6fcb96a626157e0593d5e82a34fd403c1)
ferry_dep_archive(SODIUM libsodium-1.0.20.tar.gz
  https://download.libsodium.org/libsodium/releases/libsodium-1.0.20.tar.gz
  ebb65ef6ca439333c2bb41a0c1990587288da07f6c7fd07cb3a18cc18d30ce19)
ferry_dep_archive(SQLCIPHER sqlcipher-4.6.1.tar.gz
  https://github.com/sqlcipher/sqlcipher/archive/refs/tags/v4.6.1.tar.gz
  d8f9afcbc2f4b55e316ca4ada4425daf3d0b4aab25f45e11a802ae422b9f53a3)
ferry_dep_archive(OPENSSL openssl-3.0.15.tar.gz
  https://github.com/openssl/openssl/releases/download/openssl-3.0.15/openssl-3.0.15.tar.gz
  23c666d0edf20f14249b3d8f0368acaee9ab585b09e1de82107c66e1f3ec9533)

# Every archive checked before anything is built: a hash of 64 hex digits; a local file present and matching it.
# All problems are reported together.
set(_ferry_deps_problems "")
foreach(_n IN LISTS _ferry_deps_names)
  set(_url "${FERRY_DEP_${_n}_URL}")
  set(_sha "${FERRY_DEP_${_n}_SHA256}")
  string(TOLOWER "${_sha}" _sha)
  if(NOT _sha MATCHES "^[0-9a-f]+$")
    string(APPEND _ferry_deps_problems "\n  ${_n}: FERRY_DEP_${_n}_SHA256 is not a SHA-256 (64 hex digits): '${_sha}'")
    continue()
  endif()
  string(LENGTH "${_sha}" _len)
  if(NOT _len EQUAL 64)
    string(APPEND _ferry_deps_problems "\n  ${_n}: FERRY_DEP_${_n}_SHA256 is not a SHA-256 (64 hex digits): '${_sha}'")
    continue()
  endif()
  if(_url MATCHES "^(https?|ftp)://")
    continue()
  endif()
  string(REGEX REPLACE "^file://" "" _file "${_url}")
  if(NOT EXISTS "${_file}")
    string(APPEND _ferry_deps_problems
           "\n  ${_n}: archive missing: ${_file}\n      expected SHA-256 ${_sha}; get it from ${FERRY_DEP_${_n}_UPSTREAM}")
    continue()
  endif()
  file(SHA256 "${_file}" _got)
  if(NOT _got STREQUAL _sha)
    string(APPEND _ferry_deps_problems
           "\n  ${_n}: ${_file} has SHA-256 ${_got}, expected ${_sha} (FERRY_DEP_${_n}_SHA256)")
  endif()
endforeach()
if(_ferry_deps_problems)
  message(FATAL_ERROR "FERRY_BUNDLED_DEPS: the dependency archives are not usable:${_ferry_deps_problems}\n"
                      "Put the archives in FERRY_DEPS_ARCHIVE_DIR, or point FERRY_DEP_<NAME>_URL/_SHA256 at others "
                      "(docs/PLATFORMS.md, Dependencies from source).")
endif()

# The toolchain, handed to the dependencies' own builds.
set(_ferry_deps_prefix ${PROJECT_BINARY_DIR}/deps)
file(MAKE_DIRECTORY ${_ferry_deps_prefix}/include ${_ferry_deps_prefix}/include/sqlcipher ${_ferry_deps_prefix}/lib)
set(_ferry_deps_cc "${CMAKE_C_COMPILER}")
if(CMAKE_C_COMPILER_TARGET)
  string(APPEND _ferry_deps_cc " --target=${CMAKE_C_COMPILER_TARGET}")
endif()
if(CMAKE_SYSROOT)
  string(APPEND _ferry_deps_cc " --sysroot=${CMAKE_SYSROOT}")
endif()
if(APPLE AND CMAKE_OSX_SYSROOT)
  string(APPEND _ferry_deps_cc " -isysroot ${CMAKE_OSX_SYSROOT}")
endif()
if(APPLE AND CMAKE_OSX_ARCHITECTURES)
  foreach(_a IN LISTS CMAKE_OSX_ARCHITECTURES)
    string(APPEND _ferry_deps_cc " -arch ${_a}")
  endforeach()
endif()
set(_ferry_deps_cflags "-O2 -fPIC -fvisibility=hidden")
set(FERRY_DEPS_HOST "" CACHE STRING "configure --host triple for the dependencies' autotools builds (cross builds)")
if(CMAKE_CROSSCOMPILING AND NOT FERRY_DEPS_HOST)
  if(CMAKE_C_COMPILER_TARGET)
    set(FERRY_DEPS_HOST ${CMAKE_C_COMPILER_TARGET})
  elseif(CMAKE_LIBRARY_ARCHITECTURE)
    set(FERRY_DEPS_HOST ${CMAKE_LIBRARY_ARCHITECTURE})
  else()
    message(FATAL_ERROR "FERRY_BUNDLED_DEPS in a cross build needs FERRY_DEPS_HOST (e.g. aarch64-linux-android)")
  endif()
endif()
set(_ferry_deps_host_arg "")
if(FERRY_DEPS_HOST)
  set(_ferry_deps_host_arg --host=${FERRY_DEPS_HOST})
endif()
set(_ferry_deps_env ${CMAKE_COMMAND} -E env "CC=${_ferry_deps_cc}" "AR=${CMAKE_AR}" "RANLIB=${CMAKE_RANLIB}"
                    "CFLAGS=${_ferry_deps_cflags}")
# The dependencies' own CMake builds (zstd) get the same toolchain.
set(_ferry_deps_cmake_args -DCMAKE_INSTALL_PREFIX=${_ferry_deps_prefix} -DCMAKE_INSTALL_LIBDIR=lib
                           -DCMAKE_BUILD_TYPE=Release -DCMAKE_POSITION_INDEPENDENT_CODE=ON
                           -DCMAKE_C_VISIBILITY_PRESET=hidden)
foreach(_v CMAKE_TOOLCHAIN_FILE CMAKE_C_COMPILER CMAKE_C_COMPILER_TARGET CMAKE_SYSROOT CMAKE_OSX_SYSROOT
           CMAKE_OSX_ARCHITECTURES CMAKE_OSX_DEPLOYMENT_TARGET CMAKE_SYSTEM_NAME ANDROID_ABI ANDROID_PLATFORM
           ANDROID_NDK FERRY_CROSS_SYSROOT)
  if(DEFINED ${_v} AND NOT "${${_v}}" STREQUAL "")
    string(REPLACE ";" "$<SEMICOLON>" _val "${${_v}}")
    list(APPEND _ferry_deps_cmake_args "-D${_v}=${_val}")
  endif()
endforeach()

# zstd: its CMake build, the library only.
ExternalProject_Add(ferry_dep_zstd_build
  URL "${FERRY_DEP_ZSTD_URL}" URL_HASH SHA256=${FERRY_DEP_ZSTD_SHA256} DOWNLOAD_EXTRACT_TIMESTAMP ON
  SOURCE_SUBDIR build/cmake
  CMAKE_ARGS ${_ferry_deps_cmake_args} -DZSTD_BUILD_PROGRAMS=OFF -DZSTD_BUILD_TESTS=OFF -DZSTD_BUILD_SHARED=OFF
             -DZSTD_BUILD_STATIC=ON -DZSTD_LEGACY_SUPPORT=OFF
  BUILD_BYPRODUCTS ${_ferry_deps_prefix}/lib/libzstd.a)

# libsodium: autotools.
ExternalProject_Add(ferry_dep_sodium_build
  URL "${FERRY_DEP_SODIUM_URL}" URL_HASH SHA256=${FERRY_DEP_SODIUM_SHA256} DOWNLOAD_EXTRACT_TIMESTAMP ON
  CONFIGURE_COMMAND ${_ferry_deps_env} <SOURCE_DIR>/configure ${_ferry_deps_host_arg} --prefix=${_ferry_deps_prefix}
                    --libdir=${_ferry_deps_prefix}/lib --disable-shared --enable-static --with-pic --disable-pie
  BUILD_COMMAND make
  INSTALL_COMMAND make install
  BUILD_BYPRODUCTS ${_ferry_deps_prefix}/lib/libsodium.a)

# SQLCipher's crypto backend: OpenSSL's libcrypto (static), or Apple's CommonCrypto (in the SDK).
set(_ferry_sqlcipher_deps "")
if(FERRY_DEPS_SQLCIPHER_CRYPTO STREQUAL "openssl")
  set(FERRY_DEPS_OPENSSL_TARGET "" CACHE STRING "OpenSSL's Configure target (android-arm64, linux-aarch64, ...)")
  set(_ossl_target ${FERRY_DEPS_OPENSSL_TARGET})
  if(NOT _ossl_target)
    if(CMAKE_CROSSCOMPILING)
      message(FATAL_ERROR "FERRY_BUNDLED_DEPS in a cross build needs FERRY_DEPS_OPENSSL_TARGET (OpenSSL's Configure "
                          "target: android-arm64, android-arm, android-x86_64, linux-aarch64, ...)")
    endif()
    set(_ossl_target "")  # native: OpenSSL's config guesses
  endif()
  ExternalProject_Add(ferry_dep_openssl_build
    URL "${FERRY_DEP_OPENSSL_URL}" URL_HASH SHA256=${FERRY_DEP_OPENSSL_SHA256} DOWNLOAD_EXTRACT_TIMESTAMP ON
    BUILD_IN_SOURCE ON
    CONFIGURE_COMMAND ${_ferry_deps_env} perl <SOURCE_DIR>/Configure ${_ossl_target} no-shared no-tests no-apps
                      no-engine no-dso --prefix=${_ferry_deps_prefix} --libdir=lib
    BUILD_COMMAND make build_libs
    INSTALL_COMMAND make install_dev
    BUILD_BYPRODUCTS ${_ferry_deps_prefix}/lib/libcrypto.a)
  set(_ferry_sqlcipher_deps ferry_dep_openssl_build)
  set(_ferry_sqlcipher_cflags "${_ferry_deps_cflags} -DSQLITE_HAS_CODEC -DSQLCIPHER_CRYPTO_OPENSSL -I${_ferry_deps_prefix}/include")
  set(_ferry_sqlcipher_ldflags "-L${_ferry_deps_prefix}/lib")
  set(_ferry_sqlcipher_libs "-lcrypto")
  set(_ferry_sqlcipher_crypto_arg "")
else()
  set(_ferry_sqlcipher_cflags "${_ferry_deps_cflags} -DSQLITE_HAS_CODEC -DSQLCIPHER_CRYPTO_CC")
  set(_ferry_sqlcipher_ldflags "")
  set(_ferry_sqlcipher_libs "-framework Security -framework CoreFoundation")
  set(_ferry_sqlcipher_crypto_arg --with-crypto-lib=commoncrypto)
endif()

# SQLCipher: autotools (its build makes the amalgamation with tclsh).
ExternalProject_Add(ferry_dep_sqlcipher_build
  URL "${FERRY_DEP_SQLCIPHER_URL}" URL_HASH SHA256=${FERRY_DEP_SQLCIPHER_SHA256} DOWNLOAD_EXTRACT_TIMESTAMP ON
  DEPENDS ${_ferry_sqlcipher_deps}
  CONFIGURE_COMMAND ${CMAKE_COMMAND} -E env "CC=${_ferry_deps_cc}" "AR=${CMAKE_AR}" "RANLIB=${CMAKE_RANLIB}"
                    "CFLAGS=${_ferry_sqlcipher_cflags}" "LDFLAGS=${_ferry_sqlcipher_ldflags}" "LIBS=${_ferry_sqlcipher_libs}"
                    <SOURCE_DIR>/configure ${_ferry_deps_host_arg} --prefix=${_ferry_deps_prefix}
                    --libdir=${_ferry_deps_prefix}/lib --disable-shared --enable-static --with-pic --disable-tcl
                    --enable-tempstore=yes --disable-readline ${_ferry_sqlcipher_crypto_arg}
  BUILD_COMMAND make
  INSTALL_COMMAND make install
  BUILD_BYPRODUCTS ${_ferry_deps_prefix}/lib/libsqlcipher.a)

# The targets the rest of the build links, under the names the pkg-config path gives them.
add_library(ferry_dep_zstd INTERFACE)
target_include_directories(ferry_dep_zstd INTERFACE ${_ferry_deps_prefix}/include)
target_link_libraries(ferry_dep_zstd INTERFACE ${_ferry_deps_prefix}/lib/libzstd.a)
add_dependencies(ferry_dep_zstd ferry_dep_zstd_build)
add_library(PkgConfig::ZSTD ALIAS ferry_dep_zstd)

add_library(ferry_dep_sodium INTERFACE)
target_include_directories(ferry_dep_sodium INTERFACE ${_ferry_deps_prefix}/include)
target_compile_definitions(ferry_dep_sodium INTERFACE SODIUM_STATIC)
target_link_libraries(ferry_dep_sodium INTERFACE ${_ferry_deps_prefix}/lib/libsodium.a)
add_dependencies(ferry_dep_sodium ferry_dep_sodium_build)
add_library(PkgConfig::SODIUM ALIAS ferry_dep_sodium)

add_library(ferry_dep_sqlcipher INTERFACE)
target_include_directories(ferry_dep_sqlcipher INTERFACE ${_ferry_deps_prefix}/include/sqlcipher
                                                          ${_ferry_deps_prefix}/include)
target_link_libraries(ferry_dep_sqlcipher INTERFACE ${_ferry_deps_prefix}/lib/libsqlcipher.a)
if(FERRY_DEPS_SQLCIPHER_CRYPTO STREQUAL "openssl")
  target_link_libraries(ferry_dep_sqlcipher INTERFACE ${_ferry_deps_prefix}/lib/libcrypto.a ${CMAKE_DL_LIBS})
else()
  target_link_libraries(ferry_dep_sqlcipher INTERFACE "-framework Security" "-framework CoreFoundation")
endif()
target_link_libraries(ferry_dep_sqlcipher INTERFACE Threads::Threads m)
add_dependencies(ferry_dep_sqlcipher ferry_dep_sqlcipher_build)
add_library(PkgConfig::SQLCIPHER ALIAS ferry_dep_sqlcipher)

find_package(ZLIB REQUIRED)
