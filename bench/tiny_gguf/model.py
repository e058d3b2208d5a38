"""The weights and the command line: builds the tensors and writes the file."""

from __future__ import annotations

import argparse
import random
import struct
import sys
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from swapgate.bench.tiny_gguf.gguf import (
    GGML_F16,
    GGML_F32,
    T_FLOAT32,
    T_STRING,
    T_UINT32,
    KeyValue,
    Tensor,
    fail,
    write_gguf,
)
from swapgate.bench.tiny_gguf.vocab import Vocab, builtin_vocab, foreign_vocab

BIAS = 40.0  # logit bias magnitude for the --say token and for suppressed tokens
DESCRIPTION = "Write a tiny, valid, random-weight llama-architecture GGUF model."


# ---------------------------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------------------------


def rand_array(rng: random.Random, n: int, scale: float) -> array[float]:
    """``n`` deterministic uniform floats in [-scale, scale), the same on every platform."""
    raw = array("h")
    raw.frombytes(rng.randbytes(2 * n))
    if sys.byteorder != "little":
        raw.byteswap()
    k = scale / 32768.0
    return array("f", [v * k for v in raw])


def to_bytes(a: array[float], f16: bool) -> tuple[int, bytes]:
    """The ggml type and little-endian bytes of ``a``."""
    if f16:
        return GGML_F16, struct.pack(f"<{len(a)}e", *a)
    if sys.byteorder != "little":
        a = array("f", a)
        a.byteswap()
    return GGML_F32, a.tobytes()


# ---------------------------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shape:
    """Model dimensions, validated by :func:`shape_of`."""

    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    n_ff: int

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.n_embd // self.n_head


def shape_of(a: argparse.Namespace) -> Shape:
    """The model shape the arguments ask for, or exit with what is wrong."""
    shape = Shape(a.hidden, a.layers, a.heads, a.kv_heads or a.heads, a.ff or 2 * a.hidden)
    if shape.n_embd % shape.n_head or shape.n_head % shape.n_head_kv:
        fail("hidden must be divisible by heads, heads by kv-heads")
    if shape.head_dim % 2:
        fail("head dim (hidden/heads) must be even for RoPE")
    return shape


def find_say_id(tokens: list[str], say: str | None) -> int | None:
    """The token id ``--say`` names (as a word, a GPT-2 style word, or verbatim)."""
    if not say:
        return None
    for cand in ("\u2581" + say, "\u0120" + say, say):
        if cand in tokens:
            return tokens.index(cand)
    fail(f"--say {say!r}: no such token in the vocab")


def _unit(fan_in: int) -> float:
    """Uniform init scale with unit output variance."""
    return float((3.0 / fan_in) ** 0.5)


def build_tensors(
    shape: Shape, voc: Vocab, say_id: int | None, seed: int, f16: bool
) -> list[Tensor]:
    """All model tensors, drawn from one ``random.Random(seed)`` in a fixed order."""
    rng = random.Random(seed)  # reproducible weights, not a secret
    n_embd, n_vocab = shape.n_embd, len(voc.tokens)
    tensors: list[Tensor] = []

    def add(
        name: str,
        rows: int,
        cols: int,
        scale: float,
        tweak: Callable[[array[float]], None] | None = None,
    ) -> None:
        data = rand_array(rng, rows * cols, scale) if rows > 1 else array("f", [scale] * cols)
        if tweak:
            tweak(data)
        gtype, raw = to_bytes(data, f16 and rows > 1)
        dims = [cols] if rows == 1 else [cols, rows]  # ggml ne order
        tensors.append(Tensor(name, dims, gtype, raw))

    # Channel 0 of the residual stream is a constant 1.0 "bias channel".
    def embd_tweak(d: array[float]) -> None:
        for t in range(n_vocab):
            d[t * n_embd] = 1.0

    def zero_row0(d: array[float]) -> None:  # layers must not write channel 0 (row 0)
        for j in range(len(d) // n_embd):
            d[j] = 0.0

    def out_tweak(d: array[float]) -> None:
        for t in range(n_vocab):
            d[t * n_embd] = BIAS if t == say_id else (0.0 if voc.good[t] else -BIAS)

    # Channel 0 (= 1.0) must dominate the residual stream, so the other embedding channels are
    # small and the layers add only small updates.
    q_rows, kv_rows = shape.n_head * shape.head_dim, shape.n_head_kv * shape.head_dim
    add("token_embd.weight", n_vocab, n_embd, 0.2, embd_tweak)
    for i in range(shape.n_layer):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", 1, n_embd, 1.0)
        add(p + "attn_q.weight", q_rows, n_embd, _unit(n_embd))
        add(p + "attn_k.weight", kv_rows, n_embd, _unit(n_embd))
        add(p + "attn_v.weight", kv_rows, n_embd, _unit(n_embd))
        add(p + "attn_output.weight", n_embd, q_rows, 0.05 * _unit(q_rows), zero_row0)
        add(p + "ffn_norm.weight", 1, n_embd, 1.0)
        add(p + "ffn_gate.weight", shape.n_ff, n_embd, _unit(n_embd))
        add(p + "ffn_up.weight", shape.n_ff, n_embd, _unit(n_embd))
        add(p + "ffn_down.weight", n_embd, shape.n_ff, 0.1 * _unit(shape.n_ff), zero_row0)
    add("output_norm.weight", 1, n_embd, 1.0)
    add("output.weight", n_vocab, n_embd, min(1.0, 8.0 / n_embd**0.5), out_tweak)
    return tensors


def model_kvs(shape: Shape, a: argparse.Namespace, voc: Vocab) -> list[KeyValue]:
    """The ``general.*`` and ``llama.*`` metadata followed by the vocabulary's."""
    return [
        KeyValue("general.architecture", T_STRING, "llama"),
        KeyValue("general.name", T_STRING, a.name),
        KeyValue("general.file_type", T_UINT32, 1 if a.f16 else 0),
        KeyValue("general.quantization_version", T_UINT32, 2),
        KeyValue("llama.context_length", T_UINT32, a.ctx),
        KeyValue("llama.embedding_length", T_UINT32, shape.n_embd),
        KeyValue("llama.block_count", T_UINT32, shape.n_layer),
        KeyValue("llama.feed_forward_length", T_UINT32, shape.n_ff),
        KeyValue("llama.attention.head_count", T_UINT32, shape.n_head),
        KeyValue("llama.attention.head_count_kv", T_UINT32, shape.n_head_kv),
        KeyValue("llama.rope.dimension_count", T_UINT32, shape.head_dim),
        KeyValue("llama.rope.freq_base", T_FLOAT32, 10000.0),
        KeyValue("llama.attention.layer_norm_rms_epsilon", T_FLOAT32, 1e-5),
        KeyValue("llama.vocab_size", T_UINT32, len(voc.tokens)),
        *voc.kvs,
    ]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m swapgate.bench.tiny_gguf", description=DESCRIPTION)
    ap.add_argument("out", help="output .gguf path")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=None, help="default: = heads")
    ap.add_argument("--ff", type=int, default=None, help="default: 2*hidden")
    ap.add_argument("--ctx", type=int, default=4096, help="training context length")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="tiny-random-llama")
    ap.add_argument(
        "--say", default=None, help="make the model (almost) always emit this word/token"
    )
    ap.add_argument("--f16", action="store_true", help="store matrices as F16")
    ap.add_argument(
        "--vocab-from",
        default=None,
        help="copy tokenizer.* metadata from this GGUF (e.g. a ggml-vocab-*.gguf)",
    )
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Write the model the arguments describe and print a one-line summary."""
    a = _parser().parse_args(argv)
    shape = shape_of(a)
    if a.vocab_from:
        voc = foreign_vocab(a.vocab_from)
    else:
        voc = builtin_vocab([a.say] if a.say and not a.say.startswith("<") else [])
    say_id = find_say_id(voc.tokens, a.say)
    tensors = build_tensors(shape, voc, say_id, a.seed, a.f16)
    size = write_gguf(a.out, model_kvs(shape, a, voc), tensors)
    n_params = sum(len(t.data) // (2 if t.gtype == GGML_F16 else 4) for t in tensors)
    says = f", says {voc.tokens[say_id]!r}" if say_id is not None else ""
    print(
        f"wrote {a.out}: {size} bytes, {n_params} params, vocab {len(voc.tokens)}, "
        f"{shape.n_layer} layers, hidden {shape.n_embd}, heads {shape.n_head}/{shape.n_head_kv}, "
        f"ff {shape.n_ff}{says}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
