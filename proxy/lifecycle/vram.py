"""GPU memory a backend needs: estimated from its command line and GGUF header, or its pids.

Owns the llama-server flag semantics that size the KV cache and a minimal GGUF v2/v3 metadata
reader. Standard library only; the only I/O is reading a model's header and size, and /proc.
"""

from __future__ import annotations

import os
import re
import shlex
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO, Final

from swapgate.proxy.lifecycle.procfs import group_members

_MIB: Final = 1024 * 1024

# llama-server flags (common/arg.cpp). `--name=value` and `--name_with_underscores` are
# accepted like llama.cpp does; when a flag repeats, the last one wins.
_MODEL_FLAGS: Final = ("-m", "--model")
_CTX_FLAGS: Final = ("-c", "--ctx-size")
_PARALLEL_FLAGS: Final = ("-np", "--parallel")
_UNIFIED_ON: Final = ("-kvu", "--kv-unified")
_UNIFIED_OFF: Final = ("-no-kvu", "--no-kv-unified")
_CACHE_K_FLAGS: Final = ("-ctk", "--cache-type-k")
_CACHE_V_FLAGS: Final = ("-ctv", "--cache-type-v")

# What `-np` absent (or -1, "auto") means: tools/server/server.cpp logs "n_parallel is set to
# auto, using n_parallel = 4 and kv_unified = true" and sets both.
_AUTO_SLOTS: Final = 4
# src/llama-context.cpp: `cparams.n_ctx = GGML_PAD(cparams.n_ctx, 256)`, and in the split
# (non-unified) cache each slot's n_ctx_seq is padded to 256 again.
_CTX_PAD: Final = 256

# KV cache element types: (bytes per block, elements per block), as ggml_row_size counts them.
_CACHE_TYPES: Final[dict[str, tuple[int, int]]] = {
    "f32": (4, 1),
    "f16": (2, 1),
    "bf16": (2, 1),
    "q8_0": (34, 32),  # 32 int8 + one f16 scale: 1.0625 bytes per element
    "q5_0": (22, 32),
    "q5_1": (24, 32),
    "q4_0": (18, 32),  # 32 nibbles + one f16 scale: 0.5625 bytes per element
    "q4_1": (20, 32),
    "iq4_nl": (18, 32),
}
_DEFAULT_CACHE_TYPE: Final = "f16"  # llama.cpp's default; also used for names it would refuse

_SHELLS: Final = frozenset({"sh", "bash", "dash", "zsh", "ash", "ksh", "mksh"})
_MAX_WRAPPING: Final = 4  # sh -c "bash -c '...'" nests; more than this is not a launcher
_SPLIT_NAME: Final = re.compile(r"^(?P<prefix>.*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")


@dataclass(frozen=True, slots=True)
class VramEstimate:
    """GPU memory a llama-server command will take: the model file plus its KV cache, in MiB.

    `mib` is `weights_mib + kv_cache_mib` (each rounded up). `context` is the number of KV cache
    cells llama-server allocates over all slots. Compute buffers and the CUDA context are not
    included (see `estimate_from_argv`).
    """

    mib: int
    model_path: str
    weights_mib: int
    kv_cache_mib: int
    context: int
    detail: str


def estimate_from_argv(argv: Sequence[str]) -> VramEstimate | None:
    """Estimate the GPU memory of a llama-server command; None when it loads no readable GGUF.

    Weights are the file size (all parts of a `-00001-of-0000N.gguf` split): an upper bound with
    partial offload (`-ngl`). The KV cache is 2 (K and V) x layers x cells x n_embd_kv x element
    size, with n_embd_kv = head_count_kv x key_length (value_length for V), the lengths defaulting
    to embedding_length / head_count. Cells follow llama.cpp's src/llama-context.cpp:

    * n_ctx is `-c`, or the trained `<arch>.context_length` when `-c` is 0 or absent (the
      default since `-c` became "0 = loaded from model"), padded up to a multiple of 256.
    * Unified cache (`-kvu`, or `-np` absent / -1, which the server turns into 4 slots with
      kv_unified = true): one stream of n_ctx cells shared by all slots.
    * Split cache (explicit `-np N` without `-kvu`): N streams of pad256(n_ctx / N) cells
      each, i.e. `-c` is the total and each slot gets 1/N of it (llama.cpp PR #17767 documents
      this; n_ctx_seq = n_ctx / n_seq_max). KV memory does not grow with N, except by padding.

    No compute-buffer allowance is added: its size depends on `-ub`, flash attention, the
    vocabulary and the backend (tens of MiB for small models, GiBs for large vocabularies at
    large batches), so no fixed figure would be justified. A measured figure (NVML) includes
    it. Not modelled: sliding-window layers (their cache is smaller unless `--swa-full`), MLA
    caches, draft models and `--mmproj` files, `LLAMA_ARG_*` environment variables, and
    `--fit` shrinking an unset `-c` to fit the device.
    """
    words = _server_argv(argv)
    path = _flag(words, _MODEL_FLAGS)
    if not path:
        return None
    weights = _weights_bytes(path)
    metadata = _read_metadata(path)
    shape = _shape(metadata) if metadata is not None else None
    if weights is None or shape is None:
        return None
    n_ctx = _int_flag(words, _CTX_FLAGS) or shape.n_ctx_train
    if n_ctx <= 0:
        return None
    slots, unified = _slots(words)
    cells, per_slot = _kv_cells(n_ctx, slots, unified)
    type_k, type_v = _cache_type(words, _CACHE_K_FLAGS), _cache_type(words, _CACHE_V_FLAGS)
    per_cell = sum(_row_bytes(k, type_k) + _row_bytes(v, type_v) for k, v in shape.kv_elements)
    weights_mib = _round_up(weights, _MIB) // _MIB
    kv_mib = _round_up(cells * per_cell, _MIB) // _MIB
    if unified and slots > 1:
        tokens = f"{cells} tokens shared by {slots} slots"
    else:
        tokens = f"{per_slot} tokens x {slots} slot{'s' if slots > 1 else ''}"
    detail = f"file {weights_mib} MiB + KV cache {kv_mib} MiB ({type_k}/{type_v}) for {tokens}"
    return VramEstimate(weights_mib + kv_mib, path, weights_mib, kv_mib, cells, detail)


def process_group_pids(pgid: int) -> list[int]:
    """Every live pid whose process group is `pgid`, ascending (zombies excluded), from /proc."""
    return group_members(pgid)


# ---------------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------------


def _server_argv(argv: Sequence[str], depth: int = 0) -> Sequence[str]:
    """The words of the command that names the model: argv, or a `sh -c` script inside it."""
    script = _shell_script(argv) if depth < _MAX_WRAPPING else None
    if script is not None:
        try:
            inner = _server_argv(shlex.split(script), depth + 1)
        except ValueError:  # unbalanced quotes: not a script we can read
            return argv
        if _flag(inner, _MODEL_FLAGS):
            return inner
    return argv


def _shell_script(argv: Sequence[str]) -> str | None:
    """The `-c` script of the first shell in argv (`sh -c`, `bash -lc`, `env X=1 sh -ec`)."""
    start = next((i for i, w in enumerate(argv) if os.path.basename(w) in _SHELLS), None)
    if start is None:
        return None
    words = iter(argv[start + 1 :])
    for word in words:
        if word in ("-o", "+o"):  # `-o pipefail`: an option with an argument
            next(words, None)
        elif word.startswith("-") and not word.startswith("--") and "c" in word[1:]:
            return next(words, None)
        elif not word.startswith(("-", "+")):
            return None  # a script file or a busybox applet name: no -c script
    return None


def _flag(words: Sequence[str], names: Sequence[str]) -> str | None:
    """The value of the last `NAME VALUE` or `NAME=VALUE` among `words`."""
    value = None
    for i, word in enumerate(words):
        name, eq, inline = word.partition("=")
        if name.startswith("--"):
            name = name.replace("_", "-")
        if name in names:
            if eq:
                value = inline
            elif i + 1 < len(words):
                value = words[i + 1]
    return value


def _int_flag(words: Sequence[str], names: Sequence[str]) -> int | None:
    value = _flag(words, names)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None  # llama-server refuses it; the estimate falls back to the default


def _slots(words: Sequence[str]) -> tuple[int, bool]:
    """(number of slots, whether they share one unified KV cache)."""
    parallel = _int_flag(words, _PARALLEL_FLAGS)
    if parallel is None or parallel < 0:
        return _AUTO_SLOTS, True
    unified = False
    for word in words:
        if word in _UNIFIED_ON:
            unified = True
        elif word in _UNIFIED_OFF:
            unified = False
    return max(1, parallel), unified


def _kv_cells(n_ctx: int, slots: int, unified: bool) -> tuple[int, int]:
    """(KV cells over all slots, context per slot) as llama_context sizes them."""
    n_ctx = _round_up(n_ctx, _CTX_PAD)
    if unified:
        return n_ctx, n_ctx
    per_slot = _round_up(max(1, n_ctx // slots), _CTX_PAD)
    return per_slot * slots, per_slot


def _cache_type(words: Sequence[str], names: Sequence[str]) -> str:
    value = (_flag(words, names) or _DEFAULT_CACHE_TYPE).lower()
    return value if value in _CACHE_TYPES else _DEFAULT_CACHE_TYPE


def _row_bytes(elements: int, cache_type: str) -> int:
    block_bytes, block_elements = _CACHE_TYPES[cache_type]
    return elements * block_bytes // block_elements


def _round_up(n: int, unit: int) -> int:
    return -(-n // unit) * unit


def _weights_bytes(path: str) -> int | None:
    """The size of the model file, or of all its parts when it is split; None if one is missing."""
    split = _SPLIT_NAME.match(path)
    paths = [path]
    if split is not None:
        prefix, count = split["prefix"], split["count"]
        paths = [f"{prefix}-{i:05d}-of-{count}.gguf" for i in range(1, int(count) + 1)]
    try:
        return sum(os.stat(p).st_size for p in paths)
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------
# the GGUF header
# ---------------------------------------------------------------------------------------------

_Value = int | str | tuple[int, ...]

_GGUF_MAGIC: Final = b"GGUF"
_GGUF_VERSIONS: Final = (2, 3)  # v1 used 32-bit counts and lengths; nothing current writes it
_T_STRING, _T_ARRAY = 8, 9
# value type -> struct format; 8 (string) and 9 (array) are handled apart
_SCALAR_FORMATS: Final = {
    vtype: "<" + code for vtype, code in zip((*range(8), 10, 11, 12), "BbHhIif?Qqd", strict=True)
}
_INT_TYPES: Final = frozenset({0, 1, 2, 3, 4, 5, 10, 11})
_ATTENTION_KEYS: Final = ("head_count", "head_count_kv", "key_length", "value_length")
_WANTED_SUFFIXES: Final = (
    *(".block_count", ".context_length", ".embedding_length"),
    *(f".attention.{name}" for name in _ATTENTION_KEYS),
)
_MAX_KEPT_ARRAY: Final = 1 << 16  # per-layer head counts are short; anything longer is skipped
_MAX_KEY_BYTES: Final = 1 << 16


class _BadHeader(ValueError):
    """The file is not GGUF v2/v3, or its metadata is truncated or corrupt."""


class _MetadataReader:
    """Walks GGUF metadata key-values, keeping the few that size the KV cache, seeking past the
    rest (tokenizer arrays hold hundreds of thousands of strings)."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self._f = f
        self._size = size

    def read(self) -> dict[str, _Value]:
        if self._bytes(4) != _GGUF_MAGIC or self._unpack("<I") not in _GGUF_VERSIONS:
            raise _BadHeader
        _n_tensors, n_kv = self._unpack("<Q"), self._unpack("<Q")
        kept: dict[str, _Value] = {}
        for _ in range(n_kv):
            key_len = self._unpack("<Q")
            if key_len > _MAX_KEY_BYTES:
                raise _BadHeader
            key = self._bytes(key_len).decode("utf-8", "replace")
            vtype = self._unpack("<I")
            value = self._value(
                vtype, keep=key == "general.architecture" or key.endswith(_WANTED_SUFFIXES)
            )
            if value is not None:
                kept[key] = value
        return kept

    def _value(self, vtype: int, *, keep: bool) -> _Value | None:
        if vtype == _T_STRING:
            n = self._unpack("<Q")
            if keep and n <= _MAX_KEY_BYTES:
                return self._bytes(n).decode("utf-8", "replace")
            self._skip(n)
            return None
        if vtype == _T_ARRAY:
            return self._array(keep=keep)
        fmt = _SCALAR_FORMATS.get(vtype)
        if fmt is None:
            raise _BadHeader
        if keep and vtype in _INT_TYPES:
            return self._unpack(fmt)
        self._skip(struct.calcsize(fmt))
        return None

    def _array(self, *, keep: bool) -> tuple[int, ...] | None:
        atype, count = self._unpack("<I"), self._unpack("<Q")
        fmt = _SCALAR_FORMATS.get(atype)
        if atype == _T_STRING:
            for _ in range(count):  # each string costs >= 8 bytes, so EOF ends a corrupt count
                self._skip(self._unpack("<Q"))
            return None
        if fmt is None:  # arrays of arrays: unused by any architecture's sizing keys
            raise _BadHeader
        if keep and atype in _INT_TYPES and count <= _MAX_KEPT_ARRAY:
            raw = self._bytes(count * struct.calcsize(fmt))
            return tuple(int(v) for v in struct.unpack(f"<{count}{fmt[1]}", raw))
        self._skip(count * struct.calcsize(fmt))
        return None

    def _bytes(self, n: int) -> bytes:
        data = self._f.read(n)
        if len(data) != n:
            raise _BadHeader
        return data

    def _unpack(self, fmt: str) -> int:
        (value,) = struct.unpack(fmt, self._bytes(struct.calcsize(fmt)))
        return int(value)

    def _skip(self, n: int) -> None:
        if self._f.tell() + n > self._size:
            raise _BadHeader
        self._f.seek(n, os.SEEK_CUR)


def _read_metadata(path: str) -> dict[str, _Value] | None:
    """The KV-cache-sizing metadata of a GGUF file, or None if it is missing or not GGUF."""
    try:
        with open(path, "rb") as f:
            return _MetadataReader(f, os.fstat(f.fileno()).st_size).read()
    except (OSError, _BadHeader):
        return None


@dataclass(frozen=True, slots=True)
class _Shape:
    """What sizes the KV cache: per layer, the K and V elements one token stores."""

    n_ctx_train: int
    kv_elements: tuple[tuple[int, int], ...]


def _shape(metadata: dict[str, _Value]) -> _Shape | None:
    arch = metadata.get("general.architecture")
    if not isinstance(arch, str):
        return None
    n_layer = metadata.get(f"{arch}.block_count")
    n_embd = metadata.get(f"{arch}.embedding_length")
    if not isinstance(n_layer, int) or not isinstance(n_embd, int) or n_layer <= 0:
        return None
    n_head = _per_layer(metadata.get(f"{arch}.attention.head_count"), n_layer)
    if n_head is None:
        return None
    n_head_kv = _per_layer(metadata.get(f"{arch}.attention.head_count_kv"), n_layer) or n_head
    key_len = metadata.get(f"{arch}.attention.key_length")
    value_len = metadata.get(f"{arch}.attention.value_length")
    layers = []
    for heads, kv_heads in zip(n_head, n_head_kv, strict=True):
        head_dim = n_embd // heads if heads else 0
        k = key_len if isinstance(key_len, int) else head_dim
        v = value_len if isinstance(value_len, int) else head_dim
        layers.append((kv_heads * k, kv_heads * v))  # kv_heads 0: a recurrent layer, no KV
    n_ctx_train = metadata.get(f"{arch}.context_length")
    return _Shape(n_ctx_train if isinstance(n_ctx_train, int) else 0, tuple(layers))


def _per_layer(value: _Value | None, n_layer: int) -> tuple[int, ...] | None:
    """A head count as one value per layer: a scalar repeats, an array must have n_layer."""
    if isinstance(value, int):
        return (value,) * n_layer
    if isinstance(value, tuple) and len(value) == n_layer:
        return value
    return None
