"""A minimal GGUF v3 writer, and a reader for the metadata only (standard library only)."""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGN = 32

# GGUF metadata value types
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32 = range(7)
T_BOOL, T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = range(7, 13)
# ggml tensor types
GGML_F32, GGML_F16 = 0, 1

_SCALAR_FMT = {
    T_UINT8: "<B",
    T_INT8: "<b",
    T_UINT16: "<H",
    T_INT16: "<h",
    T_UINT32: "<I",
    T_INT32: "<i",
    T_FLOAT32: "<f",
    T_BOOL: "<?",
    T_UINT64: "<Q",
    T_INT64: "<q",
    T_FLOAT64: "<d",
}


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One GGUF metadata entry; ``atype`` is the element type when ``vtype`` is an array."""

    key: str
    vtype: int
    value: object
    atype: int | None = None


@dataclass(frozen=True, slots=True)
class Tensor:
    """One tensor: ``dims`` in ggml ``ne`` order (fastest-varying first)."""

    name: str
    dims: list[int]
    gtype: int
    data: bytes


def fail(message: str) -> NoReturn:
    """Stop with ``message`` on stderr and exit status 1, as a CLI error."""
    raise SystemExit(message)


# ---------------------------------------------------------------------------------------------
# minimal GGUF writer
# ---------------------------------------------------------------------------------------------


def _str(s: object) -> bytes:
    if not isinstance(s, str | bytes):
        msg = f"expected a string, got {type(s).__name__}"
        raise TypeError(msg)
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def _value(vtype: int, value: object, atype: int | None = None) -> bytes:
    if vtype == T_STRING:
        return _str(value)
    if vtype == T_ARRAY:
        if atype is None or not isinstance(value, list | tuple):
            msg = "an array value needs a list and an element type"
            raise TypeError(msg)
        out = [struct.pack("<IQ", atype, len(value))]
        if atype == T_STRING:
            out.extend(_str(v) for v in value)
        else:
            fmt = _SCALAR_FMT[atype]
            out.append(struct.pack(f"<{len(value)}{fmt[1]}", *value))
        return b"".join(out)
    return struct.pack(_SCALAR_FMT[vtype], value)


def write_gguf(path: str, kvs: Sequence[KeyValue], tensors: Sequence[Tensor]) -> int:
    """Write a GGUF v3 file atomically (via ``PATH.tmp``) and return its size in bytes."""
    head = [GGUF_MAGIC, struct.pack("<IQQ", GGUF_VERSION, len(tensors), len(kvs))]
    head.extend(
        _str(kv.key) + struct.pack("<I", kv.vtype) + _value(kv.vtype, kv.value, kv.atype)
        for kv in kvs
    )
    offset = 0
    layout = []
    for t in tensors:
        head.append(
            _str(t.name)
            + struct.pack("<I", len(t.dims))
            + struct.pack(f"<{len(t.dims)}Q", *t.dims)
            + struct.pack("<IQ", t.gtype, offset)
        )
        layout.append((offset, t.data))
        offset += len(t.data)
        offset += (-offset) % ALIGN
    blob = b"".join(head)
    blob += b"\0" * ((-len(blob)) % ALIGN)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
        base = f.tell()
        for off, data in layout:
            f.write(b"\0" * (base + off - f.tell()))
            f.write(data)
        size = f.tell()
    os.replace(tmp, path)
    return size


# ---------------------------------------------------------------------------------------------
# minimal GGUF reader (metadata only), for --vocab-from
# ---------------------------------------------------------------------------------------------


class _Reader:
    """Sequential decoder of GGUF metadata values."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos

    def scalar(self, fmt: str) -> object:
        (v,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def integer(self, fmt: str) -> int:
        v = self.scalar(fmt)
        if not isinstance(v, int):
            fail("corrupt GGUF metadata")
        return v

    def string(self) -> str:
        n = self.integer("<Q")
        s = self.buf[self.pos : self.pos + n].decode("utf-8", errors="surrogateescape")
        self.pos += n
        return s

    def value(self, t: int) -> object:
        if t == T_STRING:
            return self.string()
        if t == T_ARRAY:
            at, n = self.integer("<I"), self.integer("<Q")
            return (at, [self.value(at) for _ in range(n)])
        return self.scalar(_SCALAR_FMT[t])


def read_gguf_kvs(path: str) -> dict[str, tuple[int, object]]:
    """The metadata of a GGUF file as ``{key: (vtype, value)}``; arrays as ``(atype, list)``."""
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:4] != GGUF_MAGIC:
        fail(f"{path}: not a GGUF file")
    _version, _n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
    reader = _Reader(buf, 24)
    out: dict[str, tuple[int, object]] = {}
    for _ in range(n_kv):
        key = reader.string()
        t = reader.integer("<I")
        out[key] = (t, reader.value(t))
    return out
