// Tests of the numpy .npz reader and the atomic .npz writer.
#include <doctest/doctest.h>

#include "file_test_util.hpp"

#include <tapegrad/core/error.hpp>
#include <tapegrad/nn/data/npz.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using tapegrad::DtypeError;
using tapegrad::IoError;
using tapegrad::ValueError;
using namespace tapegrad::data;

namespace {

using namespace file_test;

std::string npz_error(const std::string& path) {
    try {
        load_npz(path);
    } catch (const IoError& e) {
        return e.what();
    }
    return "<loaded without error>";
}

std::vector<NpyArray> sample_arrays() {
    return {NpyArray::from_floats("w", {2, 3}, {0, 1, 2, 3, 4, 5}),
            NpyArray::from_doubles("b", {3}, {0.5, -1.5, 1e300}),
            NpyArray::from_int64("step", {}, {-42}),
            NpyArray::from_vector<std::int32_t>("labels", {4}, {1, -2, 3, 2147483647}),
            NpyArray::from_vector<std::uint8_t>("mask", {0, 5}, {})};
}

// Restores the fault-injection hook even if a check throws.
struct FailAfter {
    explicit FailAfter(std::size_t n) { detail::npz_fail_after_bytes = n; }
    ~FailAfter() { detail::npz_fail_after_bytes = std::numeric_limits<std::size_t>::max(); }
};

}  // namespace

TEST_CASE("npz: round trip of every supported dtype") {
    TempDir tmp("npz");
    const auto arrays = sample_arrays();
    save_npz(tmp / "m.npz", arrays);
    const auto back = load_npz(tmp / "m.npz");
    REQUIRE(back.size() == arrays.size());
    for (std::size_t i = 0; i < arrays.size(); ++i) {
        CAPTURE(arrays[i].name);
        CHECK(back[i].name == arrays[i].name);
        CHECK(back[i].descr == arrays[i].descr);
        CHECK(back[i].shape == arrays[i].shape);
        CHECK(back[i].bytes == arrays[i].bytes);
    }
    CHECK(back[0].to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4, 5});
    CHECK(back[1].to_vector<double>() == std::vector<double>{0.5, -1.5, 1e300});
    CHECK(back[2].to_vector<std::int64_t>() == std::vector<std::int64_t>{-42});
    CHECK(back[2].size() == 1);
    CHECK(back[3].to_vector<std::int32_t>()[3] == 2147483647);
    CHECK(back[4].size() == 0);

    // Saving twice gives identical bytes (fixed timestamps), and an empty archive works.
    save_npz(tmp / "m2.npz", arrays);
    CHECK(read_bytes(tmp / "m.npz") == read_bytes(tmp / "m2.npz"));
    save_npz(tmp / "none.npz", {});
    CHECK(load_npz(tmp / "none.npz").empty());
}

TEST_CASE("npz: .npy headers follow the v1.0 layout") {
    TempDir tmp("npz");
    save_npz(tmp / "one.npz", {NpyArray::from_floats("x", {3}, {1, 2, 3})});
    const Bytes raw = read_bytes(tmp / "one.npz");
    const std::string s(raw.begin(), raw.end());
    REQUIRE(s.compare(0, 4, "PK\x03\x04") == 0);
    const std::size_t npy = s.find("\x93NUMPY");
    REQUIRE(npy != std::string::npos);
    CHECK(raw[npy + 6] == 1);
    CHECK(raw[npy + 7] == 0);
    const std::size_t hlen = raw[npy + 8] | (raw[npy + 9] << 8);
    CHECK((10 + hlen) % 64 == 0);
    CHECK(s[npy + 10 + hlen - 1] == '\n');
    CHECK(contains(s.substr(npy + 10, hlen), "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"));
}

TEST_CASE("npz: typed access checks the dtype") {
    const NpyArray a = NpyArray::from_floats("weight", {2}, {1, 2});
    CHECK_THROWS_WITH_AS(a.to_vector<double>(), doctest::Contains("'weight'"), DtypeError);
    CHECK_THROWS_WITH_AS(a.to_vector<double>(), doctest::Contains("<f4"), DtypeError);
    CHECK_THROWS_WITH_AS(a.to_vector<double>(), doctest::Contains("<f8"), DtypeError);
    CHECK_THROWS_AS(NpyArray::from_floats("w", {2, 2}, {1, 2, 3}), ValueError);
    NpyArray broken = a;
    broken.bytes.pop_back();
    CHECK_THROWS_AS(broken.to_vector<float>(), ValueError);
}

TEST_CASE("npz: invalid arrays are refused before the old file is touched") {
    TempDir tmp("npz");
    const std::string path = tmp / "model.npz";
    save_npz(path, sample_arrays());
    const Bytes before = read_bytes(path);

    auto bad = sample_arrays();
    bad[1].bytes.resize(5);  // does not match shape (3,) of <f8
    CHECK_THROWS_WITH_AS(save_npz(path, bad), doctest::Contains("'b'"), ValueError);
    bad = sample_arrays();
    bad[0].descr = "<c8";
    CHECK_THROWS_AS(save_npz(path, bad), ValueError);
    bad = sample_arrays();
    bad[2].name = "w";  // duplicate
    CHECK_THROWS_AS(save_npz(path, bad), ValueError);

    CHECK(read_bytes(path) == before);
    CHECK(tmp.listing() == std::vector<std::string>{"model.npz"});
}

TEST_CASE("npz: a failure in the middle of a save leaves the old file intact") {
    TempDir tmp("npz");
    const std::string path = tmp / "model.npz";
    save_npz(path, sample_arrays());
    const Bytes before = read_bytes(path);

    std::vector<NpyArray> bigger = sample_arrays();
    bigger.push_back(NpyArray::from_floats("extra", {100}, std::vector<float>(100, 7.0f)));
    for (std::size_t fail_at : {std::size_t{0}, std::size_t{10}, std::size_t{100}, std::size_t{500}, std::size_t{900}}) {
        CAPTURE(fail_at);
        {
            FailAfter hook(fail_at);
            CHECK_THROWS_WITH_AS(save_npz(path, bigger), doctest::Contains("injected failure"), IoError);
        }
        CHECK(read_bytes(path) == before);
        CHECK(tmp.listing() == std::vector<std::string>{"model.npz"});  // no temp file left
    }
    // With the hook off the same save succeeds and replaces the file.
    save_npz(path, bigger);
    CHECK(load_npz(path).size() == bigger.size());
    CHECK(tmp.listing() == std::vector<std::string>{"model.npz"});

    // A folder that does not exist: IoError naming the target.
    const std::string nowhere = (tmp.dir / "missing" / "m.npz").string();
    CHECK_THROWS_WITH_AS(save_npz(nowhere, bigger), doctest::Contains(nowhere.c_str()), IoError);
}

TEST_CASE("npz: corruption gives an IoError naming the file, member and reason") {
    TempDir tmp("npz");
    const std::string path = tmp / "m.npz";
    save_npz(path, {NpyArray::from_floats("w", {4}, {1, 2, 3, 4})});
    const Bytes good = read_bytes(path);
    const std::string s(good.begin(), good.end());
    const std::size_t npy = s.find("\x93NUMPY");
    auto error_for = [&](const Bytes& b) {
        write_bytes(path, b);
        return npz_error(path);
    };

    Bytes b = good;
    b[npy + 64 + 2] ^= 0x10;  // a data byte
    std::string msg = error_for(b);
    CHECK(contains(msg, path));
    CHECK(contains(msg, "member 'w.npy'"));
    CHECK(contains(msg, "CRC mismatch"));

    CHECK(contains(error_for(Bytes(good.begin(), good.begin() + 100)), "no end-of-central-directory record"));
    CHECK(contains(error_for({}), "too small to be a zip archive"));

    b = good;
    b[30] = 'v';  // name in the local header
    CHECK(contains(error_for(b), "local header disagrees with the central directory"));

    const std::string missing = tmp / "missing.npz";
    CHECK(contains(npz_error(missing), missing));
    CHECK(contains(npz_error(missing), "no such file"));
}

TEST_CASE("npz: no input crashes the reader (truncations and byte flips)") {
    TempDir tmp("npz");
    const std::string src = tmp / "m.npz", probe = tmp / "probe.npz";
    save_npz(src, {NpyArray::from_floats("w", {2, 2}, {1, 2, 3, 4}), NpyArray::from_int64("n", {1}, {5})});
    const Bytes good = read_bytes(src);
    for (std::size_t cut = 0; cut < good.size(); ++cut) {
        write_bytes(probe, Bytes(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(cut)));
        CHECK_THROWS_AS(load_npz(probe), IoError);
    }
    int loaded = 0, refused = 0;
    for (std::size_t i = 0; i < good.size(); ++i)
        for (int flip : {0x01, 0x80, 0xff}) {
            Bytes b = good;
            b[i] = static_cast<unsigned char>(b[i] ^ flip);
            write_bytes(probe, b);
            try {
                load_npz(probe);
                ++loaded;
            } catch (const IoError&) {
                ++refused;
            }
        }
    CHECK(refused > 0);
    CHECK(loaded > 0);  // e.g. the timestamp fields are not checked
}

#ifdef TAPEGRAD_TEST_CORPUS_DIR
TEST_CASE("npz: corpus replay") {
    // Reasons the bad_* seeds must report (see scripts/make_reader_corpus.py).
    const std::map<std::string, std::string> reasons = {
        {"bad_bomb.npz", "implausible decompressed size"},
        {"bad_crc.npz", "CRC mismatch"},
        {"bad_descr.npz", "unsupported dtype '<c8'"},
        {"bad_duplicate.npz", "duplicate member"},
        {"bad_fortran.npz", "fortran_order"},
        {"bad_fuzz_zip64_disk_entries_1.npz", "multi-disk"},  // zip64 end record: entries on this disk != total
        {"bad_fuzz_zip64_disk_entries_2.npz", "multi-disk"},
        {"bad_garbage.npz", "not a zip archive"},
        {"bad_header_syntax.npz", "malformed .npy header"},
        {"bad_local_name.npz", "local header disagrees with the central directory"},
        {"bad_method.npz", "unsupported compression method 12"},
        {"bad_name.npz", "not a .npy member"},
        {"bad_npy_magic.npz", "bad .npy magic"},
        {"bad_npy_version.npz", "unsupported .npy version 9.0"},
        {"bad_overlap.npz", "overlapping members"},
        {"bad_shape_mismatch.npz", "needs 32 data bytes, member has 24"},
        {"bad_truncated.npz", "no end-of-central-directory record"},
    };
    int files = 0;
    for (const auto& entry : fs::directory_iterator(fs::path(TAPEGRAD_TEST_CORPUS_DIR) / "npz")) {
        const std::string name = entry.path().filename().string();
        CAPTURE(name);
        ++files;
        try {
            const auto arrays = load_npz(entry.path().string());
            CHECK(name.rfind("ok_", 0) == 0);
            for (const auto& a : arrays) CHECK(a.bytes.size() == a.size() * a.itemsize());
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
