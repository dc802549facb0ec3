// Byte-level file helpers shared by the reader tests (IDX and .npz).
#pragma once

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace file_test {

using Bytes = std::vector<unsigned char>;

inline void write_bytes(const std::string& path, const Bytes& b) {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

inline Bytes read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace file_test
