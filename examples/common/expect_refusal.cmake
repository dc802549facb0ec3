# Runs PROGRAM --out-dir OUT_DIR and fails unless it exits with code 1 and
# says on stderr which option and folder it refuses (a crash or an abort has
# no exit code 1; a program that does the work first takes longer than the
# test's timeout).
execute_process(COMMAND ${PROGRAM} --out-dir ${OUT_DIR}
                RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT code STREQUAL "1")
  message(FATAL_ERROR "expected exit code 1, got '${code}'\nstdout: ${out}\nstderr: ${err}")
endif()
if(NOT err MATCHES "error: cannot use --out-dir '${OUT_DIR}'")
  message(FATAL_ERROR "stderr does not name the option and folder:\n${err}")
endif()
message(STATUS "refused as expected: ${err}")
