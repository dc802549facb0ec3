#include <tapegrad/nn/data/idx.hpp>

#include <tapegrad/core/error.hpp>

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

namespace tapegrad::data {

namespace {

namespace fs = std::filesystem;

// Refuse declared sizes above this before allocating: a corrupt header must
// not be able to make us reserve gigabytes.
constexpr std::uint64_t kMaxDataBytes = std::uint64_t{4} << 30;
constexpr unsigned kMaxDims = 8;
// Deflate cannot expand by more than ~1032:1, so a gzip file of n bytes
// cannot decode to much more than this; anything larger is a lie.
constexpr std::uint64_t kMaxGzipRatio = 1032;
// gzread/gzwrite take an unsigned length; move data in bounded chunks.
constexpr std::size_t kChunk = std::size_t{1} << 24;

[[noreturn]] void fail(const std::string& path, const std::string& why) {
    throw IoError("read_idx: '" + path + "': " + why);
}

bool host_is_little_endian() {
    const std::uint16_t one = 1;
    unsigned char first;
    std::memcpy(&first, &one, 1);
    return first == 1;
}

// IDX is big-endian; flip each element between file and host order.
void swap_elements(std::uint8_t* p, std::size_t count, std::size_t width) {
    if (width == 1 || !host_is_little_endian()) return;
    for (std::size_t i = 0; i < count; ++i) std::reverse(p + i * width, p + (i + 1) * width);
}

std::uint32_t be32(const unsigned char* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

bool known_type(unsigned code) {
    return code == 0x08 || code == 0x09 || code == 0x0B || code == 0x0C || code == 0x0D || code == 0x0E;
}

std::string shape_str(const std::vector<std::size_t>& shape) {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + ")";
}

struct GzFile {
    gzFile f = nullptr;
    ~GzFile() {
        if (f) gzclose(f);
    }
    // Close now and report whether zlib saw the stream end cleanly.
    int close() {
        int rc = gzclose(f);
        f = nullptr;
        return rc;
    }
};

// zlib prefixes its messages with the path, which ours already names.
std::string gz_message(gzFile gz, const std::string& path, int* errnum) {
    std::string msg = gzerror(gz, errnum);
    if (msg.compare(0, path.size() + 2, path + ": ") == 0) msg.erase(0, path.size() + 2);
    return msg;
}

// After a short read: was it the gzip stream itself that ended early?
std::string truncation_detail(gzFile gz, const std::string& path) {
    int errnum = 0;
    const std::string msg = gz_message(gz, path, &errnum);
    return errnum != Z_OK ? " (gzip stream truncated: " + msg + ")" : "";
}

// Read up to n bytes; stop early only at end of input. A decoding error
// (bad deflate data, gzip CRC mismatch) is an IoError.
std::size_t read_upto(gzFile gz, void* dst, std::size_t n, const std::string& path) {
    auto* out = static_cast<unsigned char*>(dst);
    std::size_t got = 0;
    while (got < n) {
        int r = gzread(gz, out + got, static_cast<unsigned>(std::min(n - got, kChunk)));
        if (r < 0) {
            int errnum = 0;
            const std::string msg = gz_message(gz, path, &errnum);
            if (errnum == Z_ERRNO) fail(path, std::string("read error: ") + std::strerror(errno));
            fail(path, "corrupt gzip stream: " + msg);
        }
        if (r == 0) break;
        got += static_cast<std::size_t>(r);
    }
    return got;
}

std::string hex4(const unsigned char* p) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%02x %02x %02x %02x", p[0], p[1], p[2], p[3]);
    return buf;
}

}  // namespace

std::size_t idx_type_size(IdxType t) {
    switch (t) {
        case IdxType::u8:
        case IdxType::i8: return 1;
        case IdxType::i16: return 2;
        case IdxType::i32:
        case IdxType::f32: return 4;
        case IdxType::f64: return 8;
    }
    throw ValueError("idx_type_size: unknown IDX type code " + std::to_string(static_cast<int>(t)));
}

const char* idx_type_name(IdxType t) {
    switch (t) {
        case IdxType::u8: return "ubyte";
        case IdxType::i8: return "sbyte";
        case IdxType::i16: return "int16";
        case IdxType::i32: return "int32";
        case IdxType::f32: return "float32";
        case IdxType::f64: return "float64";
    }
    return "unknown";
}

std::size_t IdxArray::size() const {
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;
    return n;
}

const std::uint8_t* IdxArray::u8() const {
    if (type != IdxType::u8)
        throw ValueError(std::string("IdxArray::u8: array holds ") + idx_type_name(type) + " data, not ubyte");
    return bytes.data();
}

std::vector<double> IdxArray::to_doubles() const {
    const std::size_t n = size();
    std::vector<double> out(n);
    const std::uint8_t* p = bytes.data();
    // memcpy per element: the byte buffer has no alignment guarantee.
    auto convert = [&](auto tag) {
        using T = decltype(tag);
        for (std::size_t i = 0; i < n; ++i) {
            T v;
            std::memcpy(&v, p + i * sizeof(T), sizeof(T));
            out[i] = static_cast<double>(v);
        }
    };
    switch (type) {
        case IdxType::u8: convert(std::uint8_t{}); break;
        case IdxType::i8: convert(std::int8_t{}); break;
        case IdxType::i16: convert(std::int16_t{}); break;
        case IdxType::i32: convert(std::int32_t{}); break;
        case IdxType::f32: convert(float{}); break;
        case IdxType::f64: convert(double{}); break;
    }
    return out;
}

std::vector<float> IdxArray::to_floats() const {
    if (type == IdxType::u8) {  // the hot path (images): skip the double detour
        std::vector<float> out(bytes.begin(), bytes.end());
        return out;
    }
    std::vector<double> d = to_doubles();
    return std::vector<float>(d.begin(), d.end());
}

IdxArray IdxArray::from_u8(std::vector<std::size_t> shape, std::vector<std::uint8_t> data) {
    IdxArray a;
    a.type = IdxType::u8;
    a.shape = std::move(shape);
    if (a.size() != data.size())
        throw ValueError("IdxArray::from_u8: shape " + shape_str(a.shape) + " needs " + std::to_string(a.size()) +
                         " elements, got " + std::to_string(data.size()));
    a.bytes = std::move(data);
    return a;
}

IdxArray IdxArray::from_floats(std::vector<std::size_t> shape, const std::vector<float>& data) {
    IdxArray a;
    a.type = IdxType::f32;
    a.shape = std::move(shape);
    if (a.size() != data.size())
        throw ValueError("IdxArray::from_floats: shape " + shape_str(a.shape) + " needs " + std::to_string(a.size()) +
                         " elements, got " + std::to_string(data.size()));
    a.bytes.resize(data.size() * sizeof(float));
    if (!data.empty()) std::memcpy(a.bytes.data(), data.data(), a.bytes.size());
    return a;
}

IdxArray read_idx(const std::string& path) {
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (!fs::exists(st)) fail(path, "no such file");
    if (!fs::is_regular_file(st)) fail(path, "not a regular file");
    const std::uint64_t file_size = fs::file_size(path, ec);
    if (ec) fail(path, "cannot stat: " + ec.message());

    GzFile gz;
    gz.f = gzopen(path.c_str(), "rb");
    if (!gz.f) fail(path, std::string("cannot open: ") + std::strerror(errno));
    gzbuffer(gz.f, 1u << 17);  // larger than the 8 KiB default: fewer syscalls

    unsigned char magic[4];
    std::size_t got = read_upto(gz.f, magic, 4, path);
    if (got < 4)
        fail(path, "truncated header: expected 4 magic bytes, got " + std::to_string(got) + truncation_detail(gz.f, path));
    if (magic[0] != 0 || magic[1] != 0)
        fail(path, "bad magic: expected 00 00 <type> <dims>, found " + hex4(magic));
    if (!known_type(magic[2])) {
        char code[8];
        std::snprintf(code, sizeof code, "0x%02x", magic[2]);
        fail(path, std::string("unknown element type code ") + code +
                       " (expected 0x08, 0x09, 0x0b, 0x0c, 0x0d or 0x0e)");
    }
    const unsigned dims = magic[3];
    if (dims == 0 || dims > kMaxDims)
        fail(path, "unsupported number of dimensions " + std::to_string(dims) + " (expected 1 to " +
                       std::to_string(kMaxDims) + ")");

    IdxArray out;
    out.type = static_cast<IdxType>(magic[2]);
    const std::size_t width = idx_type_size(out.type);

    unsigned char dimbuf[4 * kMaxDims];
    got = read_upto(gz.f, dimbuf, 4 * dims, path);
    if (got < 4 * dims)
        fail(path, "truncated header: expected " + std::to_string(dims) + " dimension sizes (" +
                       std::to_string(4 * dims) + " bytes), got " + std::to_string(got) + " bytes" +
                       truncation_detail(gz.f, path));
    bool any_zero = false;
    for (unsigned i = 0; i < dims; ++i) {
        out.shape.push_back(be32(dimbuf + 4 * i));
        any_zero = any_zero || out.shape.back() == 0;
    }

    // Bound the size before allocating; each step stays below 2^64.
    std::uint64_t need = any_zero ? 0 : width;
    for (std::size_t d : out.shape) {
        if (any_zero) break;
        if (need > kMaxDataBytes / d)
            fail(path, "declared shape " + shape_str(out.shape) + " of " + idx_type_name(out.type) +
                           " exceeds the 4 GiB limit; the header is probably corrupt");
        need *= d;
    }

    const std::uint64_t header_bytes = 4 + 4 * std::uint64_t{dims};
    if (gzdirect(gz.f)) {
        // Plain file: its size must be exactly header + data.
        const std::uint64_t have = file_size > header_bytes ? file_size - header_bytes : 0;
        if (have < need)
            fail(path, "truncated data: shape " + shape_str(out.shape) + " of " + idx_type_name(out.type) +
                           " needs " + std::to_string(need) + " bytes, got " + std::to_string(have));
        if (have > need)
            fail(path, "trailing garbage: " + std::to_string(have - need) + " bytes after the " +
                           std::to_string(need) + " data bytes");
    } else if (need > file_size * kMaxGzipRatio + 4096) {
        fail(path, "declared shape " + shape_str(out.shape) + " needs " + std::to_string(need) +
                       " bytes, more than a " + std::to_string(file_size) +
                       "-byte gzip file can hold; the file is truncated or corrupt");
    }

    out.bytes.resize(static_cast<std::size_t>(need));
    got = read_upto(gz.f, out.bytes.data(), out.bytes.size(), path);
    if (got < need)
        fail(path, "truncated data: shape " + shape_str(out.shape) + " of " + idx_type_name(out.type) + " needs " +
                       std::to_string(need) + " bytes, got " + std::to_string(got) + truncation_detail(gz.f, path));
    // One more byte must not exist; this read also makes zlib verify the
    // gzip trailer (CRC and length) that follows the data.
    unsigned char extra;
    if (read_upto(gz.f, &extra, 1, path) != 0)
        fail(path, "trailing garbage after the " + std::to_string(need) + " data bytes");
    const std::string cut = truncation_detail(gz.f, path);  // data complete but gzip trailer missing
    if (!cut.empty()) fail(path, "truncated file after the data" + cut);
    if (gz.close() != Z_OK) fail(path, "corrupt gzip stream (error when closing)");

    swap_elements(out.bytes.data(), out.size(), width);
    return out;
}

void write_idx(const std::string& path, const IdxArray& array, bool gzip) {
    const std::size_t width = idx_type_size(array.type);
    if (array.shape.empty() || array.shape.size() > kMaxDims)
        throw ValueError("write_idx: '" + path + "': IDX needs 1 to 8 dimensions, got shape " +
                         shape_str(array.shape));
    // A shape with a zero dimension holds no elements, however large the
    // other dimensions are (the reader accepts such files; found by fuzz_idx).
    const bool empty = std::find(array.shape.begin(), array.shape.end(), std::size_t{0}) != array.shape.end();
    std::uint64_t count = empty ? 0 : 1;
    for (std::size_t d : array.shape) {
        if (d > std::numeric_limits<std::uint32_t>::max() || (!empty && count > kMaxDataBytes / d))
            throw ValueError("write_idx: '" + path + "': shape " + shape_str(array.shape) + " is too large for IDX");
        if (!empty) count *= d;
    }
    if (count * width != array.bytes.size())
        throw ValueError("write_idx: '" + path + "': shape " + shape_str(array.shape) + " of " +
                         idx_type_name(array.type) + " needs " + std::to_string(count * width) + " bytes, array has " +
                         std::to_string(array.bytes.size()));

    std::vector<unsigned char> header{0, 0, static_cast<unsigned char>(array.type),
                                      static_cast<unsigned char>(array.shape.size())};
    for (std::size_t d : array.shape)
        for (int shift = 24; shift >= 0; shift -= 8) header.push_back(static_cast<unsigned char>(d >> shift));

    // "T" makes zlib write plain bytes through the same interface.
    GzFile gz;
    gz.f = gzopen(path.c_str(), gzip ? "wb6" : "wbT");
    if (!gz.f) throw IoError("write_idx: '" + path + "': cannot create: " + std::strerror(errno));
    bool ok = gzwrite(gz.f, header.data(), static_cast<unsigned>(header.size())) == static_cast<int>(header.size());
    // Convert to big-endian a chunk at a time to avoid copying the whole array.
    std::vector<std::uint8_t> chunk;
    const std::size_t per_chunk = (std::size_t{1} << 20) / width * width;
    for (std::size_t off = 0; ok && off < array.bytes.size(); off += per_chunk) {
        const std::size_t n = std::min(per_chunk, array.bytes.size() - off);
        chunk.assign(array.bytes.begin() + off, array.bytes.begin() + off + n);
        swap_elements(chunk.data(), n / width, width);
        ok = gzwrite(gz.f, chunk.data(), static_cast<unsigned>(n)) == static_cast<int>(n);
    }
    ok = (gz.close() == Z_OK) && ok;
    if (!ok) {
        std::remove(path.c_str());
        throw IoError("write_idx: '" + path + "': write failed (disk full or I/O error)");
    }
}

}  // namespace tapegrad::data
