// What every example program shares around its main(): options checked
// before any work, and no exception ever reaching std::terminate.
#pragma once

#include <string>

namespace program {

// Runs `body` (the program's real main). Any exception, of any type, is
// printed as "<program>: error: <message>" and gives exit code 1: a bad
// path found after an hour of training still ends with a message, not
// with an abort and a core dump.
int run_main(int argc, char** argv, int (*body)(int, char**));

// Creates `dir` if needed and checks that a file can be written in it.
// Programs call it right after parsing their options, so an unusable
// --out-dir is refused before any work. Throws std::runtime_error naming
// `option` and the folder.
void prepare_out_dir(const std::string& dir, const char* option = "--out-dir");

// Checks that `dir` is an existing folder; std::runtime_error naming `option` otherwise.
void require_dir(const std::string& dir, const char* option);

}  // namespace program
