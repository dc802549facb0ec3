# Installs the built library into a scratch prefix, then configures, builds
# and runs tests/find_package against it. Run as a CTest test.
set(prefix ${BUILD_DIR}/find_package_test)
file(REMOVE_RECURSE ${prefix})
foreach(step
    "${CMAKE_COMMAND};--install;${BUILD_DIR};--prefix;${prefix}/install"
    "${CMAKE_COMMAND};-S;${SOURCE_DIR}/tests/find_package;-B;${prefix}/build;-DCMAKE_PREFIX_PATH=${prefix}/install;-DCMAKE_BUILD_TYPE=Release"
    "${CMAKE_COMMAND};--build;${prefix}/build"
    "${prefix}/build/consumer")
  execute_process(COMMAND ${step} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "find_package test: '${step}' failed (${rc}):\n${out}\n${err}")
  endif()
endforeach()
message(STATUS "${out}")
