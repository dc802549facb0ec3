# The tapegrad library: every .cpp under core/, ops/ and nn/.
file(GLOB_RECURSE TAPEGRAD_SOURCES CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/core/*.cpp ${PROJECT_SOURCE_DIR}/ops/*.cpp ${PROJECT_SOURCE_DIR}/nn/*.cpp)
file(GLOB_RECURSE TAPEGRAD_HEADERS CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}
  ${PROJECT_SOURCE_DIR}/core/*.hpp ${PROJECT_SOURCE_DIR}/ops/*.hpp ${PROJECT_SOURCE_DIR}/nn/*.hpp)
# nn/distributed is a library of its own (tapegrad::distributed, with or
# without MPI: nn/distributed/CMakeLists.txt), not part of this one.
list(FILTER TAPEGRAD_SOURCES EXCLUDE REGEX "/nn/distributed/")
list(FILTER TAPEGRAD_HEADERS EXCLUDE REGEX "^nn/distributed/")

# Users write #include <tapegrad/...>. In the build tree that prefix is a
# folder of links to the source folders; installed, it is a real folder.
set(TAPEGRAD_BUILD_INCLUDE ${PROJECT_BINARY_DIR}/include)
file(MAKE_DIRECTORY ${TAPEGRAD_BUILD_INCLUDE}/tapegrad)
foreach(dir core ops nn)
  file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${dir} ${TAPEGRAD_BUILD_INCLUDE}/tapegrad/${dir} SYMBOLIC)
endforeach()
file(CREATE_LINK ${PROJECT_SOURCE_DIR}/core/tapegrad.hpp ${TAPEGRAD_BUILD_INCLUDE}/tapegrad/tapegrad.hpp SYMBOLIC)

add_library(tapegrad ${TAPEGRAD_SOURCES})
add_library(tapegrad::tapegrad ALIAS tapegrad)
target_include_directories(tapegrad PUBLIC
  $<BUILD_INTERFACE:${TAPEGRAD_BUILD_INCLUDE}>
  $<INSTALL_INTERFACE:include>)
target_link_libraries(tapegrad PUBLIC xtensor xtensor-blas xsimd Threads::Threads
                               PRIVATE ${BLAS_LIBRARIES} ZLIB::ZLIB PkgConfig::LIBZIP ${CMAKE_DL_LIBS})
# xsimd makes broadcasting assignment ~30x faster (see shared notes). PUBLIC
# because it must agree across the program: xtensor's containers and
# assignment templates, instantiated for tapegrad::Array<T> both in the
# library and in the code that uses it, are declared differently without it
# (core/array.hpp refuses to compile without it).
target_compile_definitions(tapegrad PUBLIC XTENSOR_USE_XSIMD)

# Tuning for the build machine: the library's own code only. Exporting it
# would build every consumer for this CPU (SIGILL elsewhere). In-project
# programs that want it link tapegrad::native; other projects add the same
# flags to their own targets (docs/packaging.md).
set(TAPEGRAD_NATIVE_FLAGS "")
if(TAPEGRAD_NATIVE)
  set(TAPEGRAD_NATIVE_FLAGS -march=native)
  # g++ 12 with AVX-512 miscompiles some constant brace lists of 64-bit
  # integers ({2, 2, 0, 0} becomes {2, 2, 2, 2}) in its SLP vectoriser.
  # Loop vectorisation and xsimd are unaffected.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    list(APPEND TAPEGRAD_NATIVE_FLAGS -fno-tree-slp-vectorize)
  endif()
endif()
target_compile_options(tapegrad PRIVATE ${TAPEGRAD_NATIVE_FLAGS})
add_library(tapegrad_native INTERFACE)
add_library(tapegrad::native ALIAS tapegrad_native)
target_compile_options(tapegrad_native INTERFACE ${TAPEGRAD_NATIVE_FLAGS})
target_compile_options(tapegrad PRIVATE -Wall -Wextra -Wno-unused-parameter $<$<CONFIG:Release>:-O3>)

# A sanitized library needs sanitized users (its objects call the
# sanitizer runtimes): the flags are part of its usage requirements, for
# CMake and pkg-config users alike.
set(TAPEGRAD_SANITIZE_CFLAGS "")
set(TAPEGRAD_SANITIZE_LIBS "")
# TAPEGRAD_SANITIZE=thread builds with ThreadSanitizer instead (it cannot be
# combined with AddressSanitizer); scripts/test uses it for the thread and
# determinism tests only.
if(TAPEGRAD_SANITIZE STREQUAL "thread")
  set(TAPEGRAD_SANITIZE_CFLAGS -fsanitize=thread -fno-omit-frame-pointer)
  set(TAPEGRAD_SANITIZE_LIBS -fsanitize=thread)
elseif(TAPEGRAD_SANITIZE)
  set(TAPEGRAD_SANITIZE_CFLAGS -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  set(TAPEGRAD_SANITIZE_LIBS -fsanitize=address,undefined)
endif()
if(TAPEGRAD_SANITIZE)
  target_compile_options(tapegrad PUBLIC ${TAPEGRAD_SANITIZE_CFLAGS})
  target_link_options(tapegrad PUBLIC ${TAPEGRAD_SANITIZE_LIBS})
endif()

# Install with a CMake package config: find_package(tapegrad) in other projects.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
install(TARGETS tapegrad EXPORT tapegradTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(header ${TAPEGRAD_HEADERS})
  get_filename_component(subdir ${header} DIRECTORY)
  install(FILES ${PROJECT_SOURCE_DIR}/${header} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tapegrad/${subdir})
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/core/tapegrad.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tapegrad)
install(EXPORT tapegradTargets NAMESPACE tapegrad:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tapegrad)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/tapegradConfig.cmake.in
  ${PROJECT_BINARY_DIR}/tapegradConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tapegrad)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/tapegradConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/tapegradConfig.cmake ${PROJECT_BINARY_DIR}/tapegradConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tapegrad)

# The same usage requirements for pkg-config users (tapegrad.pc). A static
# libtapegrad needs its own dependencies on the link line; a shared one
# lists them as private.
set(TAPEGRAD_PC_DEPS)
foreach(lib ${BLAS_LIBRARIES})
  string(APPEND TAPEGRAD_PC_DEPS " ${lib}")
endforeach()
foreach(flag ${LIBZIP_LDFLAGS})
  string(APPEND TAPEGRAD_PC_DEPS " ${flag}")
endforeach()
string(APPEND TAPEGRAD_PC_DEPS " -lz -pthread")
foreach(lib ${CMAKE_DL_LIBS})
  string(APPEND TAPEGRAD_PC_DEPS " -l${lib}")
endforeach()
string(STRIP "${TAPEGRAD_PC_DEPS}" TAPEGRAD_PC_DEPS)
list(JOIN TAPEGRAD_SANITIZE_CFLAGS " " TAPEGRAD_PC_CFLAGS_EXTRA)
list(JOIN TAPEGRAD_SANITIZE_LIBS " " TAPEGRAD_PC_LIBS_EXTRA)
if(BUILD_SHARED_LIBS)
  set(TAPEGRAD_PC_LIBS "")
  set(TAPEGRAD_PC_LIBS_PRIVATE "${TAPEGRAD_PC_DEPS}")
else()
  set(TAPEGRAD_PC_LIBS "${TAPEGRAD_PC_DEPS}")
  set(TAPEGRAD_PC_LIBS_PRIVATE "")
endif()
file(RELATIVE_PATH TAPEGRAD_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" TAPEGRAD_PC_TO_PREFIX "${TAPEGRAD_PC_TO_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/tapegrad.pc.in ${PROJECT_BINARY_DIR}/tapegrad.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/tapegrad.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
