# FerryDocs.cmake — the API reference: `cmake --build <build> --target docs` runs Doxygen over the public headers
# (docs/api/Doxyfile.in) into <build>/docs/html/, and Javadoc over the Java binding into <build>/docs/java/ when
# the binding is built. Not part of `all`; without doxygen the target is absent. The Python reference is the
# package's docstrings (`python3 -m pydoc ferry` with PYTHONPATH=bindings/python).
find_package(Doxygen QUIET)
find_program(FERRY_PYTHON3 NAMES python3)
if(DOXYGEN_FOUND AND FERRY_PYTHON3)
  set(FERRY_DOCS_OUTPUT ${PROJECT_BINARY_DIR}/docs)
  configure_file(${PROJECT_SOURCE_DIR}/docs/api/Doxyfile.in ${PROJECT_BINARY_DIR}/Doxyfile @ONLY)
  add_custom_target(docs
                    COMMAND ${CMAKE_COMMAND} -E make_directory ${FERRY_DOCS_OUTPUT}
                    COMMAND ${DOXYGEN_EXECUTABLE} ${PROJECT_BINARY_DIR}/Doxyfile
                    COMMAND ${CMAKE_COMMAND} -E echo "API reference: ${FERRY_DOCS_OUTPUT}/html/index.html"
                    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                    COMMENT "Doxygen: the API reference of ferry.h and ferry.hpp"
                    VERBATIM)
  # The Java binding's reference (Javadoc) beside it, when the binding is built: <build>/docs/java/.
  if(TARGET ferry_java AND Java_JAVADOC_EXECUTABLE)
    add_custom_target(docs_java
                      COMMAND ${Java_JAVADOC_EXECUTABLE} -quiet -Xdoclint:none -d ${FERRY_DOCS_OUTPUT}/java
                              -sourcepath ${PROJECT_SOURCE_DIR}/bindings/java/src io.ferry
                      COMMENT "Javadoc: the Java binding (io.ferry)"
                      VERBATIM)
    add_dependencies(docs docs_java)
  endif()
else()
  message(STATUS "API reference (target docs) skipped: doxygen or python3 not found")
endif()

# The reference builds and holds the headers' documentation (a comment of ferry.h and one of ferry.hpp). Not in a cross
# build (a host tool over the same headers: the native build runs it).
if(DOXYGEN_FOUND AND FERRY_PYTHON3 AND FERRY_BUILD_TESTS AND NOT CMAKE_CROSSCOMPILING)
  add_test(NAME docs.api_reference_builds
           COMMAND sh -c "\"$0\" \"$1\" && grep -q 'Flushes what it can' \"$2/html/ferry_8h.html\" && grep -q 'one encrypted buffer' \"$2/html/classferry_1_1Client.html\""
                   ${DOXYGEN_EXECUTABLE} ${PROJECT_BINARY_DIR}/Doxyfile ${FERRY_DOCS_OUTPUT}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(docs.api_reference_builds PROPERTIES LABELS "unit;nosan" TIMEOUT 300)
endif()
