// Tests of the IDX (MNIST format) reader and writer.
#include <doctest/doctest.h>

#include "file_test_util.hpp"

#include <tapegrad/core/error.hpp>
#include <tapegrad/nn/data/idx.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using tapegrad::IoError;
using tapegrad::ValueError;
using namespace tapegrad::data;

namespace {

using namespace file_test;

// The IoError message read_idx gives for `path`, or a marker if it loads.
std::string idx_error(const std::string& path) {
    try {
        read_idx(path);
    } catch (const IoError& e) {
        return e.what();
    }
    return "<loaded without error>";
}

// A valid plain IDX file: uint8, shape (2, 3), values 0..5.
Bytes small_u8_file() { return {0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 1, 2, 3, 4, 5}; }

}  // namespace

TEST_CASE("idx: uint8 round trip, plain and gzip") {
    TempDir tmp("idx");
    std::mt19937 rng(7);
    std::vector<std::uint8_t> pixels(3 * 4 * 5);
    for (auto& p : pixels) p = static_cast<std::uint8_t>(rng());
    const IdxArray a = IdxArray::from_u8({3, 4, 5}, pixels);

    for (bool gzip : {false, true}) {
        CAPTURE(gzip);
        const std::string path = tmp / (gzip ? "img.idx.gz" : "img.idx");
        write_idx(path, a, gzip);
        const Bytes raw = read_bytes(path);
        REQUIRE(raw.size() >= 2);
        CHECK((raw[0] == 0x1f && raw[1] == 0x8b) == gzip);

        const IdxArray b = read_idx(path);
        CHECK(b.type == IdxType::u8);
        CHECK(b.shape == std::vector<std::size_t>{3, 4, 5});
        CHECK(b.size() == 60);
        CHECK(std::vector<std::uint8_t>(b.u8(), b.u8() + b.size()) == pixels);
        const std::vector<float> f = b.to_floats();
        CHECK(f[7] == static_cast<float>(pixels[7]));
    }
}

TEST_CASE("idx: multi-byte types are big-endian on disk and round trip") {
    TempDir tmp("idx");
    const IdxArray f = IdxArray::from_floats({2, 2}, {1.0f, -2.5f, 3.25f, 1e-3f});
    write_idx(tmp / "f.idx", f);
    const Bytes raw = read_bytes(tmp / "f.idx");
    REQUIRE(raw.size() == 4 + 8 + 16);
    CHECK(Bytes(raw.begin() + 12, raw.begin() + 16) == Bytes{0x3f, 0x80, 0x00, 0x00});  // 1.0f
    const IdxArray g = read_idx(tmp / "f.idx");
    CHECK(g.type == IdxType::f32);
    CHECK(g.to_floats() == std::vector<float>{1.0f, -2.5f, 3.25f, 1e-3f});
    CHECK_THROWS_AS(g.u8(), ValueError);

    // int16, int32 and float64 through the generic byte representation.
    IdxArray i16;
    i16.type = IdxType::i16;
    i16.shape = {3};
    const std::int16_t v16[] = {-32768, 300, -2};
    i16.bytes.assign(reinterpret_cast<const std::uint8_t*>(v16), reinterpret_cast<const std::uint8_t*>(v16) + 6);
    write_idx(tmp / "i16.idx.gz", i16, true);
    CHECK(read_idx(tmp / "i16.idx.gz").to_doubles() == std::vector<double>{-32768, 300, -2});

    IdxArray f64;
    f64.type = IdxType::f64;
    f64.shape = {2};
    const double v64[] = {0.1, -1e300};
    f64.bytes.assign(reinterpret_cast<const std::uint8_t*>(v64), reinterpret_cast<const std::uint8_t*>(v64) + 16);
    write_idx(tmp / "f64.idx", f64);
    CHECK(read_idx(tmp / "f64.idx").to_doubles() == std::vector<double>{0.1, -1e300});
}

TEST_CASE("idx: zero-length dimension and int32 labels") {
    TempDir tmp("idx");
    write_idx(tmp / "empty.idx", IdxArray::from_u8({0, 28, 28}, {}));
    const IdxArray e = read_idx(tmp / "empty.idx");
    CHECK(e.shape == std::vector<std::size_t>{0, 28, 28});
    CHECK(e.bytes.empty());

    write_bytes(tmp / "labels.idx", {0, 0, 0x0C, 1, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xfe, 0, 0, 1, 0});
    CHECK(read_idx(tmp / "labels.idx").to_doubles() == std::vector<double>{-2, 256});
}

TEST_CASE("idx: write_idx refuses inconsistent arrays") {
    TempDir tmp("idx");
    IdxArray bad = IdxArray::from_u8({2, 2}, {1, 2, 3, 4});
    bad.bytes.pop_back();
    CHECK_THROWS_AS(write_idx(tmp / "bad.idx", bad), ValueError);
    bad.shape.clear();
    CHECK_THROWS_AS(write_idx(tmp / "bad.idx", bad), ValueError);
    CHECK_THROWS_AS(IdxArray::from_u8({2, 2}, {1, 2, 3}), ValueError);
    CHECK_THROWS_AS(write_idx((tmp.dir / "no_such_dir" / "x.idx").string(), IdxArray::from_u8({1}, {1})), IoError);
}

TEST_CASE("idx: each corruption gives an IoError naming the file and the reason") {
    TempDir tmp("idx");
    const Bytes good = small_u8_file();
    auto check = [&](const std::string& name, const Bytes& content, const std::string& reason) {
        const std::string path = tmp / name;
        write_bytes(path, content);
        const std::string msg = idx_error(path);
        CAPTURE(msg);
        CHECK(contains(msg, path));
        CHECK(contains(msg, reason));
    };
    check("empty.idx", {}, "truncated header: expected 4 magic bytes, got 0");
    check("magic.idx", {1, 2, 8, 1, 0, 0, 0, 1, 9}, "bad magic: expected 00 00 <type> <dims>, found 01 02 08 01");
    check("type.idx", {0, 0, 0x07, 1, 0, 0, 0, 1, 9}, "unknown element type code 0x07");
    check("dims0.idx", {0, 0, 8, 0}, "unsupported number of dimensions 0");
    check("dims9.idx", {0, 0, 8, 9, 0, 0, 0, 1}, "unsupported number of dimensions 9");
    check("header.idx", Bytes(good.begin(), good.begin() + 9), "truncated header: expected 2 dimension sizes");
    check("data.idx", Bytes(good.begin(), good.end() - 2), "truncated data: shape (2, 3) of ubyte needs 6 bytes, got 4");
    Bytes trailing = good;
    trailing.push_back(42);
    check("trailing.idx", trailing, "trailing garbage: 1 bytes after the 6 data bytes");
    check("huge.idx", {0, 0, 0x0E, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "exceeds the 4 GiB limit");
    // Claims 200 MB of pixels in an 18-byte file: refused from the file size, not by allocating.
    check("big.idx", {0, 0, 8, 2, 0, 0, 0x27, 0x10, 0, 0, 0x4e, 0x20, 1, 2}, "truncated data: shape (10000, 20000) of ubyte needs 200000000 bytes, got 2");

    const std::string missing = tmp / "missing.idx";
    CHECK(contains(idx_error(missing), missing));
    CHECK(contains(idx_error(missing), "no such file"));
    CHECK(contains(idx_error(tmp.dir.string()), "not a regular file"));
}

TEST_CASE("idx: corrupt and truncated gzip streams") {
    TempDir tmp("idx");
    const std::string path = tmp / "img.idx.gz";
    write_idx(path, IdxArray::from_u8({4, 50}, std::vector<std::uint8_t>(200, 3)), true);
    const Bytes gz = read_bytes(path);

    Bytes bad_crc = gz;
    bad_crc[gz.size() - 8] ^= 1;  // gzip trailer: CRC-32 of the content
    write_bytes(path, bad_crc);
    CHECK(contains(idx_error(path), "corrupt gzip stream"));
    CHECK(contains(idx_error(path), path));

    Bytes bad_header = gz;
    bad_header[3] = 0xE0;  // reserved gzip flag bits
    write_bytes(path, bad_header);
    CHECK(contains(idx_error(path), "corrupt gzip stream"));

    write_bytes(path, Bytes(gz.begin(), gz.end() - 4));  // trailer cut
    CHECK(contains(idx_error(path), "gzip stream truncated"));
    write_bytes(path, Bytes(gz.begin(), gz.begin() + 14));  // cut inside the deflate data
    CHECK(contains(idx_error(path), "truncated"));
}

TEST_CASE("idx: no input crashes the reader (truncations and byte flips)") {
    TempDir tmp("idx");
    const std::string plain = tmp / "p.idx", gz = tmp / "g.idx.gz", probe = tmp / "probe";
    write_idx(plain, IdxArray::from_floats({2, 3}, {1, 2, 3, 4, 5, 6}));
    write_idx(gz, IdxArray::from_u8({3, 7}, std::vector<std::uint8_t>(21, 9)), true);
    int loaded = 0, refused = 0;
    for (const std::string& src : {plain, gz}) {
        const Bytes good = read_bytes(src);
        for (std::size_t cut = 0; cut < good.size(); ++cut) {
            write_bytes(probe, Bytes(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(cut)));
            CHECK_THROWS_AS(read_idx(probe), IoError);
        }
        for (std::size_t i = 0; i < good.size(); ++i)
            for (int flip : {0x01, 0x80, 0xff}) {
                Bytes b = good;
                b[i] = static_cast<unsigned char>(b[i] ^ flip);
                write_bytes(probe, b);
                try {
                    read_idx(probe);
                    ++loaded;
                } catch (const IoError&) {
                    ++refused;
                }
            }
    }
    CHECK(refused > 0);
    CHECK(loaded > 0);  // e.g. flipped pixel values are still a valid file
}

#ifdef TAPEGRAD_TEST_CORPUS_DIR
TEST_CASE("idx: corpus replay") {
    // Reasons the bad_* seeds must report (see scripts/make_reader_corpus.py).
    const std::map<std::string, std::string> reasons = {
        {"bad_empty.idx", "truncated header"},
        {"bad_magic.idx", "bad magic"},
        {"bad_type.idx", "unknown element type"},
        {"bad_zero_dims.idx", "number of dimensions 0"},
        {"bad_nine_dims.idx", "number of dimensions 9"},
        {"bad_trunc_header.idx", "truncated header"},
        {"bad_trunc_data.idx", "truncated data"},
        {"bad_trunc_data.idx.gz", "truncated data"},
        {"bad_trailing.idx", "trailing garbage"},
        {"bad_huge.idx", "4 GiB"},
        {"bad_huge.idx.gz", "gzip file can hold"},
        {"bad_corrupt.idx.gz", "corrupt gzip stream"},
        {"bad_crc.idx.gz", "corrupt gzip stream"},
        {"bad_trunc_stream.idx.gz", "gzip stream truncated"},
    };
    int files = 0;
    for (const auto& entry : fs::directory_iterator(fs::path(TAPEGRAD_TEST_CORPUS_DIR) / "idx")) {
        const std::string name = entry.path().filename().string();
        CAPTURE(name);
        ++files;
        try {
            const IdxArray a = read_idx(entry.path().string());
            CHECK(name.rfind("ok_", 0) == 0);
            // What loads also writes back unchanged (the fuzz_idx property).
            TempDir tmp("idx");
            write_idx(tmp / "copy.idx", a);
            const IdxArray b = read_idx(tmp / "copy.idx");
            CHECK((b.type == a.type && b.shape == a.shape && b.bytes == a.bytes));
        } catch (const IoError& e) {
            const std::string msg = e.what();
            CAPTURE(msg);
            CHECK(name.rfind("bad_", 0) == 0);
            CHECK(contains(msg, entry.path().string()));
            if (reasons.count(name)) CHECK(contains(msg, reasons.at(name)));
        } catch (const std::exception& e) {
            FAIL("not an IoError: " << e.what());
        }
    }
    CHECK(files >= 10);
}
#endif
