#include <tapegrad/nn/data/npz.hpp>

#include <zip.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <set>

// The zip container is libzip's business (central directory, zip64, deflate,
// CRCs, consistency of local headers); this file keeps the .npy payload
// (header writer and parser), the checks that bound what a hostile archive
// can make us allocate, and the file-system side of an atomic save.

namespace tapegrad::data {

std::size_t detail::npz_fail_after_bytes = std::numeric_limits<std::size_t>::max();

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxNpyDims = 64;           // numpy's own limit
constexpr std::uint64_t kMaxDeflateRatio = 1032;  // deflate cannot expand more
constexpr std::uint64_t kEmptyZipSize = 22;       // just the end-of-central-directory record
constexpr std::uint64_t kLocalHeaderSize = 30, kCentralEntrySize = 46;  // without name and extras
// A fixed timestamp for every member, so saving twice gives identical bytes.
// Noon on 1980-01-02 UTC: a valid zip (DOS) date in every time zone.
constexpr time_t kMemberTime = 315662400;

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

std::string zip_message(int code, int system_code = 0) {
    zip_error_t e;
    zip_error_init_with_code(&e, code);
    if (system_code) zip_error_set(&e, code, system_code);
    std::string s = zip_error_strerror(&e);
    zip_error_fini(&e);
    return s;
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

// Where libzip writes a new archive: a temporary file beside the target,
// fsynced and renamed over it on commit, deleted on rollback. libzip's own
// file source also renames, but does not fsync (a crash soon after the
// rename could leave an empty file) and offers no way to inject a failure.
struct TempFileTarget {
    std::string target, path;
    int fd = -1;
    std::uint64_t written = 0;
    std::string why;  // our reason for a failure, more precise than libzip's
    zip_error_t error;

    explicit TempFileTarget(std::string t) : target(std::move(t)) { zip_error_init(&error); }
    ~TempFileTarget() {
        discard();
        zip_error_fini(&error);
    }

    [[noreturn]] void fail(const std::string& reason) const { throw IoError("save_npz: '" + target + "': " + reason); }
    zip_int64_t refuse(const std::string& reason, int code, int system_code) {
        if (why.empty()) why = reason;
        zip_error_set(&error, code, system_code);
        return -1;
    }
    zip_int64_t refuse_errno(const std::string& what, int code) {
        const int e = errno;
        return refuse(what + ": " + std::strerror(e), code, e);
    }

    zip_int64_t create() {
        static std::atomic<unsigned> counter{0};
        const fs::path t(target);
        const fs::path dir = t.has_parent_path() ? t.parent_path() : fs::path(".");
        for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
            const auto tick = std::chrono::steady_clock::now().time_since_epoch().count();
            path = (dir / ("." + t.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                           std::to_string(counter++) + "." + std::to_string(tick % 1000000)))
                       .string();
            // O_EXCL: never clobber another writer's file; 0666 lets umask decide.
            fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (fd < 0 && errno != EEXIST) break;
        }
        if (fd < 0) {
            path.clear();
            return refuse_errno("cannot create a temporary file in the same folder", ZIP_ER_TMPOPEN);
        }
        return 0;
    }

    zip_int64_t write(const void* data, std::uint64_t n) {
        const auto* p = static_cast<const unsigned char*>(data);
        const std::uint64_t asked = n;
        if (written + n > detail::npz_fail_after_bytes) {
            n = detail::npz_fail_after_bytes - written;  // write what is allowed, then fail
            why = "injected failure after " + std::to_string(detail::npz_fail_after_bytes) + " bytes";
        }
        while (n > 0) {
            const ssize_t r = ::write(fd, p, std::min<std::uint64_t>(n, std::uint64_t{1} << 30));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return refuse_errno("write failed", ZIP_ER_WRITE);
            p += r;
            n -= static_cast<std::uint64_t>(r);
            written += static_cast<std::uint64_t>(r);
        }
        if (!why.empty()) return refuse(why, ZIP_ER_WRITE, EIO);
        return static_cast<zip_int64_t>(asked);
    }

    // Make the data durable, then atomically replace the target.
    zip_int64_t commit() {
        if (::fsync(fd) != 0) return refuse_errno("fsync failed", ZIP_ER_WRITE);
        const int rc = ::close(fd);
        fd = -1;
        if (rc != 0) return refuse_errno("close failed", ZIP_ER_CLOSE);
        if (std::rename(path.c_str(), target.c_str()) != 0)
            return refuse_errno("cannot rename the temporary file over it", ZIP_ER_RENAME);
        path.clear();
        // Persist the rename itself; failure here loses nothing already written.
        const fs::path t(target);
        const int dfd = ::open(t.has_parent_path() ? t.parent_path().c_str() : ".", O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            ::fsync(dfd);
            ::close(dfd);
        }
        return 0;
    }

    void discard() {
        if (fd >= 0) ::close(fd);
        fd = -1;
        if (!path.empty()) ::unlink(path.c_str());
        path.clear();
    }
};

// libzip's interface to TempFileTarget: a write-only source. There is no
// archive to read (a new one replaces the target), so stat says "no file".
zip_int64_t temp_file_source(void* state, void* data, zip_uint64_t len, zip_source_cmd_t cmd) {
    auto& f = *static_cast<TempFileTarget*>(state);
    switch (cmd) {
        case ZIP_SOURCE_SUPPORTS: return ZIP_SOURCE_SUPPORTS_WRITABLE;
        case ZIP_SOURCE_STAT: zip_error_set(&f.error, ZIP_ER_READ, ENOENT); return -1;
        case ZIP_SOURCE_BEGIN_WRITE: return f.create();
        case ZIP_SOURCE_WRITE: return f.write(data, len);
        case ZIP_SOURCE_SEEK_WRITE: {
            const auto* a = ZIP_SOURCE_GET_ARGS(zip_source_args_seek_t, data, len, &f.error);
            if (!a) return -1;
            if (::lseek(f.fd, a->offset, a->whence) < 0) return f.refuse_errno("seek failed", ZIP_ER_SEEK);
            return 0;
        }
        case ZIP_SOURCE_TELL_WRITE: {
            const off_t at = ::lseek(f.fd, 0, SEEK_CUR);
            return at < 0 ? f.refuse_errno("tell failed", ZIP_ER_TELL) : at;
        }
        case ZIP_SOURCE_COMMIT_WRITE: return f.commit();
        case ZIP_SOURCE_ROLLBACK_WRITE: f.discard(); return 0;
        case ZIP_SOURCE_ERROR: return zip_error_to_data(&f.error, data, len);
        case ZIP_SOURCE_FREE: return 0;  // f belongs to save_npz
        default: zip_error_set(&f.error, ZIP_ER_OPNOTSUPP, 0); return -1;
    }
}

struct ArchiveCloser {
    void operator()(zip_t* za) const { zip_discard(za); }
};
using Archive = std::unique_ptr<zip_t, ArchiveCloser>;

// ---------------------------------------------------------------- reading

struct Loader {
    std::string path;
    [[noreturn]] void fail(const std::string& why) const { throw IoError("load_npz: '" + path + "': " + why); }
    [[noreturn]] void fail(const std::string& member, const std::string& why) const {
        fail("member '" + member + "': " + why);
    }
};

// libzip's error, in words that say what is wrong with the file.
std::string open_reason(int code) {
    switch (code) {
        case ZIP_ER_NOZIP:
            return "not a zip archive, or truncated (no end-of-central-directory record that describes a valid "
                   "central directory)";
        case ZIP_ER_INCONS:
            return "inconsistent archive (a local header disagrees with the central directory, or a member runs "
                   "past it): truncated or corrupt";
        case ZIP_ER_MULTIDISK: return "multi-disk zip archives are not supported (or corrupt entry counts)";
        case ZIP_ER_EXISTS: return "duplicate member (two entries of the same name)";
        default: return "cannot open as a zip archive: " + zip_message(code, code == ZIP_ER_OPEN ? errno : 0);
    }
}

std::string read_reason(const zip_stat_t& st, zip_error_t* e) {
    char buf[80];
    switch (zip_error_code_zip(e)) {
        case ZIP_ER_CRC: std::snprintf(buf, sizeof buf, "CRC mismatch (stored %08x)", st.crc); return buf;
        case ZIP_ER_COMPRESSED_DATA:
        case ZIP_ER_ZLIB: return std::string("corrupt or truncated deflate data: ") + zip_error_strerror(e);
        case ZIP_ER_EOF: return "data ends early (truncated or corrupt)";
        default: return std::string("cannot read: ") + zip_error_strerror(e);
    }
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
    }

    TempFileTarget out(path);
    if (arrays.empty()) {
        // libzip deletes an archive left without members instead of writing
        // it; numpy.savez of nothing writes the bare end record, as we do.
        static const unsigned char empty[kEmptyZipSize] = {'P', 'K', 5, 6};
        if (out.create() < 0 || out.write(empty, sizeof empty) < 0 || out.commit() < 0) out.fail(out.why);
        return;
    }
    zip_error_t error;
    zip_error_init(&error);
    zip_source_t* target = zip_source_function_create(temp_file_source, &out, &error);
    Archive za(target ? zip_open_from_source(target, ZIP_CREATE | ZIP_TRUNCATE, &error) : nullptr);
    if (!za) {
        if (target) zip_source_free(target);
        const std::string why = zip_error_strerror(&error);
        zip_error_fini(&error);
        out.fail("cannot start a zip archive: " + why);
    }
    zip_error_fini(&error);
    for (std::size_t i = 0; i < arrays.size(); ++i) {
        // Header and data as two fragments of one member: no copy of the data.
        const zip_buffer_fragment_t parts[2] = {
            {reinterpret_cast<zip_uint8_t*>(headers[i].data()), headers[i].size()},
            {const_cast<zip_uint8_t*>(arrays[i].bytes.data()), arrays[i].bytes.size()}};
        zip_source_t* member = zip_source_buffer_fragment(za.get(), parts, 2, 0);
        const zip_int64_t index =
            member ? zip_file_add(za.get(), (arrays[i].name + ".npy").c_str(), member, ZIP_FL_ENC_UTF_8) : -1;
        if (index < 0) {
            if (member) zip_source_free(member);
            out.fail("cannot add array '" + arrays[i].name + "': " + zip_strerror(za.get()));
        }
        // Stored, as numpy.savez writes them.
        if (zip_set_file_compression(za.get(), index, ZIP_CM_STORE, 0) < 0 ||
            zip_file_set_mtime(za.get(), index, kMemberTime, 0) < 0)
            out.fail("cannot set up array '" + arrays[i].name + "': " + zip_strerror(za.get()));
    }
    if (zip_close(za.get()) < 0) out.fail(out.why.empty() ? std::string(zip_strerror(za.get())) : out.why);
    za.release();  // zip_close freed it
}

std::vector<NpyArray> load_npz(const std::string& path) {
    Loader L{path};
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (!fs::exists(st)) L.fail("no such file");
    if (!fs::is_regular_file(st)) L.fail("not a regular file");
    const std::uint64_t file_size = fs::file_size(path, ec);
    if (ec) L.fail("cannot stat: " + ec.message());
    // libzip takes an empty file for an empty archive; numpy does not.
    if (file_size < kEmptyZipSize)
        L.fail("too small to be a zip archive (" + std::to_string(file_size) + " bytes)");

    int code = 0;
    Archive za(zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code));
    if (!za) L.fail(open_reason(code));
    const zip_int64_t count = zip_get_num_entries(za.get(), 0);

    // Check every member before reading any: a small hostile file must not
    // make us allocate many times its size.
    std::vector<zip_stat_t> members;
    std::set<std::string> seen;
    std::uint64_t needed = kEmptyZipSize;
    for (zip_int64_t i = 0; i < count; ++i) {
        zip_stat_t s;
        if (zip_stat_index(za.get(), static_cast<zip_uint64_t>(i), ZIP_FL_ENC_RAW, &s) < 0)
            L.fail("corrupt central directory at entry " + std::to_string(i) + ": " + zip_strerror(za.get()));
        const std::string name = s.name;
        if (s.encryption_method != ZIP_EM_NONE) L.fail(name, "encrypted members are not supported");
        if (s.comp_method != ZIP_CM_STORE && s.comp_method != ZIP_CM_DEFLATE)
            L.fail(name, "unsupported compression method " + std::to_string(s.comp_method) +
                             " (only stored and deflate)");
        if (name.size() < 5 || name.compare(name.size() - 4, 4, ".npy") != 0) L.fail(name, "not a .npy member");
        if (!seen.insert(name).second) L.fail(name, "duplicate member");
        if (s.comp_method == ZIP_CM_STORE && s.comp_size != s.size)
            L.fail(name, "stored member with differing sizes");
        if (s.comp_method == ZIP_CM_DEFLATE && s.size > s.comp_size * kMaxDeflateRatio + 1024)
            L.fail(name, "implausible decompressed size " + std::to_string(s.size));
        // Every member needs its local header, data and central entry, all
        // disjoint: overlapping members (a zip bomb's trick) need more bytes
        // than the file has. libzip does not check this.
        if (s.comp_size > file_size) L.fail(name, "compressed size " + std::to_string(s.comp_size) + " exceeds the file");
        needed += kLocalHeaderSize + kCentralEntrySize + 2 * name.size() + s.comp_size;
        if (needed > file_size)
            L.fail(name, "the members need at least " + std::to_string(needed) + " bytes but the file has " +
                             std::to_string(file_size) + ": overlapping members, or corrupt sizes");
        members.push_back(s);
    }

    std::vector<NpyArray> out;
    for (const zip_stat_t& s : members) {
        std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> f(zip_fopen_index(za.get(), s.index, 0), zip_fclose);
        if (!f) L.fail(s.name, read_reason(s, zip_get_error(za.get())));
        std::vector<unsigned char> raw(static_cast<std::size_t>(s.size));
        unsigned char probe;
        // The read past the declared size reaches the end, where libzip checks the CRC.
        const zip_int64_t got = zip_fread(f.get(), raw.data(), raw.size());
        const zip_int64_t more = got == static_cast<zip_int64_t>(raw.size()) ? zip_fread(f.get(), &probe, 1) : 0;
        if (got < 0 || more < 0) L.fail(s.name, read_reason(s, zip_file_get_error(f.get())));
        if (static_cast<std::uint64_t>(got) != s.size || more != 0)
            L.fail(s.name, "data " + std::string(more ? "longer" : "shorter") + " than the declared " +
                               std::to_string(s.size) + " bytes");
        out.push_back(parse_npy(L, s.name, std::move(raw)));
    }
    return out;
}

}  // namespace tapegrad::data
