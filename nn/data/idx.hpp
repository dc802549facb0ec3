// Reader and writer for the IDX format used by MNIST and Fashion-MNIST.
//
// Layout: two zero bytes, a type byte, a dims byte, then one big-endian
// uint32 per dimension, then the elements in C order, big-endian. Files may
// be gzip-compressed or plain; both are read transparently.
//
// Elements are kept in their file type (an image file stays uint8) because
// widening 47 MB of MNIST pixels to double would cost 376 MB and time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tapegrad::data {

enum class IdxType : std::uint8_t {
    u8 = 0x08,   // unsigned byte
    i8 = 0x09,   // signed byte
    i16 = 0x0B,  // int16
    i32 = 0x0C,  // int32
    f32 = 0x0D,  // float32
    f64 = 0x0E,  // float64
};

// Bytes per element of `t`.
std::size_t idx_type_size(IdxType t);
// Readable name, e.g. "ubyte", "float32"; used in error messages.
const char* idx_type_name(IdxType t);

struct IdxArray {
    IdxType type = IdxType::u8;
    std::vector<std::size_t> shape;
    // Elements in C order and in host byte order (the reader converts from
    // big-endian), size() * idx_type_size(type) bytes.
    std::vector<std::uint8_t> bytes;

    // Number of elements: the product of `shape`.
    std::size_t size() const;
    // Direct view of uint8 data (images); throws ValueError unless type == u8.
    const std::uint8_t* u8() const;
    // Every element converted to float / double, whatever the stored type.
    std::vector<float> to_floats() const;
    std::vector<double> to_doubles() const;

    // Build an array from typed data; throw ValueError if the element count
    // does not match the shape.
    static IdxArray from_u8(std::vector<std::size_t> shape, std::vector<std::uint8_t> data);
    static IdxArray from_floats(std::vector<std::size_t> shape, const std::vector<float>& data);
};

// Read an IDX file, gzip-compressed or plain. Throws IoError naming the file
// and the problem for a missing, truncated, corrupt or implausible file.
IdxArray read_idx(const std::string& path);

// Write `array` (any IdxType) as IDX, gzip-compressed if `gzip`. Throws
// ValueError for an inconsistent array, IoError if writing fails (a partly
// written file is removed).
void write_idx(const std::string& path, const IdxArray& array, bool gzip = false);

}  // namespace tapegrad::data
