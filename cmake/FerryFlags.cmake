# Warnings and sanitizers for every Ferry target.
add_compile_options(-Wall -Wextra -Wpedantic)
if(FERRY_WERROR)
  add_compile_options(-Werror)
endif()
if(FERRY_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
elseif(FERRY_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT FERRY_SANITIZE STREQUAL "")
  message(FATAL_ERROR "FERRY_SANITIZE must be '', 'address' or 'thread'")
endif()

# ferry_rapidjson_sources(FILES...): the files that read with RapidJSON's SAX reader. RapidJSON
# 1.1.0, Debian's, computes `nullptr + n` in internal::Stack::Reserve at a new reader's first push
# (Tencent/rapidjson#1724, fixed upstream after 1.1.0 and never released), which Clang's UndefinedBehaviorSanitizer
# reports (pointer-overflow; the pointer is only compared, never used). Under the address sanitizer build these files
# are compiled without that one check; every other check stays on. Call it from the folder that adds the files.
function(ferry_rapidjson_sources)
  if(FERRY_SANITIZE STREQUAL "address")
    set_source_files_properties(${ARGN} PROPERTIES COMPILE_OPTIONS -fno-sanitize=pointer-overflow)
  endif()
endfunction()

# ferry_internal_library(NAME SOURCES... ) : a static, PIC, hidden-visibility library that goes into libferry.
function(ferry_internal_library name)
  add_library(${name} STATIC ${ARGN})
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  set_property(GLOBAL APPEND PROPERTY FERRY_INTERNAL_LIBS ${name})
endfunction()

# ferry_include_root(TARGET [DIR]): TARGET's headers are included by their path in the repository
# (#include "lib/base/status.h") through an include root that belongs to TARGET alone and holds nothing but its
# folder (DIR, default the current source folder): a symbolic link <build>/include_roots/TARGET/<path> -> the folder.
# A target sees the roots of the targets it links and nothing else, so an #include that runs against the layers
# (lib/wire including sdk/core, say) fails to compile. docs/ARCHITECTURE.md draws the layers.
function(ferry_include_root target)
  set(dir ${CMAKE_CURRENT_SOURCE_DIR})
  if(ARGC GREATER 1)
    get_filename_component(dir ${ARGV1} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
  endif()
  file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${dir})
  set(root ${PROJECT_BINARY_DIR}/include_roots/${target})
  get_filename_component(parent ${root}/${rel} DIRECTORY)
  file(MAKE_DIRECTORY ${parent})
  if(NOT IS_SYMLINK ${root}/${rel})
    file(CREATE_LINK ${dir} ${root}/${rel} SYMBOLIC)
  endif()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    target_include_directories(${target} INTERFACE ${root})
  else()
    target_include_directories(${target} PUBLIC ${root})
  endif()
endfunction()
