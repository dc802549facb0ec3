#include <tapegrad/nn/data/npz.hpp>

#include <zlib.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

namespace tapegrad::data {

std::size_t detail::npz_fail_after_bytes = std::numeric_limits<std::size_t>::max();

namespace {

namespace fs = std::filesystem;

constexpr std::uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr std::uint32_t kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;
constexpr std::uint32_t kMax32 = 0xffffffffu;
constexpr std::size_t kMaxNpyDims = 64;    // numpy's own limit
constexpr std::uint64_t kMaxDeflateRatio = 1032;  // deflate cannot expand more

bool host_is_little_endian() {
    const std::uint16_t one = 1;
    unsigned char first;
    std::memcpy(&first, &one, 1);
    return first == 1;
}

std::size_t descr_size(const std::string& d) {
    if (d == "<f4" || d == "<i4") return 4;
    if (d == "<f8" || d == "<i8") return 8;
    if (d == "|u1") return 1;
    return 0;
}

std::string shape_str(const std::vector<std::size_t>& shape) {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) s += std::to_string(shape[i]) + (i + 1 < shape.size() ? ", " : "");
    if (shape.size() == 1) s += ',';  // Python's one-element tuple, as numpy writes it
    return s + ")";
}

// prod(shape) * width, or false if that overflows 64 bits.
bool byte_count(const std::vector<std::size_t>& shape, std::size_t width, std::uint64_t& out) {
    std::uint64_t n = width;
    for (std::size_t d : shape) {
        if (d != 0 && n > std::numeric_limits<std::uint64_t>::max() / d) return false;
        n *= d;
    }
    out = n;
    return true;
}

std::uint16_t get16(const unsigned char* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
std::uint32_t get32(const unsigned char* p) { return get16(p) | (std::uint32_t{get16(p + 2)} << 16); }
std::uint64_t get64(const unsigned char* p) { return get32(p) | (std::uint64_t{get32(p + 4)} << 32); }
void put16(std::vector<unsigned char>& v, std::uint32_t x) {
    v.push_back(static_cast<unsigned char>(x));
    v.push_back(static_cast<unsigned char>(x >> 8));
}
void put32(std::vector<unsigned char>& v, std::uint32_t x) {
    put16(v, x & 0xffff);
    put16(v, x >> 16);
}

std::uint32_t crc_of(const unsigned char* p, std::size_t n, std::uint32_t crc) {
    while (n > 0) {  // crc32 takes a 32-bit length
        const std::size_t step = std::min<std::size_t>(n, 1u << 30);
        crc = static_cast<std::uint32_t>(crc32(crc, p, static_cast<uInt>(step)));
        p += step;
        n -= step;
    }
    return crc;
}

// ---------------------------------------------------------------- writing

// The .npy v1.0 header, padded with spaces so data starts on a 64-byte boundary.
std::string npy_header(const NpyArray& a) {
    std::string dict = "{'descr': '" + a.descr + "', 'fortran_order': False, 'shape': " + shape_str(a.shape) + ", }";
    std::string h = "\x93NUMPY";
    h += '\x01';
    h += '\x00';
    const std::size_t total = (10 + dict.size() + 1 + 63) / 64 * 64;
    const std::size_t len = total - 10;
    h += static_cast<char>(len & 0xff);
    h += static_cast<char>(len >> 8);
    h += dict;
    h.append(total - h.size() - 1, ' ');
    h += '\n';
    return h;
}

// Owns the temporary file: closes and deletes it unless commit() succeeded.
struct TempFile {
    std::string target, path;
    int fd = -1;
    std::uint64_t written = 0;

    explicit TempFile(const std::string& target_path) : target(target_path) {
        static std::atomic<unsigned> counter{0};
        const fs::path t(target);
        const fs::path dir = t.has_parent_path() ? t.parent_path() : fs::path(".");
        for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
            const auto tick = std::chrono::steady_clock::now().time_since_epoch().count();
            path = (dir / ("." + t.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                           std::to_string(counter++) + "." + std::to_string(tick % 1000000)))
                       .string();
            // O_EXCL: never clobber another writer's file; 0666 lets umask decide.
            fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (fd < 0 && errno != EEXIST) break;
        }
        if (fd < 0) fail("cannot create a temporary file in the same folder: " + std::string(std::strerror(errno)));
    }
    ~TempFile() {
        if (fd >= 0) ::close(fd);
        if (!path.empty()) ::unlink(path.c_str());
    }

    [[noreturn]] void fail(const std::string& why) const { throw IoError("save_npz: '" + target + "': " + why); }

    void write(const void* data, std::size_t n) {
        const auto* p = static_cast<const unsigned char*>(data);
        if (written + n > detail::npz_fail_after_bytes) {
            const std::size_t allowed = static_cast<std::size_t>(detail::npz_fail_after_bytes - written);
            if (allowed > 0 && ::write(fd, p, allowed) < 0) fail("write failed: " + std::string(std::strerror(errno)));
            fail("injected failure after " + std::to_string(detail::npz_fail_after_bytes) + " bytes");
        }
        while (n > 0) {
            const ssize_t r = ::write(fd, p, std::min<std::size_t>(n, std::size_t{1} << 30));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) fail("write failed: " + std::string(std::strerror(errno)));
            p += r;
            n -= static_cast<std::size_t>(r);
            written += static_cast<std::uint64_t>(r);
        }
    }
    void write(const std::vector<unsigned char>& v) { write(v.data(), v.size()); }

    // Make the data durable, then atomically replace the target.
    void commit() {
        if (::fsync(fd) != 0) fail("fsync failed: " + std::string(std::strerror(errno)));
        const int rc = ::close(fd);
        fd = -1;
        if (rc != 0) fail("close failed: " + std::string(std::strerror(errno)));
        if (std::rename(path.c_str(), target.c_str()) != 0)
            fail("cannot rename the temporary file over it: " + std::string(std::strerror(errno)));
        path.clear();
        // Persist the rename itself; failure here loses nothing already written.
        const fs::path t(target);
        const int dfd = ::open(t.has_parent_path() ? t.parent_path().c_str() : ".", O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            ::fsync(dfd);
            ::close(dfd);
        }
    }
};

// ---------------------------------------------------------------- reading

struct Loader {
    std::string path;
    std::ifstream in;
    std::uint64_t file_size = 0;

    [[noreturn]] void fail(const std::string& why) const { throw IoError("load_npz: '" + path + "': " + why); }
    [[noreturn]] void fail(const std::string& member, const std::string& why) const {
        fail("member '" + member + "': " + why);
    }

    // Read n bytes at offset; anything past the end of the file is truncation.
    std::vector<unsigned char> read_at(std::uint64_t offset, std::uint64_t n, const std::string& what) {
        if (offset > file_size || n > file_size - offset)
            fail(what + " lies beyond the end of the file (truncated or corrupt archive)");
        std::vector<unsigned char> buf(static_cast<std::size_t>(n));
        if (n == 0) return buf;
        in.clear();
        in.seekg(static_cast<std::streamoff>(offset));
        in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(n));
        if (!in || static_cast<std::uint64_t>(in.gcount()) != n) fail("read error while reading " + what);
        return buf;
    }
};

struct Entry {
    std::string name;
    std::uint16_t flags = 0, method = 0;
    std::uint32_t crc = 0;
    std::uint64_t csize = 0, usize = 0, offset = 0;
    std::uint64_t data_start = 0;  // from the local header
};

// Replace 0xffffffff fields by their zip64 extra-field values, in the order
// the spec lists them. Returns false if the extra field is missing or short.
bool apply_zip64(const unsigned char* extra, std::size_t len, std::vector<std::uint64_t*> fields) {
    std::vector<std::uint64_t*> wanted;
    for (auto* f : fields)
        if (*f == kMax32) wanted.push_back(f);
    if (wanted.empty()) return true;
    for (std::size_t pos = 0; pos + 4 <= len;) {
        const std::uint16_t id = get16(extra + pos), size = get16(extra + pos + 2);
        if (pos + 4 + size > len) return false;
        if (id == 0x0001) {
            if (size < 8 * wanted.size()) return false;
            for (std::size_t i = 0; i < wanted.size(); ++i) *wanted[i] = get64(extra + pos + 4 + 8 * i);
            return true;
        }
        pos += 4 + size;
    }
    return false;
}

// A parser for the tiny Python-literal dict in a .npy header.
struct HeaderParser {
    const std::string& s;
    std::size_t pos = 0;
    std::string error;

    explicit HeaderParser(const std::string& text) : s(text) {}

    void ws() {
        while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r')) ++pos;
    }
    bool eat(char c) {
        ws();
        if (pos < s.size() && s[pos] == c) return ++pos, true;
        return false;
    }
    bool str(std::string& out) {
        ws();
        if (pos >= s.size() || (s[pos] != '\'' && s[pos] != '"')) return false;
        const char q = s[pos++];
        const std::size_t end = s.find(q, pos);
        if (end == std::string::npos) return false;
        out = s.substr(pos, end - pos);
        pos = end + 1;
        return true;
    }
    bool word(const char* w) {
        ws();
        const std::size_t n = std::strlen(w);
        if (s.compare(pos, n, w) != 0) return false;
        pos += n;
        return true;
    }
    bool integer(std::size_t& out) {
        ws();
        if (pos >= s.size() || s[pos] < '0' || s[pos] > '9') return false;
        std::uint64_t v = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (v > (std::numeric_limits<std::uint64_t>::max() - 9) / 10) return false;
            v = v * 10 + static_cast<unsigned>(s[pos++] - '0');
        }
        if (pos < s.size() && s[pos] == 'L') ++pos;  // Python 2 longs
        if (v > std::numeric_limits<std::size_t>::max()) return false;
        out = static_cast<std::size_t>(v);
        return true;
    }
    bool shape(std::vector<std::size_t>& out) {
        if (!eat('(')) return false;
        while (!eat(')')) {
            std::size_t d;
            if (out.size() >= kMaxNpyDims || !integer(d)) return false;
            out.push_back(d);
            if (!eat(',')) return eat(')');
        }
        return true;
    }

    // Fills descr/fortran/shape; on failure sets `error`.
    bool parse(std::string& descr, bool& fortran, std::vector<std::size_t>& shp) {
        bool have_descr = false, have_fortran = false, have_shape = false;
        if (!eat('{')) return error = "expected '{'", false;
        while (!eat('}')) {
            std::string key;
            if (!str(key) || !eat(':')) return error = "expected a quoted key and ':'", false;
            if (key == "descr") {
                if (!str(descr)) return error = "'descr' is not a simple dtype string (structured dtypes are not supported)", false;
                have_descr = true;
            } else if (key == "fortran_order") {
                if (word("True")) fortran = true;
                else if (word("False")) fortran = false;
                else return error = "'fortran_order' is not True or False", false;
                have_fortran = true;
            } else if (key == "shape") {
                if (!shape(shp)) return error = "'shape' is not a tuple of at most 64 non-negative integers", false;
                have_shape = true;
            } else {
                return error = "unexpected key '" + key + "'", false;
            }
            if (!eat(',')) {
                if (!eat('}')) return error = "expected ',' or '}'", false;
                break;
            }
        }
        ws();
        if (pos != s.size()) return error = "unexpected text after the dict", false;
        if (!have_descr || !have_fortran || !have_shape)
            return error = "missing 'descr', 'fortran_order' or 'shape'", false;
        return true;
    }
};

NpyArray parse_npy(const Loader& L, const std::string& member, std::vector<unsigned char> raw) {
    if (raw.size() < 10) L.fail(member, "truncated .npy header (" + std::to_string(raw.size()) + " bytes)");
    if (std::memcmp(raw.data(), "\x93NUMPY", 6) != 0) L.fail(member, "bad .npy magic (not a .npy file)");
    const unsigned major = raw[6], minor = raw[7];
    if (major < 1 || major > 3 || minor != 0)
        L.fail(member, "unsupported .npy version " + std::to_string(major) + "." + std::to_string(minor));
    const std::size_t start = major == 1 ? 10 : 12;
    if (raw.size() < start) L.fail(member, "truncated .npy header");
    const std::uint64_t hlen = major == 1 ? get16(raw.data() + 8) : get32(raw.data() + 8);
    if (hlen > raw.size() - start)
        L.fail(member, "truncated .npy header: declares " + std::to_string(hlen) + " header bytes, member has " +
                           std::to_string(raw.size() - start) + " after the preamble");

    const std::string header(raw.begin() + start, raw.begin() + start + static_cast<std::ptrdiff_t>(hlen));
    NpyArray a;
    bool fortran = false;
    HeaderParser hp{header};
    if (!hp.parse(a.descr, fortran, a.shape))
        L.fail(member, "malformed .npy header (" + hp.error + "): " +
                           header.substr(0, std::min<std::size_t>(header.find_last_not_of(" \n") + 1, 120)));
    const std::size_t width = descr_size(a.descr);
    if (width == 0)
        L.fail(member, "unsupported dtype '" + a.descr + "' (supported: <f4, <f8, <i4, <i8, |u1)");
    if (fortran) L.fail(member, "fortran_order=True arrays are not supported");

    const std::uint64_t have = raw.size() - start - hlen;
    std::uint64_t need = 0;
    if (!byte_count(a.shape, width, need) || need != have)
        L.fail(member, "shape " + shape_str(a.shape) + " of " + a.descr + " needs " +
                           (byte_count(a.shape, width, need) ? std::to_string(need) : std::string("more than 2^64")) +
                           " data bytes, member has " + std::to_string(have));
    // Keep only the data; the memmove is cheap next to reading the file.
    raw.erase(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(start + hlen));
    a.bytes = std::move(raw);
    a.name = member.substr(0, member.size() - 4);
    return a;
}

std::vector<unsigned char> inflate_member(const Loader& L, const Entry& e, const std::vector<unsigned char>& in) {
    std::vector<unsigned char> out(static_cast<std::size_t>(e.usize));
    z_stream z{};
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) L.fail(e.name, "cannot initialise zlib");
    z.next_in = const_cast<unsigned char*>(in.data());
    z.next_out = out.data();
    std::size_t in_left = in.size(), out_left = out.size();
    int rc = Z_OK;
    do {  // zlib counts in 32 bits: refill at most 1 GiB at a time
        if (z.avail_in == 0 && in_left > 0) {
            z.avail_in = static_cast<uInt>(std::min<std::size_t>(in_left, 1u << 30));
            in_left -= z.avail_in;
        }
        if (z.avail_out == 0 && out_left > 0) {
            z.avail_out = static_cast<uInt>(std::min<std::size_t>(out_left, 1u << 30));
            out_left -= z.avail_out;
        }
        rc = inflate(&z, Z_NO_FLUSH);  // Z_BUF_ERROR: input exhausted or output full
    } while (rc == Z_OK);
    const std::string msg = z.msg ? z.msg : "";
    const std::size_t room = out_left + z.avail_out;
    inflateEnd(&z);
    if (rc == Z_BUF_ERROR && room == 0)
        L.fail(e.name, "deflate data decompresses to more than the declared " + std::to_string(e.usize) + " bytes");
    if (rc != Z_STREAM_END)
        L.fail(e.name, "corrupt or truncated deflate data" + (msg.empty() ? std::string() : ": " + msg));
    if (room != 0)
        L.fail(e.name, "deflate data decompresses to " + std::to_string(e.usize - room) + " bytes, declared " +
                           std::to_string(e.usize));
    return out;
}

}  // namespace

void detail::copy_le(void* dst, const void* src, std::size_t count, std::size_t width) {
    if (count == 0) return;
    std::memcpy(dst, src, count * width);
    if (width == 1 || host_is_little_endian()) return;
    auto* p = static_cast<unsigned char*>(dst);
    for (std::size_t i = 0; i < count; ++i) std::reverse(p + i * width, p + (i + 1) * width);
}

std::size_t NpyArray::size() const {
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;
    return n;
}

std::size_t NpyArray::itemsize() const {
    const std::size_t w = descr_size(descr);
    if (w == 0)
        throw ValueError("NpyArray '" + name + "': unsupported dtype '" + descr + "' (supported: <f4, <f8, <i4, <i8, |u1)");
    return w;
}

std::size_t NpyArray::checked_count(const char* wanted_descr) const {
    if (descr != wanted_descr)
        throw DtypeError("NpyArray '" + name + "': stored dtype is " + descr + ", requested " + wanted_descr);
    std::uint64_t need = 0;
    if (!byte_count(shape, itemsize(), need) || need != bytes.size())
        throw ValueError("NpyArray '" + name + "': shape " + shape_str(shape) + " does not match " +
                         std::to_string(bytes.size()) + " data bytes");
    return size();
}

void save_npz(const std::string& path, const std::vector<NpyArray>& arrays) {
    // Validate everything before touching the disk.
    std::set<std::string> names;
    std::vector<std::string> headers;
    std::uint64_t total = 22;
    for (const NpyArray& a : arrays) {
        const std::string where = "save_npz: '" + path + "': array '" + a.name + "': ";
        if (a.name.empty() || a.name.size() > 60000 || a.name.find('\0') != std::string::npos)
            throw ValueError(where + "name must be 1 to 60000 bytes without NUL");
        if (!names.insert(a.name).second) throw ValueError(where + "duplicate name");
        const std::size_t width = descr_size(a.descr);
        if (width == 0) throw ValueError(where + "unsupported dtype '" + a.descr + "'");
        if (a.shape.size() > 32) throw ValueError(where + "more than 32 dimensions");
        std::uint64_t need = 0;
        if (!byte_count(a.shape, width, need) || need != a.bytes.size())
            throw ValueError(where + "shape " + shape_str(a.shape) + " of " + a.descr + " does not match its " +
                             std::to_string(a.bytes.size()) + " data bytes");
        headers.push_back(npy_header(a));
        total += 30 + 46 + 2 * (a.name.size() + 4) + headers.back().size() + a.bytes.size();
    }
    if (total >= kMax32 || arrays.size() >= 0xffff)
        throw IoError("save_npz: '" + path + "': archive would exceed 4 GiB or 65535 arrays; zip64 output is not supported");

    TempFile out(path);
    std::vector<unsigned char> central;
    for (std::size_t i = 0; i < arrays.size(); ++i) {
        const NpyArray& a = arrays[i];
        const std::string member = a.name + ".npy";
        const auto* h = reinterpret_cast<const unsigned char*>(headers[i].data());
        const std::uint32_t crc = crc_of(a.bytes.data(), a.bytes.size(), crc_of(h, headers[i].size(), 0));
        const auto size = static_cast<std::uint32_t>(headers[i].size() + a.bytes.size());
        const auto offset = static_cast<std::uint32_t>(out.written);
        const bool utf8 = std::any_of(member.begin(), member.end(), [](char c) { return c & 0x80; });
        // Fields shared by the local header and the central directory entry:
        // version needed, flags, method (stored), fixed 1980-01-01 timestamp
        // (reproducible files), CRC, sizes, name length, extra length.
        std::vector<unsigned char> common;
        put16(common, 20);
        put16(common, utf8 ? 0x0800 : 0);
        put16(common, 0);
        put16(common, 0);
        put16(common, 0x21);
        put32(common, crc);
        put32(common, size);
        put32(common, size);
        put16(common, static_cast<std::uint32_t>(member.size()));
        put16(common, 0);

        std::vector<unsigned char> local;
        put32(local, kLocalSig);
        local.insert(local.end(), common.begin(), common.end());
        local.insert(local.end(), member.begin(), member.end());
        out.write(local);
        out.write(h, headers[i].size());
        out.write(a.bytes.data(), a.bytes.size());

        put32(central, kCentralSig);
        put16(central, 20);  // version made by
        central.insert(central.end(), common.begin(), common.end());
        put16(central, 0);   // comment length
        put16(central, 0);   // disk number
        put16(central, 0);   // internal attributes
        put32(central, 0);   // external attributes
        put32(central, offset);
        central.insert(central.end(), member.begin(), member.end());
    }
    const auto cd_offset = static_cast<std::uint32_t>(out.written);
    std::vector<unsigned char> end;
    put32(end, kEndSig);
    put16(end, 0);
    put16(end, 0);
    put16(end, static_cast<std::uint32_t>(arrays.size()));
    put16(end, static_cast<std::uint32_t>(arrays.size()));
    put32(end, static_cast<std::uint32_t>(central.size()));
    put32(end, cd_offset);
    put16(end, 0);
    out.write(central);
    out.write(end);
    out.commit();
}

std::vector<NpyArray> load_npz(const std::string& path) {
    Loader L;
    L.path = path;
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (!fs::exists(st)) L.fail("no such file");
    if (!fs::is_regular_file(st)) L.fail("not a regular file");
    L.file_size = fs::file_size(path, ec);
    if (ec) L.fail("cannot stat: " + ec.message());
    L.in.open(path, std::ios::binary);
    if (!L.in) L.fail(std::string("cannot open: ") + std::strerror(errno));
    if (L.file_size < 22) L.fail("too small to be a zip archive (" + std::to_string(L.file_size) + " bytes)");

    // The end-of-central-directory record sits at the end, before a comment
    // of up to 65535 bytes: search backwards for its signature.
    const std::uint64_t tail_len = std::min<std::uint64_t>(L.file_size, 22 + 0xffff);
    const std::uint64_t tail_off = L.file_size - tail_len;
    const std::vector<unsigned char> tail = L.read_at(tail_off, tail_len, "end of central directory");
    std::size_t eocd = std::string::npos;
    for (std::size_t i = tail.size() - 22 + 1; i-- > 0;) {
        if (get32(&tail[i]) == kEndSig && i + 22 + get16(&tail[i + 20]) == tail.size()) {
            eocd = i;
            break;
        }
    }
    if (eocd == std::string::npos)
        L.fail("not a zip archive, or truncated (no end-of-central-directory record found)");
    const unsigned char* e = &tail[eocd];
    if (get16(e + 4) != 0 || get16(e + 6) != 0 || get16(e + 8) != get16(e + 10))
        L.fail("multi-disk zip archives are not supported");
    std::uint64_t count = get16(e + 10), cd_size = get32(e + 12), cd_offset = get32(e + 16);
    std::uint64_t cd_limit = tail_off + eocd;  // the central directory must end before this

    // Zip64: the real values are in a zip64 end record, found via a locator
    // just before the classic record.
    if ((count == 0xffff || cd_size == kMax32 || cd_offset == kMax32) && tail_off + eocd >= 20) {
        const auto loc = L.read_at(tail_off + eocd - 20, 20, "zip64 end locator");
        if (get32(loc.data()) == kZip64LocatorSig) {
            const std::uint64_t z64 = get64(loc.data() + 8);
            const auto rec = L.read_at(z64, 56, "zip64 end record");
            if (get32(rec.data()) != kZip64EndSig) L.fail("corrupt zip64 end record");
            count = get64(rec.data() + 32);
            cd_size = get64(rec.data() + 40);
            cd_offset = get64(rec.data() + 48);
            cd_limit = z64;
        }
    }
    if (cd_offset > cd_limit || cd_size > cd_limit - cd_offset)
        L.fail("central directory (offset " + std::to_string(cd_offset) + ", " + std::to_string(cd_size) +
               " bytes) does not fit in the file (truncated or corrupt archive)");
    if (count > cd_size / 46) L.fail("central directory claims " + std::to_string(count) + " entries in " +
                                     std::to_string(cd_size) + " bytes (corrupt)");
    const std::vector<unsigned char> cd = L.read_at(cd_offset, cd_size, "central directory");

    std::vector<Entry> entries;
    std::set<std::string> seen;
    std::size_t pos = 0;
    for (std::uint64_t i = 0; i < count; ++i) {
        if (pos + 46 > cd.size() || get32(&cd[pos]) != kCentralSig)
            L.fail("corrupt central directory at entry " + std::to_string(i));
        const unsigned char* c = &cd[pos];
        Entry en;
        en.flags = get16(c + 8);
        en.method = get16(c + 10);
        en.crc = get32(c + 16);
        en.csize = get32(c + 20);
        en.usize = get32(c + 24);
        const std::size_t nlen = get16(c + 28), xlen = get16(c + 30), clen = get16(c + 32);
        en.offset = get32(c + 42);
        if (pos + 46 + nlen + xlen + clen > cd.size()) L.fail("corrupt central directory at entry " + std::to_string(i));
        en.name.assign(reinterpret_cast<const char*>(c + 46), nlen);
        if (!apply_zip64(c + 46 + nlen, xlen, {&en.usize, &en.csize, &en.offset}))
            L.fail(en.name, "missing or short zip64 extra field");
        pos += 46 + nlen + xlen + clen;

        if (en.flags & 0x1) L.fail(en.name, "encrypted members are not supported");
        if (en.method != 0 && en.method != 8)
            L.fail(en.name, "unsupported compression method " + std::to_string(en.method) + " (only stored and deflate)");
        if (en.name.size() < 5 || en.name.compare(en.name.size() - 4, 4, ".npy") != 0)
            L.fail(en.name, "not a .npy member");
        if (!seen.insert(en.name).second) L.fail(en.name, "duplicate member");

        // The local header must agree with the central directory.
        const auto lh = L.read_at(en.offset, 30, "local header of member '" + en.name + "'");
        if (get32(lh.data()) != kLocalSig) L.fail(en.name, "bad local header signature");
        const std::size_t lnlen = get16(lh.data() + 26), lxlen = get16(lh.data() + 28);
        const auto lvar = L.read_at(en.offset + 30, lnlen + lxlen, "local header of member '" + en.name + "'");
        if (std::string(lvar.begin(), lvar.begin() + static_cast<std::ptrdiff_t>(lnlen)) != en.name)
            L.fail(en.name, "local header names a different member");
        if (get16(lh.data() + 8) != en.method) L.fail(en.name, "local header disagrees on the compression method");
        if (!(get16(lh.data() + 6) & 0x8)) {  // else sizes follow the data; trust the central directory
            std::uint64_t lcsize = get32(lh.data() + 18), lusize = get32(lh.data() + 22);
            if (!apply_zip64(lvar.data() + lnlen, lxlen, {&lusize, &lcsize}))
                L.fail(en.name, "missing or short zip64 extra field in the local header");
            if (get32(lh.data() + 14) != en.crc || lcsize != en.csize || lusize != en.usize)
                L.fail(en.name, "local header disagrees with the central directory on CRC or sizes");
        }
        en.data_start = en.offset + 30 + lnlen + lxlen;
        if (en.data_start > cd_offset || en.csize > cd_offset - en.data_start)
            L.fail(en.name, "data (" + std::to_string(en.csize) + " bytes) runs past the central directory (truncated or corrupt)");
        if (en.method == 0 && en.csize != en.usize) L.fail(en.name, "stored member with differing sizes");
        if (en.method == 8 && en.usize > en.csize * kMaxDeflateRatio + 1024)
            L.fail(en.name, "implausible decompressed size " + std::to_string(en.usize));
        entries.push_back(std::move(en));
    }

    // Overlapping members would let a small file make us allocate many times
    // its size; a valid archive never has them.
    std::vector<const Entry*> by_offset;
    for (const Entry& en : entries) by_offset.push_back(&en);
    std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
    for (std::size_t i = 1; i < by_offset.size(); ++i)
        if (by_offset[i - 1]->data_start + by_offset[i - 1]->csize > by_offset[i]->offset)
            L.fail(by_offset[i]->name, "overlaps member '" + by_offset[i - 1]->name + "'");

    std::vector<NpyArray> out;
    for (const Entry& en : entries) {
        std::vector<unsigned char> raw = L.read_at(en.data_start, en.csize, "data of member '" + en.name + "'");
        if (en.method == 8) raw = inflate_member(L, en, raw);
        const std::uint32_t crc = crc_of(raw.data(), raw.size(), 0);
        if (crc != en.crc) {
            char buf[80];
            std::snprintf(buf, sizeof buf, "CRC mismatch (stored %08x, computed %08x)", en.crc, crc);
            L.fail(en.name, buf);
        }
        out.push_back(parse_npy(L, en.name, std::move(raw)));
    }
    return out;
}

}  // namespace tapegrad::data
