#!/usr/bin/env python3
"""Generate the seed corpus for the IDX and .npz readers (tests/corpus/).

Files named ok_* must load; files named bad_* must be refused with IoError.
Only the standard library is used, and the output is deterministic (fixed
timestamps), so re-running the script reproduces the committed files.

Usage: scripts/make_reader_corpus.py [corpus_dir]   (default tests/corpus)
"""
import gzip
import io
import os
import struct
import sys
import warnings
import zipfile

warnings.simplefilter("ignore")  # zipfile warns about the deliberate duplicate

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "corpus")
IDX_DIR = os.path.join(ROOT, "idx")
NPZ_DIR = os.path.join(ROOT, "npz")
STAMP = (1980, 1, 1, 0, 0, 0)


def put(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, mtime=0)


# ------------------------------------------------------------------ IDX
def idx(type_code, shape, payload):
    return bytes([0, 0, type_code, len(shape)]) + b"".join(struct.pack(">I", d) for d in shape) + payload


u8 = idx(0x08, [2, 3], bytes(range(6)))
f32 = idx(0x0D, [4], struct.pack(">4f", 0.5, -1.0, 2.25, 1e30))
put(IDX_DIR, "ok_u8_2x3.idx", u8)
put(IDX_DIR, "ok_u8_2x3.idx.gz", gz(u8))
put(IDX_DIR, "ok_f32_4.idx", f32)
put(IDX_DIR, "ok_i16_2x2.idx", idx(0x0B, [2, 2], struct.pack(">4h", 1, -2, 300, -32768)))
put(IDX_DIR, "ok_f64_3.idx.gz", gz(idx(0x0E, [3], struct.pack(">3d", 1.5, -2.5, 3.0))))
put(IDX_DIR, "ok_zero_rows.idx", idx(0x08, [0, 28, 28], b""))
put(IDX_DIR, "bad_empty.idx", b"")
put(IDX_DIR, "bad_magic.idx", b"\x01\x02\x08\x01\x00\x00\x00\x01\x07")
put(IDX_DIR, "bad_type.idx", idx(0x07, [1], b"\x00"))
put(IDX_DIR, "bad_zero_dims.idx", bytes([0, 0, 0x08, 0]))
put(IDX_DIR, "bad_nine_dims.idx", idx(0x08, [1] * 9, b"\x00"))
put(IDX_DIR, "bad_trunc_header.idx", u8[:9])
put(IDX_DIR, "bad_trunc_data.idx", u8[:-2])
put(IDX_DIR, "bad_trunc_data.idx.gz", gz(u8[:-2]))
put(IDX_DIR, "bad_trailing.idx", u8 + b"xyz")
put(IDX_DIR, "bad_huge.idx", idx(0x0E, [0xFFFFFFFF, 0xFFFFFFFF], b""))
put(IDX_DIR, "bad_huge.idx.gz", gz(idx(0x08, [60000, 100, 100], b"\x00" * 64)))
corrupt = bytearray(gz(u8 * 20))
corrupt[12] ^= 0xFF  # inside the deflate data
put(IDX_DIR, "bad_corrupt.idx.gz", bytes(corrupt))
badcrc = bytearray(gz(u8))
badcrc[-8] ^= 0x01  # the gzip trailer CRC
put(IDX_DIR, "bad_crc.idx.gz", bytes(badcrc))
put(IDX_DIR, "bad_trunc_stream.idx.gz", gz(u8)[:-10])


# ------------------------------------------------------------------ NPZ
def npy(descr, shape, payload, fortran=False, version=b"\x01\x00", header=None):
    if header is None:
        shp = f"({shape[0]},)" if len(shape) == 1 else "(" + ", ".join(map(str, shape)) + ")"
        header = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shp}, }}"
    h = header.encode("latin1")
    total = (10 + len(h) + 1 + 63) // 64 * 64
    h = h + b" " * (total - 10 - len(h) - 1) + b"\n"
    return b"\x93NUMPY" + version + struct.pack("<H", len(h)) + h + payload


def npz(members, compression=zipfile.ZIP_STORED, zip64=True):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=STAMP)
            info.compress_type = compression
            with zf.open(info, "w", force_zip64=zip64) as f:  # numpy always forces zip64
                f.write(data)
    return buf.getvalue()


W_DATA = struct.pack("<6f", *range(6))
w = npy("<f4", [2, 3], W_DATA)
b = npy("<f8", [3], struct.pack("<3d", 0.5, 1.5, -2.0))
good = npz([("w.npy", w), ("b.npy", b)])
put(NPZ_DIR, "ok_numpy_style.npz", good)
put(NPZ_DIR, "ok_no_zip64.npz", npz([("w.npy", w)], zip64=False))
put(NPZ_DIR, "ok_deflate.npz", npz([("w.npy", w), ("b.npy", b)], zipfile.ZIP_DEFLATED))
put(NPZ_DIR, "ok_scalar_u1_i8.npz", npz([("s.npy", npy("<i8", [], struct.pack("<q", -7))),
                                         ("u.npy", npy("|u1", [0, 4], b""))]))


# Full zip64 structures, as written for archives over 4 GiB: zip64 extras in
# the central directory and a zip64 end record that the classic one defers to.
def zip64_archive():
    saved = zipfile.ZIP64_LIMIT
    zipfile.ZIP64_LIMIT = 100  # pretend 100 bytes is "large"
    try:
        data = bytearray(npz([("w.npy", w), ("b.npy", b)]))
    finally:
        zipfile.ZIP64_LIMIT = saved
    end = data.rindex(b"PK\x05\x06")
    data[end + 8:end + 20] = struct.pack("<HHII", 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    return bytes(data)


put(NPZ_DIR, "ok_zip64.npz", zip64_archive())
put(NPZ_DIR, "bad_garbage.npz", b"this is not a zip archive at all, just text\n" * 3)
put(NPZ_DIR, "bad_truncated.npz", good[: len(good) // 2])
crc = bytearray(good)
crc[good.index(W_DATA) + 2] ^= 0x40  # a data byte of w.npy
put(NPZ_DIR, "bad_crc.npz", bytes(crc))
put(NPZ_DIR, "bad_npy_magic.npz", npz([("w.npy", b"\x93NUMPX" + w[6:])]))
put(NPZ_DIR, "bad_npy_version.npz", npz([("w.npy", npy("<f4", [2, 3], W_DATA, version=b"\x09\x00"))]))
put(NPZ_DIR, "bad_descr.npz", npz([("w.npy", npy("<c8", [3], b"\x00" * 24))]))
put(NPZ_DIR, "bad_fortran.npz", npz([("w.npy", npy("<f4", [2, 3], W_DATA, fortran=True))]))
put(NPZ_DIR, "bad_shape_mismatch.npz", npz([("w.npy", npy("<f4", [2, 4], W_DATA))]))
put(NPZ_DIR, "bad_header_syntax.npz", npz([("w.npy", npy("", [], W_DATA, header="{'descr': '<f4', 'shape': (2, 3}"))]))
put(NPZ_DIR, "bad_name.npz", npz([("w.txt", w)]))
put(NPZ_DIR, "bad_duplicate.npz", npz([("w.npy", w), ("w.npy", w)]))
put(NPZ_DIR, "bad_method.npz", npz([("w.npy", w)], zipfile.ZIP_BZIP2))
mismatch = bytearray(good)
mismatch[30] = ord("q")  # first letter of the name in the first local header
put(NPZ_DIR, "bad_local_name.npz", bytes(mismatch))
# A deflate member whose declared size (local and central) is far beyond
# what its few compressed bytes could produce.
bomb = bytearray(npz([("w.npy", w)], zipfile.ZIP_DEFLATED, zip64=False))
for pos in (22, bomb.index(b"PK\x01\x02") + 24):
    bomb[pos:pos + 4] = struct.pack("<I", 0x7FFFFFFF)
put(NPZ_DIR, "bad_bomb.npz", bytes(bomb))


# Overlap: member b's local header and data sit inside member a's data, so
# both central entries point into the same bytes.
def overlap_archive():
    inner_npy = npy("|u1", [4], b"\x01\x02\x03\x04")
    inner_local = npz([("b.npy", inner_npy)], zip64=False)
    inner_local = inner_local[: inner_local.index(b"PK\x01\x02")]
    outer = npz([("a.npy", npy("|u1", [len(inner_local)], inner_local))], zip64=False)
    cd_at = outer.index(b"PK\x01\x02")
    a_data = outer.index(inner_local)
    info_b = zipfile.ZipInfo("b.npy", date_time=STAMP)
    cd_b = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0x21,
                       zipfile.crc32(inner_npy), len(inner_npy), len(inner_npy),
                       len(info_b.filename), 0, 0, 0, 0, 0, a_data) + b"b.npy"
    eocd_at = outer.index(b"PK\x05\x06")
    cd_a = outer[cd_at:eocd_at]
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 2, 2, len(cd_a) + len(cd_b), cd_at, 0)
    return outer[:cd_at] + cd_a + cd_b + eocd


put(NPZ_DIR, "bad_overlap.npz", overlap_archive())
print("corpus written to", os.path.normpath(ROOT))
