#include "program.hpp"

#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>

namespace program {

namespace fs = std::filesystem;

int run_main(int argc, char** argv, int (*body)(int, char**)) {
    const std::string name = argc > 0 ? fs::path(argv[0]).filename().string() : "program";
    try {
        return body(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: error: %s\n", name.c_str(), e.what());
    } catch (...) {
        std::fprintf(stderr, "%s: error: an exception that is not a std::exception\n", name.c_str());
    }
    return 1;
}

void prepare_out_dir(const std::string& dir, const char* option) {
    auto refuse = [&](const std::string& why) {
        throw std::runtime_error(std::string("cannot use ") + option + " '" + dir + "': " + why);
    };
    if (dir.empty()) refuse("the folder name is empty");
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) refuse("cannot create the folder (" + ec.message() + ")");
    if (!fs::is_directory(dir, ec)) refuse("not a folder");
    // Writable? Try it: permissions alone do not tell (read-only mounts, /proc).
    const fs::path probe = fs::path(dir) / ".write_test";
    {
        std::ofstream f(probe);
        if (!(f << "ok") || !f.flush()) refuse("cannot write a file there");
    }
    fs::remove(probe, ec);
}

void require_dir(const std::string& dir, const char* option) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw std::runtime_error(std::string(option) + " '" + dir + "' is not an existing folder");
}

}  // namespace program
