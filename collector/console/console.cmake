# The officer's console (docs/CONSOLE.md), built into ferry-collector: esbuild bundles src/ (TypeScript + Preact from
# node_modules, installed by `npm ci` in scripts/install-deps.sh) and embed.cmake turns the bundle, the style sheet and
# index.html into a C++ file of bytes (content-hashed names, no timestamps: the same sources give the same bytes).
# Included by collector/CMakeLists.txt; sets FERRY_CONSOLE_SOURCES for the HTTP library.
#
# With FERRY_CONSOLE=ON (the default) a missing esbuild or node_modules stops the configure with what to run; with
# -DFERRY_CONSOLE=OFF the collector is built without it (/console/ answers 404 and says so).
set(_console_dir ${CMAKE_CURRENT_SOURCE_DIR}/console)
if(NOT FERRY_CONSOLE)
  message(STATUS "console: off (FERRY_CONSOLE=OFF): ferry-collector is built without /console/")
  set(FERRY_CONSOLE_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/http/console_none.cc)
  return()
endif()

find_program(FERRY_ESBUILD NAMES esbuild)
find_program(FERRY_NODE NAMES node nodejs)
set(_console_missing "")
if(NOT FERRY_ESBUILD)
  string(APPEND _console_missing " esbuild (Debian package esbuild);")
endif()
if(NOT FERRY_NODE)
  string(APPEND _console_missing " node (Debian package nodejs);")
endif()
if(NOT EXISTS ${_console_dir}/node_modules/preact/package.json)
  string(APPEND _console_missing " collector/console/node_modules (npm ci);")
endif()
if(_console_missing)
  message(FATAL_ERROR "FERRY_CONSOLE=ON but missing:${_console_missing} run scripts/install-deps.sh (it installs "
                      "them and runs npm ci in collector/console), or configure with -DFERRY_CONSOLE=OFF to build "
                      "ferry-collector without the console")
endif()
execute_process(COMMAND ${FERRY_ESBUILD} --version OUTPUT_VARIABLE _esbuild_version OUTPUT_STRIP_TRAILING_WHITESPACE)
# The bundle is reproducible for one esbuild version; the committed screenshots and docs were made with Debian 12's.
if(NOT _esbuild_version MATCHES "^0\\.17\\.")
  message(WARNING "console: esbuild ${_esbuild_version}, not Debian 12's 0.17: the bundle's bytes will differ")
endif()
message(STATUS "console: on (esbuild ${_esbuild_version})")

file(GLOB _console_src CONFIGURE_DEPENDS ${_console_dir}/src/*.ts ${_console_dir}/src/*.tsx ${_console_dir}/src/*.css
     ${_console_dir}/src/*.html)
set(_console_cc ${CMAKE_CURRENT_BINARY_DIR}/console/console_assets.cc)
add_custom_command(
  OUTPUT ${_console_cc}
  COMMAND ${CMAKE_COMMAND} -DESBUILD=${FERRY_ESBUILD} -DSRC=${_console_dir} -DOUT_DIR=${CMAKE_CURRENT_BINARY_DIR}/console
          -P ${_console_dir}/embed.cmake
  DEPENDS ${_console_dir}/embed.cmake ${_console_dir}/tsconfig.json ${_console_dir}/package-lock.json ${_console_src}
  COMMENT "console: bundling collector/console with esbuild"
  VERBATIM)
set(FERRY_CONSOLE_SOURCES ${_console_cc})
