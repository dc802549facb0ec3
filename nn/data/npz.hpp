// Read and write numpy .npz archives: a zip of .npy members, one per array.
//
// The zip container is handled by libzip. Saved archives use ZIP_STORED (no
// compression), fixed member timestamps (saving twice gives the same bytes),
// zip64 only where sizes need it, and .npy format 1.0, which numpy.load
// reads. The loader also accepts numpy.savez_compressed output (deflate) and
// the zip64 extra fields numpy always writes.
#pragma once

#include <tapegrad/core/error.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace tapegrad::data {

namespace detail {
template <class T>
struct always_false : std::false_type {};

// The numpy dtype string for each supported element type.
template <class T>
constexpr const char* npy_descr() {
    if constexpr (std::is_same_v<T, float>) return "<f4";
    else if constexpr (std::is_same_v<T, double>) return "<f8";
    else if constexpr (std::is_same_v<T, std::int64_t>) return "<i8";
    else if constexpr (std::is_same_v<T, std::int32_t>) return "<i4";
    else if constexpr (std::is_same_v<T, std::uint8_t>) return "|u1";
    else static_assert(always_false<T>::value, "npz supports float, double, int64, int32 and uint8");
}

// Copy `count` elements of `width` bytes between host order and the
// little-endian order of .npy data (a plain memcpy on little-endian hosts).
void copy_le(void* dst, const void* src, std::size_t count, std::size_t width);

// Test-only fault injection: save_npz throws IoError once libzip has written
// this many bytes to the temporary file. Default: never.
extern std::size_t npz_fail_after_bytes;
}  // namespace detail

struct NpyArray {
    std::string name;                  // member name without ".npy"
    std::string descr;                 // "<f4", "<f8", "<i8", "<i4" or "|u1"
    std::vector<std::size_t> shape;    // empty for a 0-d (scalar) array
    std::vector<unsigned char> bytes;  // C order, little-endian

    // Build from typed data; throws ValueError if data.size() != prod(shape).
    template <class T>
    static NpyArray from_vector(std::string name, std::vector<std::size_t> shape, const std::vector<T>& data);
    static NpyArray from_floats(std::string name, std::vector<std::size_t> shape, const std::vector<float>& data) {
        return from_vector(std::move(name), std::move(shape), data);
    }
    static NpyArray from_doubles(std::string name, std::vector<std::size_t> shape, const std::vector<double>& data) {
        return from_vector(std::move(name), std::move(shape), data);
    }
    static NpyArray from_int64(std::string name, std::vector<std::size_t> shape,
                               const std::vector<std::int64_t>& data) {
        return from_vector(std::move(name), std::move(shape), data);
    }

    // Number of elements: the product of `shape` (1 for a scalar).
    std::size_t size() const;
    // Bytes per element of `descr`; throws ValueError for an unsupported one.
    std::size_t itemsize() const;

    // The elements as T. Throws DtypeError naming the member and both dtypes
    // if T does not match `descr` (no silent conversion), ValueError if
    // `bytes` does not match `shape`.
    template <class T>
    std::vector<T> to_vector() const {
        const std::size_t n = checked_count(detail::npy_descr<T>());
        std::vector<T> out(n);
        detail::copy_le(out.data(), bytes.data(), n, sizeof(T));
        return out;
    }

private:
    std::size_t checked_count(const char* wanted_descr) const;
};

template <class T>
NpyArray NpyArray::from_vector(std::string name, std::vector<std::size_t> shape, const std::vector<T>& data) {
    NpyArray a;
    a.name = std::move(name);
    a.descr = detail::npy_descr<T>();
    a.shape = std::move(shape);
    if (a.size() != data.size())
        throw ValueError("NpyArray '" + a.name + "': shape holds " + std::to_string(a.size()) + " elements, data has " +
                         std::to_string(data.size()));
    a.bytes.resize(data.size() * sizeof(T));
    detail::copy_le(a.bytes.data(), data.data(), data.size(), sizeof(T));
    return a;
}

// Write `arrays` to `path` atomically: a temporary file in the same folder is
// written, fsynced and renamed over `path`, so on any error the old file is
// left untouched. Throws ValueError for an invalid array (checked before
// anything is written), IoError if writing fails.
void save_npz(const std::string& path, const std::vector<NpyArray>& arrays);

// Read every array of an .npz archive, in archive order. Throws IoError
// naming the file, the member and the problem for anything corrupt,
// truncated or unsupported.
std::vector<NpyArray> load_npz(const std::string& path);

}  // namespace tapegrad::data
