"""Seed corpora for the readers' fuzzers: small valid files of every format sbgm reads.

usage: make_corpus.py OUT_DIR [SBGM_BINARY]
With the sbgm binary, a tiny trained run gives a real checkpoint and config.toml as seeds.
"""
import gzip
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np


def npy_bytes(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def idx_bytes(a, code):
    return bytes([0, 0, code, a.ndim]) + struct.pack(">" + "I" * a.ndim, *a.shape) + a.astype(a.dtype.newbyteorder(">")).tobytes()


def tensor_file(tensors, metadata):
    """The safetensors layout with sbgm's checksum (tensor_file.hpp)."""
    header, data, crc = {}, b"", 0
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name]).tobytes()
        dtype = {"float32": "F32", "float64": "F64", "int64": "I64", "uint8": "U8"}[str(tensors[name].dtype)]
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    crc = zlib.crc32(data)
    for k in sorted(metadata):
        crc = zlib.crc32(k.encode() + b"\0" + metadata[k].encode() + b"\0", crc)
    for name in sorted(tensors):
        e = header[name]
        sizes = "".join(f"{d}," for d in e["shape"])
        text = f"{name}\0{e['dtype']}\0{sizes}\0{e['data_offsets'][0]},{e['data_offsets'][1]}\0"
        crc = zlib.crc32(text.encode(), crc)
    header["__metadata__"] = dict(metadata, crc32="%08x" % crc)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def main():
    out = Path(sys.argv[1])
    sbgm = sys.argv[2] if len(sys.argv) > 2 else None
    seeds = {r: out / r for r in ["npy", "npz", "data_file", "tensor_file", "checkpoint", "config"]}
    for d in seeds.values():
        d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(5, 2)), rng.normal(size=(3,)).astype(np.float32), np.arange(6).reshape(2, 3),
              np.array([True, False]), np.zeros((2, 2, 2), np.uint8)]
    for i, a in enumerate(arrays):
        (seeds["npy"] / f"{i}.npy").write_bytes(npy_bytes(a))
    for i, save in enumerate([np.savez, np.savez_compressed]):
        b = io.BytesIO()
        save(b, weights=np.ones(2) / 2, means=np.zeros((2, 2)), covs=np.stack([np.eye(2)] * 2))
        (seeds["npz"] / f"{i}.npz").write_bytes(b.getvalue())
    # data_file: the first byte picks the format (fuzz_data_file.cpp).
    (seeds["data_file"] / "csv").write_bytes(b"\x00" + b"x,y\n1,2\n3.5,-4e-1\n")
    img = rng.integers(0, 255, size=(3, 4, 4)).astype(np.uint8)
    (seeds["data_file"] / "idx").write_bytes(b"\x01" + idx_bytes(img, 0x08))
    (seeds["data_file"] / "idx_gz").write_bytes(b"\x02" + gzip.compress(idx_bytes(img.astype(np.float32), 0x0D)))
    cifar = bytes([3]) + bytes(3 * 32 * 32)
    (seeds["data_file"] / "bin").write_bytes(b"\x03" + cifar)
    (seeds["data_file"] / "bin_gz").write_bytes(b"\x04" + gzip.compress(cifar))
    (seeds["data_file"] / "npy").write_bytes(b"\x05" + npy_bytes(rng.normal(size=(4, 3))))
    (seeds["tensor_file"] / "0.safetensors").write_bytes(
        tensor_file({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(3, np.int64)}, {"k": "v"}))
    root = Path(__file__).resolve().parent.parent
    for i, toml in enumerate(sorted(root.glob("examples/**/*.toml"))):
        shutil.copy(toml, seeds["config"] / f"{i}.toml")
    if sbgm:
        with tempfile.TemporaryDirectory() as tmp:
            for name, extra in [("plain", []), ("held_out", ["--train.validation_fraction", "0.2", "--data.size", "200"])]:
                run = Path(tmp) / name
                subprocess.run([sbgm, "train", "--dataset", "moons", "--out", str(run), "--steps", "4", "--batch-size", "8",
                                "--threads", "1", "--model.width", "4", "--model.depth", "1", "--sample.n", "4",
                                "--sample.steps", "2", *extra], check=True, capture_output=True)
                shutil.copy(run / "checkpoint.safetensors", seeds["checkpoint"] / f"{name}.safetensors")
                shutil.copy(run / "config.toml", seeds["config"] / f"{name}.toml")
    print("seed corpora in", out, {r: len(os.listdir(d)) for r, d in seeds.items()})


if __name__ == "__main__":
    main()
