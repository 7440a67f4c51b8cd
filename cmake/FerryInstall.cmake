# FerryInstall.cmake — install layout, CMake package config and pkg-config file. Included once, at the end of the
# top-level CMakeLists.txt (after every target exists).
#
#   <prefix>/include/ferry/{ferry.h,ferry.hpp}          (sdk/CMakeLists.txt)
#   <prefix>/<libdir>/libferry.so.MAJOR.MINOR.PATCH, libferry.so.MAJOR, libferry.so, libferry.a
#   <prefix>/<libdir>/cmake/Ferry/FerryConfig.cmake, FerryConfigVersion.cmake, FerryTargets*.cmake
#   <prefix>/<libdir>/pkgconfig/ferry.pc
#   <prefix>/share/doc/ferry/{LICENSE,CHANGELOG.md}
#   <prefix>/bin/ferry-collector, ferryctl, ferry-agent  (when those targets are part of the build)
#
# find_package(Ferry) gives Ferry::ferry (the shared library) and, when its dependencies are found on the consumer's
# machine, Ferry::ferry_static (libferry.a + curl, SQLCipher, libsodium, zstd, zlib, threads, libstdc++).
include(CMakePackageConfigHelpers)

set(FERRY_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/Ferry CACHE STRING "Where FerryConfig.cmake is installed")
set(FERRY_INSTALL_PKGCONFIGDIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig CACHE STRING "Where ferry.pc is installed")

install(EXPORT FerryTargets NAMESPACE Ferry:: DESTINATION ${FERRY_INSTALL_CMAKEDIR} COMPONENT development)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/FerryConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/FerryConfig.cmake
                              INSTALL_DESTINATION ${FERRY_INSTALL_CMAKEDIR}
                              PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR)
# 0.x: only the same minor version is compatible; from 1.0 on, the same major.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(_ferry_compat SameMinorVersion)
else()
  set(_ferry_compat SameMajorVersion)
endif()
write_basic_package_version_file(${PROJECT_BINARY_DIR}/FerryConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY ${_ferry_compat})
install(FILES ${PROJECT_BINARY_DIR}/FerryConfig.cmake ${PROJECT_BINARY_DIR}/FerryConfigVersion.cmake
        DESTINATION ${FERRY_INSTALL_CMAKEDIR} COMPONENT development)

# ferry.pc is relocatable: its prefix is found from the file's own place (${pcfiledir}), so
# `cmake --install <build> --prefix <anywhere>` gives a working file.
file(RELATIVE_PATH _ferry_pc_to_prefix /__prefix__/${FERRY_INSTALL_PKGCONFIGDIR} /__prefix__)
string(REGEX REPLACE "/$" "" FERRY_PC_PREFIX "\${pcfiledir}/${_ferry_pc_to_prefix}")
set(FERRY_PC_LIBS_PRIVATE "-lsqlcipher -lsodium -lzstd -lz")
if(FERRY_TRANSPORT STREQUAL "curl")
  string(APPEND FERRY_PC_LIBS_PRIVATE " -lcurl")
endif()
string(APPEND FERRY_PC_LIBS_PRIVATE " -lstdc++ -lm -pthread")
configure_file(${PROJECT_SOURCE_DIR}/cmake/ferry.pc.in ${PROJECT_BINARY_DIR}/ferry.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ferry.pc DESTINATION ${FERRY_INSTALL_PKGCONFIGDIR} COMPONENT development)

# The licence (Apache-2.0) and the changes, beside the agent's example config.
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE ${PROJECT_SOURCE_DIR}/CHANGELOG.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/ferry COMPONENT runtime)

# The daemons and the admin tool, when this build has them. OPTIONAL: a tree where they were not built still installs
# the SDK.
set(FERRY_INSTALLED_PROGRAMS "")
foreach(_t ferry-collector ferryctl ferry-agent)
  if(TARGET ${_t})
    list(APPEND FERRY_INSTALLED_PROGRAMS ${_t})
  endif()
endforeach()
if(FERRY_INSTALLED_PROGRAMS)
  install(TARGETS ${FERRY_INSTALLED_PROGRAMS} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT server OPTIONAL)
endif()

# Everything `cmake --install` copies, built in one go (tests/install builds this before installing).
add_custom_target(ferry_install_deps)
add_dependencies(ferry_install_deps ferry ferry_static ${FERRY_INSTALLED_PROGRAMS})

# The install test (tests/install) lives with the install rules; tests/CMakeLists.txt does not know that folder.
# Not in a cross build: it compiles and runs consumers with the host's compiler.
if(FERRY_BUILD_TESTS AND NOT CMAKE_CROSSCOMPILING AND EXISTS ${PROJECT_SOURCE_DIR}/tests/install/CMakeLists.txt)
  add_subdirectory(${PROJECT_SOURCE_DIR}/tests/install ${PROJECT_BINARY_DIR}/tests/install)
endif()
