# Installs the built library into a scratch prefix, then builds and runs the
# consumer in tests/find_package against it twice: through find_package and
# through pkg-config; with MPI_EXEC set (a build with MPI), also the
# distributed consumer, on 2 ranks. Also checks that the installed usage requirements carry
# no build-machine flags. Run as a CTest test.
set(prefix ${BUILD_DIR}/find_package_test)
file(REMOVE_RECURSE ${prefix})
set(consumer ${SOURCE_DIR}/tests/find_package)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "find_package test: '${ARGN}' failed (${rc}):\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

# Fails when text (a file's content or a command's output) holds a flag that
# would tune or reconfigure the consumer's own code.
function(check_no_leaked_flags what text)
  foreach(flag -march -include)
    string(FIND "${text}" "${flag}" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "find_package test: ${what} exports '${flag}':\n${text}")
    endif()
  endforeach()
endfunction()

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix}/install)
file(GLOB_RECURSE targets ${prefix}/install/*/tapegradTargets*.cmake)
if(NOT targets)
  message(FATAL_ERROR "find_package test: no tapegradTargets*.cmake installed")
endif()
foreach(file ${targets})
  file(READ ${file} text)
  check_no_leaked_flags(${file} "${text}")
endforeach()

# find_package(tapegrad).
run(${CMAKE_COMMAND} -S ${consumer} -B ${prefix}/build -DCMAKE_PREFIX_PATH=${prefix}/install -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${prefix}/build)
run(${prefix}/build/consumer)
message(STATUS "find_package consumer:\n${out}")

# pkg-config, with the compilers the consumer project found.
file(GLOB_RECURSE pc_file ${prefix}/install/*/pkgconfig/tapegrad.pc)
if(NOT pc_file)
  message(FATAL_ERROR "find_package test: no tapegrad.pc installed")
endif()
get_filename_component(pc_dir ${pc_file} DIRECTORY)
file(STRINGS ${prefix}/build/CMakeCache.txt cc REGEX "^CMAKE_C_COMPILER:")
file(STRINGS ${prefix}/build/CMakeCache.txt cxx REGEX "^CMAKE_CXX_COMPILER:")
string(REGEX REPLACE "^[^=]*=" "" cc "${cc}")
string(REGEX REPLACE "^[^=]*=" "" cxx "${cxx}")
run(${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${pc_dir} pkg-config --cflags --libs tapegrad)
check_no_leaked_flags("pkg-config --cflags --libs tapegrad" "${out}")
separate_arguments(pc_flags UNIX_COMMAND "${out}")
file(MAKE_DIRECTORY ${prefix}/pkg-config)
run(${cc} -O2 -c ${consumer}/closed_form.c -o ${prefix}/pkg-config/closed_form.o)
run(${cxx} -std=c++17 -O2 ${consumer}/main.cpp ${prefix}/pkg-config/closed_form.o ${pc_flags} -lm
    -o ${prefix}/pkg-config/consumer)
run(${prefix}/pkg-config/consumer)
message(STATUS "pkg-config consumer:\n${out}")

# tapegrad::distributed, installed only by a build with MPI.
if(MPI_EXEC)
  run(${CMAKE_COMMAND} -S ${consumer}/distributed -B ${prefix}/build-distributed
      -DCMAKE_PREFIX_PATH=${prefix}/install -DCMAKE_BUILD_TYPE=Release)
  run(${CMAKE_COMMAND} --build ${prefix}/build-distributed)
  run(${MPI_EXEC} --allow-run-as-root --oversubscribe -n 2 ${prefix}/build-distributed/distributed_consumer)
  message(STATUS "distributed consumer:\n${out}")
elseif(EXISTS ${prefix}/install/include/tapegrad/nn/distributed)
  message(FATAL_ERROR "find_package test: a build without MPI installed tapegrad/nn/distributed")
endif()
