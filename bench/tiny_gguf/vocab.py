"""The tokenizer half of a tiny model: the built-in word vocabulary or another GGUF's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from swapgate.bench.tiny_gguf.gguf import (
    T_ARRAY,
    T_BOOL,
    T_FLOAT32,
    T_INT32,
    T_STRING,
    T_UINT32,
    KeyValue,
    fail,
    read_gguf_kvs,
)

# llama.cpp token types
TT_NORMAL, TT_UNKNOWN, TT_CONTROL, TT_USER_DEFINED, TT_UNUSED, TT_BYTE = 1, 2, 3, 4, 5, 6

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

WORDS = """
the of and to in is it that for on with as was at by be this from or an are
not but have had all one can were which there their will would more when who
what about out up so if into no has some could them than then now only its
time new also two may like over first just any very after most where make way
well back good much before through same our work day long used each right
small large big fast slow model server proxy swap token stream chat reply
test local tiny random llama request answer queue start stop load ready
health port route cache memory thread byte word text data file line value
system user assistant hello world yes maybe sure okay again here today
""".split()  # noqa: SIM905  # a paragraph reads better than 160 list items; order matters
PUNCT = [".", ",", "!", "?"]


@dataclass(frozen=True, slots=True)
class Vocab:
    """Token strings, which tokens generation may emit, and the ``tokenizer.*`` metadata."""

    tokens: list[str]
    good: list[bool]
    kvs: list[KeyValue]


# ---------------------------------------------------------------------------------------------
# vocab
# ---------------------------------------------------------------------------------------------


def builtin_vocab(extra_words: Sequence[str]) -> Vocab:
    """The built-in word vocabulary, with ``extra_words`` added as whole-word tokens."""
    tokens: list[str] = []
    scores: list[float] = []
    types: list[int] = []
    good: list[bool] = []

    def add(text: str, ttype: int, score: float, emit: bool) -> None:
        tokens.append(text)
        types.append(ttype)
        scores.append(score)
        good.append(emit)

    add("<unk>", TT_UNKNOWN, 0.0, False)
    add("<s>", TT_CONTROL, 0.0, False)
    add("</s>", TT_CONTROL, 0.0, False)
    add("<|im_start|>", TT_CONTROL, 0.0, False)
    add("<|im_end|>", TT_CONTROL, 0.0, False)
    for b in range(256):
        add(f"<0x{b:02X}>", TT_BYTE, 0.0, False)
    seen = set(tokens)
    # single characters (SentencePiece merges start from these)
    for c in ["\u2581"] + [chr(c) for c in range(33, 127)]:
        add(c, TT_NORMAL, -1000.0, c in PUNCT)
        seen.add(c)
    words = list(dict.fromkeys(WORDS + list(extra_words)))
    full = {"\u2581" + w for w in words}
    pieces = []
    for w in words:
        p = "\u2581" + w
        for i in range(2, len(p) + 1):
            if p[:i] not in seen:
                seen.add(p[:i])
                pieces.append(p[:i])
    # longer pieces get higher merge scores
    for rank, p in enumerate(sorted(pieces, key=lambda s: (len(s), s))):
        add(p, TT_NORMAL, -float(len(pieces) - rank), p in full)
    kvs = [
        KeyValue("tokenizer.ggml.model", T_STRING, "llama"),
        KeyValue("tokenizer.ggml.tokens", T_ARRAY, tokens, T_STRING),
        KeyValue("tokenizer.ggml.scores", T_ARRAY, scores, T_FLOAT32),
        KeyValue("tokenizer.ggml.token_type", T_ARRAY, types, T_INT32),
        KeyValue("tokenizer.ggml.unknown_token_id", T_UINT32, 0),
        KeyValue("tokenizer.ggml.bos_token_id", T_UINT32, 1),
        KeyValue("tokenizer.ggml.eos_token_id", T_UINT32, 4),  # <|im_end|>
        KeyValue("tokenizer.ggml.padding_token_id", T_UINT32, 2),
        KeyValue("tokenizer.ggml.add_bos_token", T_BOOL, True),
        KeyValue("tokenizer.ggml.add_eos_token", T_BOOL, False),
        KeyValue("tokenizer.chat_template", T_STRING, CHATML_TEMPLATE),
    ]
    return Vocab(tokens, good, kvs)


def _array_items(path: str, kv: dict[str, tuple[int, object]], key: str) -> list[object]:
    t, v = kv[key]
    if t != T_ARRAY or not isinstance(v, tuple) or not isinstance(v[1], list):
        fail(f"{path}: {key} is not an array")
    return list(v[1])


def foreign_vocab(path: str) -> Vocab:
    """The ``tokenizer.*`` metadata of the GGUF at ``path``."""
    kv = read_gguf_kvs(path)
    if "tokenizer.ggml.tokens" not in kv:
        fail(f"{path}: no tokenizer.ggml.tokens")
    tokens = [str(t) for t in _array_items(path, kv, "tokenizer.ggml.tokens")]
    types: list[object] = [TT_NORMAL] * len(tokens)
    if "tokenizer.ggml.token_type" in kv:
        types = _array_items(path, kv, "tokenizer.ggml.token_type")
    kvs = []
    for key, (t, v) in kv.items():
        if key.startswith("tokenizer."):
            if t == T_ARRAY and isinstance(v, tuple):
                kvs.append(KeyValue(key, T_ARRAY, v[1], v[0]))
            else:
                kvs.append(KeyValue(key, t, v))
    if "tokenizer.chat_template" not in kv:
        kvs.append(KeyValue("tokenizer.chat_template", T_STRING, CHATML_TEMPLATE))
    good = [t == TT_NORMAL for t in types]
    return Vocab(tokens, good, kvs)
