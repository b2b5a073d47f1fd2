#!/usr/bin/env python3
"""Write small valid inputs as the starting corpus of each fuzz target (fuzz/corpus/<target>/).

The corpus is not committed; this script recreates its seeds. The csv target and the image
targets read their first byte as a choice (delimiter; size policy), so their seeds start with one.
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def npy(descr, shape, raw, fortran=False):
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if fortran else "False", shape)
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + raw


def png(w, h, grey=True):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    colour = 0 if grey else 2
    per = 1 if grey else 3
    rows = b"".join(b"\x00" + bytes((x * 37 + y * 11) % 256 for x in range(w * per)) for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def tiff(pages, big=False, tiles=None, deflate=False):
    """A little-endian grey 16-bit TIFF (BigTIFF when `big`) of `pages` (lists of rows), one
    strip per page, or `tiles` (side) tiles; Deflate-compressed when `deflate`."""
    out = bytearray(b"II" + (struct.pack("<HHHQ", 43, 8, 0, 0) if big else struct.pack("<HI", 42, 0)))
    link = 8 if big else 4
    for rows in pages:
        h, w = len(rows), len(rows[0])
        if tiles:
            chunks = []
            for ty in range(0, h, tiles):
                for tx in range(0, w, tiles):
                    chunks.append(b"".join(struct.pack("<H", rows[y][x] if y < h and x < w else 0)
                                           for y in range(ty, ty + tiles) for x in range(tx, tx + tiles)))
        else:
            chunks = [b"".join(struct.pack("<H", v) for r in rows for v in r)]
        if deflate:
            chunks = [zlib.compress(c) for c in chunks]
        offsets = []
        for c in chunks:
            offsets.append(len(out))
            out += c
        long_t, (fmt, size) = (16, ("<Q", 8)) if big else (4, ("<I", 4))
        arr_at = len(out)
        for o in offsets:
            out += struct.pack(fmt, o)
        cnt_at = len(out)
        for c in chunks:
            out += struct.pack(fmt, len(c))
        one = len(chunks) == 1
        entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 16), (259, 3, 1, 8 if deflate else 1),
                   (262, 3, 1, 1), (277, 3, 1, 1)]
        if tiles:
            entries += [(322, 4, 1, tiles), (323, 4, 1, tiles), (324, long_t, len(chunks), offsets[0] if one else arr_at),
                        (325, long_t, len(chunks), len(chunks[0]) if one else cnt_at)]
        else:
            entries += [(273, long_t, 1, offsets[0]), (278, 4, 1, h), (279, long_t, 1, len(chunks[0]))]
        entries.sort()
        ifd_at = len(out)
        out[link:link + size] = struct.pack(fmt, ifd_at)
        out += struct.pack("<Q" if big else "<H", len(entries))
        for tag, typ, count, value in entries:
            if big:
                out += struct.pack("<HHQQ", tag, typ, count, value)
            else:
                out += struct.pack("<HHII", tag, typ, count, value)
        link = len(out)
        out += b"\0" * size
    return bytes(out)


def main():
    # npy
    put("npy", "f4", npy("<f4", "(2, 3)", struct.pack("<6f", 0, 1.5, 2, 3.25, 0, 5)))
    put("npy", "f8-fortran", npy("<f8", "(3, 2)", struct.pack("<6d", 1, 2, 3, 4, 5, 6), True))
    put("npy", "u1", npy("|u1", "(2, 2)", bytes([1, 2, 3, 4])))
    put("npy", "f2-big", npy(">f2", "(1, 2)", bytes([0x3c, 0, 0x40, 0])))
    # npy_stream (first byte: bit 0 samples as rows, bits 1-3 batch size - 1)
    put("npy_stream", "f4-c", b"\x02" + npy("<f4", "(2, 3)", struct.pack("<6f", 0, 1.5, 2, 3.25, 0, 5)))
    put("npy_stream", "f8-fortran-rows", b"\x05" + npy("<f8", "(3, 2)", struct.pack("<6d", 1, 2, 3, 4, 5, 6), True))
    put("npy_stream", "u1-rows", b"\x01" + npy("|u1", "(2, 2)", bytes([1, 2, 3, 4])))
    # csv / tsv (first byte: even = csv, odd = tsv)
    put("csv", "header", b"\x00a,b,c\n1,2,3\n4.5,\"6\",7e-1\n")
    put("csv", "plain", b"\x00\xef\xbb\xbf1, 2\r\n\r\n3 ,4\r\n")
    put("csv", "tsv", b"\x01x\ty\n0\t1\n2\t3\n")
    # mtx
    put("mtx", "coordinate", b"%%MatrixMarket matrix coordinate real general\n% c\n3 3 3\n1 1 1.5\n2 3 2\n3 2 0.25\n")
    put("mtx", "symmetric", b"%%MatrixMarket matrix coordinate integer symmetric\n3 3 2\n1 1 4\n3 1 2\n")
    put("mtx", "pattern", b"%%MatrixMarket matrix coordinate pattern general\n2 3 2\n1 3\n2 1\n")
    put("mtx", "array", b"%%MatrixMarket matrix array real general\n2 2\n1\n2\n3\n4\n")
    put("mtx", "array-sym", b"%%MatrixMarket matrix array real symmetric\n2 2\n1\n2\n3\n")
    # pgm / pnm (first byte: size policy)
    for p in (0, 1, 2):
        put("pgm", "p5-%d" % p, bytes([p]) + b"P5\n4 3\n255\n" + bytes(range(0, 240, 20)))
    put("pgm", "p2", b"\x00P2\n# c\n3 2\n15\n0 1 2\n3 4 15\n")
    put("pgm", "p6", b"\x01P6\n2 2\n255\n" + bytes(range(12)))
    put("pgm", "p4", b"\x02P4\n8 2\n\xaa\x55")
    put("pgm", "p5-16", b"\x00P5\n2 2\n65535\n" + bytes(range(8)))
    # png / jpeg
    put("image_dir", "png-grey", b"\x00" + png(4, 3))
    put("image_dir", "png-rgb", b"\x01" + png(5, 4, grey=False))
    put("image_dir", "png-crop", b"\x02" + png(6, 5))
    if shutil.which("convert"):
        with tempfile.TemporaryDirectory() as tmp:
            for name, args in (("jpeg-grey", ["-size", "8x8", "gradient:black-white"]),
                               ("jpeg-rgb", ["-size", "9x7", "plasma:fractal", "-seed", "1"]),
                               ("jpeg-progressive", ["-size", "16x8", "gradient:red-blue", "-interlace", "Plane"])):
                out = os.path.join(tmp, name + ".jpg")
                try:
                    subprocess.run(["convert"] + args + [out], check=True, capture_output=True)
                    with open(out, "rb") as f:
                        put("image_dir", name, b"\x00" + f.read())
                except (subprocess.CalledProcessError, OSError):
                    pass
    # A JPEG from Python's own test data, where it is installed.
    import glob
    for k, path in enumerate(sorted(glob.glob(os.path.join(sys.base_prefix, "lib", "python3*", "test", "**", "*.jpg"),
                                              recursive=True))[:2]):
        with open(path, "rb") as f:
            data = f.read()
        if len(data) <= 4095:
            put("image_dir", "jpeg-python-%d" % k, bytes([k]) + data)
    # ratings
    put("ratings", "tabs", b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    put("ratings", "colons", b"1::1193::5::978300760\n1::661::3::978302109\n")
    put("ratings", "csv-header", b"userId,movieId,rating,timestamp\nalice,The Matrix,4.5,1\n# c\nbob,Up,3,2\n")
    # gml
    put("gml", "karate", b"graph [\n  node [ id 1 value 0 label \"a\" ]\n  node [ id 2 value 1 ]\n"
        b"  node [ id 3 value 2.5 ]\n  edge [ source 1 target 2 weight 0.5 ]\n  edge [ source 2 target 3 ]\n]\n")
    put("gml", "nested", b"Creator \"x\"\ngraph [ directed 0 node [ id 0 graphics [ x 1.0 ] ] edge [ source 0 target 0 value 2 ] ]\n")
    # edge lists
    put("edge_list", "weights", b"# u v w\n1 2 0.5\n2\t3\n3 1 2 % c\n-4 1\n")
    put("edge_list", "plain", b"0 1\n1 2\n2 0\n2 2\n")
    # distributed blocks (five bytes: rows start, end; columns start, end; bit 0 sparse)
    f4 = npy("<f4", "(3, 4)", struct.pack("<12f", *range(12)))
    f8f = npy("<f8", "(4, 3)", struct.pack("<12d", *range(12)), True)
    for name, head in (("inside", b"\x00\x02\x01\x03\x00"), ("whole", b"\x00\x03\x00\x04\x01"),
                       ("empty", b"\x01\x01\x02\x02\x00"), ("outside", b"\x02\x09\x00\x01\x00")):
        put("npy_block", name, head + f4)
        put("npy_block", name + "-fortran", head + f8f)
    coo = b"%%MatrixMarket matrix coordinate real general\n3 4 4\n1 1 1.5\n2 3 2\n3 4 0.25\n3 1 7\n"
    sym = b"%%MatrixMarket matrix coordinate integer symmetric\n4 4 3\n1 1 4\n3 1 2\n4 2 1\n"
    for name, head in (("inside", b"\x00\x02\x01\x03\x01"), ("whole", b"\x00\x03\x00\x04\x00"),
                       ("reversed", b"\x02\x01\x00\x04\x01")):
        put("mtx_block", name, head + coo)
        put("mtx_block", name + "-sym", head + sym)
    # image streams (first byte: policy, preprocessing, batch size; files cut at FF 00 FF 00)
    cut = b"\xff\x00\xff\x00"
    pgm = b"P5\n4 3\n255\n" + bytes(range(0, 240, 20))
    put("image_stream", "one", b"\x00" + pgm)
    put("image_stream", "two-resize", b"\x15" + pgm + cut + png(4, 3))
    put("image_stream", "three-crop", b"\x26" + png(5, 4, grey=False) + cut + pgm + cut + pgm)
    # TIFF stacks (first byte: block start and batch, see common::tiff)
    f0 = [[(x * 7 + y * 3) % 50 for x in range(5)] for y in range(3)]
    f1 = [[v * 2 for v in r] for r in f0]
    put("tiff", "strips", b"\x00" + tiff([f0, f1]))
    put("tiff", "big-deflate", b"\x15" + tiff([f0, f1, f0], big=True, deflate=True))
    put("tiff", "tiles", b"\x26" + tiff([f0, f1], tiles=16))
    put("tiff", "big-tiles", b"\x3b" + tiff([f1], big=True, tiles=16, deflate=True))
    zarr_seeds()
    hdf5_seeds()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def zarr_seeds():
    """Zarr arrays (see common::zarr: a choice byte, the metadata, a NUL, the first chunk) and
    chunk streams (common::zarr_codec: codecs, decoded size, the stream)."""
    import gzip
    import json
    raw = b"".join(struct.pack("<H", (i * 37) % 1000) for i in range(12))
    v2 = lambda comp, order="C": json.dumps({
        "zarr_format": 2, "shape": [3, 2, 2], "chunks": [3, 2, 2], "dtype": "<u2",
        "compressor": comp, "fill_value": 0, "order": order, "filters": None}).encode()
    put("zarr", "v2-raw", b"\x00" + v2(None) + b"\x00" + raw)
    put("zarr", "v2-zlib-f", b"\x2a" + v2({"id": "zlib", "level": 1}, "F") + b"\x00" + zlib.compress(raw))
    put("zarr", "v2-gzip", b"\x50" + v2({"id": "gzip", "level": 1}) + b"\x00" + gzip.compress(raw))
    put("zarr", "v2-lz4", b"\x00" + v2({"id": "lz4"}) + b"\x00" + struct.pack("<I", len(raw)) + bytes([0xF0, len(raw) - 15]) + raw)
    v3 = lambda codecs, dtype="uint16": json.dumps({
        "zarr_format": 3, "node_type": "array", "shape": [3, 2, 2], "data_type": dtype,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [3, 2, 2]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0, "codecs": codecs}).encode()
    little = {"name": "bytes", "configuration": {"endian": "little"}}
    put("zarr", "v3-raw", b"\x01" + v3([little]) + b"\x00" + raw)
    put("zarr", "v3-gzip", b"\x33" + v3([little, {"name": "gzip", "configuration": {"level": 1}}]) + b"\x00" + gzip.compress(raw))
    put("zarr", "v3-crc-transpose", b"\x4d" + v3([{"name": "transpose", "configuration": {"order": [2, 0, 1]}}, little, {"name": "crc32c"}]) + b"\x00" + raw + struct.pack("<I", crc32c(raw)))
    fixture = os.path.join(os.path.dirname(ROOT), "..", "tests", "fixtures", "zarr", "v2.zarr")
    for name in ("blosc_lz4_u2", "blosc_zstd_f4", "blosc_zlib_i2"):
        with open(os.path.join(fixture, name, ".zarray"), "rb") as f:
            meta = f.read()
        with open(os.path.join(fixture, name, "0.0.0"), "rb") as f:
            chunk = f.read()
        put("zarr", name, b"\x00" + meta + b"\x00" + chunk)
        put("zarr_codec", name, bytes([(6 << 3) | 3]) + struct.pack("<H", 4 * 8 * 8 * (4 if "f4" in name else 2)) + chunk)
    size = struct.pack("<H", len(raw))
    put("zarr_codec", "zlib", bytes([(6 << 3) | 0]) + size + zlib.compress(raw))
    put("zarr_codec", "gzip", bytes([(6 << 3) | 1]) + size + gzip.compress(raw))
    put("zarr_codec", "lz4", bytes([(6 << 3) | 4]) + size + struct.pack("<I", len(raw)) + bytes([0xF0, len(raw) - 15]) + raw)
    put("zarr_codec", "crc-zlib", bytes([(0 << 3) | 5]) + size + zlib.compress(raw + struct.pack("<I", crc32c(raw))))


def hdf5_seeds():
    """Dataset headers (see common::hdf5_header)."""
    dims = lambda *d: b"".join(struct.pack("<Q", x) for x in d)
    put("hdf5_header", "movie", bytes([3, 0, 1 | (20 << 3), (2 << 4) | 1, 3, 40, 2, 1]) + dims(100, 8, 8) + dims(10, 8, 8))
    put("hdf5_header", "table", bytes([2, 0, 0, (4 << 4) | 2, 0, 3, 0, 0]) + dims(1000, 30))
    put("hdf5_header", "line", bytes([1, 0, 1, (8 << 4) | 0, 0, 0, 5, 9]) + dims(77) + dims(7))


if __name__ == "__main__":
    main()
    sys.exit(0)
