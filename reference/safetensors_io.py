"""Minimal safetensors reader/writer (numpy only), so the reference needs neither the
`safetensors` package nor open_clip.

Format: 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
then the raw little-endian tensor bytes; offsets are relative to the end of the header.
"""
import json
import struct

import numpy as np

_READ_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}
_WRITE_DTYPES = {"f32": ("F32", np.dtype("<f4")), "f16": ("F16", np.dtype("<f2"))}


def read_safetensors(path):
    """Returns {name: float32 ndarray} for every tensor in the file (F32, F16 or BF16 stored)."""
    with open(path, "rb") as f:
        blob = f.read()
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + header_len].decode("utf-8"))
    data_start = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = info["dtype"]
        if dtype not in _READ_DTYPES:
            raise ValueError(f"{path}: tensor {name} has dtype {dtype}; only F32, F16 and BF16 are supported")
        begin, end = info["data_offsets"]
        raw = np.frombuffer(blob, dtype=_READ_DTYPES[dtype], count=(end - begin) // _READ_DTYPES[dtype].itemsize,
                            offset=data_start + begin)
        if dtype == "BF16":
            # bfloat16 is the high half of a float32: shift it into place.
            values = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            values = raw.astype(np.float32)
        tensors[name] = values.reshape(info["shape"]).copy()
    return tensors


def write_safetensors(path, tensors, dtype="f32"):
    """Writes {name: ndarray} with every tensor stored as `dtype` ('f32' or 'f16')."""
    tag, np_dtype = _WRITE_DTYPES[dtype]
    header = {"__metadata__": {"format": "pt"}}
    chunks = []
    offset = 0
    for name, array in tensors.items():
        # Integer buffers (transformers' position_ids) keep their type: I64.
        is_int = np.issubdtype(np.asarray(array).dtype, np.integer)
        data = np.ascontiguousarray(array, dtype="<i8" if is_int else np_dtype).tobytes()
        header[name] = {"dtype": "I64" if is_int else tag, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # The data section starts 8-byte aligned, padded with spaces as the reference implementation does.
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for chunk in chunks:
            f.write(chunk)
