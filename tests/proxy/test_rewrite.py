"""Tests for proxy.rewrite.ModelNameRewriter: streamed replacement of the response's model."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from swapgate.proxy.rewrite import MAX_VALUE_BYTES, ModelNameRewriter

NAMES = st.one_of(
    st.sampled_from(["/models/alpha.gguf", "C:\\models\\beta.gguf", 'we"ird', "modèle", ""]),
    st.text(st.characters(codec="utf-8"), max_size=40),
)
SEPARATORS = st.sampled_from([(",", ":"), (", ", ": "), (",", " : ")])


def rewrite_all(chunks: list[bytes], asked: str = "chat") -> bytes:
    """Feed every chunk to a fresh rewriter, then flush, and join the output."""
    rewriter = ModelNameRewriter(None, asked)
    return b"".join([*(rewriter.feed(c) for c in chunks), rewriter.flush()])


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` cut at the given offsets (clamped and sorted)."""
    bounds = [0, *sorted(min(c, len(data)) for c in cuts), len(data)]
    return [data[a:b] for a, b in pairwise(bounds)]


def events(served: str) -> list[dict[str, Any]]:
    """One event of each shape the rewriter must handle, all naming `served`."""
    text = f'the "model": "{served}" key'  # JSON escapes these quotes: never a key
    return [
        {
            "id": "1",
            "object": "chat.completion.chunk",
            "model": served,
            "choices": [{"delta": {"content": text}, "model": served}],
        },
        {"type": "message_start", "message": {"model": served, "usage": {"model": served}}},
        {"type": "response.created", "response": {"id": "r", "model": served, "output": []}},
        {"choices": [{"message": {"content": text, "model": served}}], "model": served},
        {"type": "content_block_delta", "delta": {"text": text}},
    ]


def rewritten(event: dict[str, Any], asked: str) -> dict[str, Any]:
    """The reference: the event with its response-level model fields set to `asked`."""
    out: dict[str, Any] = json.loads(json.dumps(event))
    if "model" in out:
        out["model"] = asked
    for envelope in ("message", "response"):
        if isinstance(out.get(envelope), dict) and "model" in out[envelope]:
            out[envelope]["model"] = asked
    return out


def sse(payloads: list[dict[str, Any]], separators: tuple[str, str], ascii_only: bool) -> bytes:
    """An SSE body with one `data:` event per payload, then `[DONE]`."""
    lines = [
        b"data: " + json.dumps(p, separators=separators, ensure_ascii=ascii_only).encode()
        for p in payloads
    ]
    return b"".join(line + b"\n\n" for line in [*lines, b"data: [DONE]"])


@given(NAMES, NAMES, SEPARATORS, st.booleans(), st.lists(st.integers(0, 2000), max_size=12))
def test_any_served_name_any_split_matches_the_reference(
    served: str, asked: str, separators: tuple[str, str], ascii_only: bool, cuts: list[int]
) -> None:
    """Every event's response-level model becomes `asked`, nothing nested changes, and the
    output is the same however the stream is split."""
    payloads = events(served)
    body = sse(payloads, separators, ascii_only)
    whole = rewrite_all([body], asked)
    assert rewrite_all(split(body, cuts), asked) == whole
    data = [e.removeprefix(b"data: ") for e in whole.split(b"\n\n") if e]
    assert data[-1] == b"[DONE]"
    assert [json.loads(d) for d in data[:-1]] == [rewritten(p, asked) for p in payloads]


STRUCTURE = [b"{", b"}", b"[", b"]", b'"', b"\\", b":", b",", b"\n", b"\r", b" ", b"a"]
WORDS = [
    b'"model"',
    b'"message"',
    b'"response"',
    b'"x"',
    b"data: ",
    b"null",
    b"\\u00e9",
    b"\xc3\xa9",
]
TOKENS = st.sampled_from([*STRUCTURE, *WORDS])


@given(st.lists(TOKENS, max_size=80), st.lists(st.integers(0, 300), max_size=10))
def test_any_bytes_any_split_gives_the_same_output(tokens: list[bytes], cuts: list[int]) -> None:
    """Even for input that is not JSON, the output does not depend on the chunking."""
    body = b"".join(tokens)
    assert rewrite_all(split(body, cuts)) == rewrite_all([body])


@given(st.lists(TOKENS, max_size=80), st.lists(st.integers(0, 300), max_size=10))
def test_only_a_model_value_is_ever_held_back(tokens: list[bytes], cuts: list[int]) -> None:
    """Between chunks no more than MAX_VALUE_BYTES are held, and none without a model key."""
    body = b"".join(tokens)
    rewriter = ModelNameRewriter(None, "m")
    received, sent = 0, 0
    for chunk in split(body, cuts):
        received += len(chunk)
        sent += len(rewriter.feed(chunk))
        if b'"model"' not in body:
            assert sent == received
        assert received - sent <= MAX_VALUE_BYTES
    rewriter.flush()


def test_json_body_keeps_spacing_and_nested_models() -> None:
    """A plain (pretty-printed) JSON body: the top-level value changes, nothing else."""
    body = json.dumps(
        {"model": "/models/alpha.gguf", "choices": [{"message": {"model": "x"}}]}, indent=2
    ).encode()
    out = rewrite_all([body])
    assert out == body.replace(b'"/models/alpha.gguf"', b'"chat"')


def test_value_split_inside_is_held_only_from_its_quote() -> None:
    """Bytes up to the value's opening quote go out at once; the value when it is complete."""
    rewriter = ModelNameRewriter(None, "asked")
    assert rewriter.feed(b'{"id":1,"mod') == b'{"id":1,"mod'
    assert rewriter.feed(b'el": "/models/al') == b'el": '
    assert rewriter.feed(b"pha") == b""
    assert rewriter.feed(b'.gguf","x":1}') == b'"asked","x":1}'
    assert rewriter.flush() == b""


def test_complete_sse_events_pass_through_at_once() -> None:
    """A chunk of whole SSE events comes out whole from the same feed() call."""
    rewriter = ModelNameRewriter(None, "chat")
    body = sse(events("big"), (",", ":"), ascii_only=False)
    for event in body.split(b"\n\n")[:-1]:
        assert rewriter.feed(event + b"\n\n") == rewrite_all([event + b"\n\n"])
    assert rewriter.flush() == b""


def test_ascii_escaped_upstream_keeps_its_style() -> None:
    """An upstream that writes \\u escapes gets an escaped name back; raw UTF-8 stays raw."""
    escaped = json.dumps({"model": "modèle"}).encode()  # "mod\u00e8le"
    assert rewrite_all([escaped], "café") == b'{"model": "caf\\u00e9"}'
    raw = json.dumps({"model": "modèle"}, ensure_ascii=False).encode()
    assert rewrite_all([raw], "café") == '{"model": "café"}'.encode()


def test_what_is_not_a_model_name_is_left_alone() -> None:
    """Non-string values, arrays at the top, over-long values and broken input pass as is."""
    too_long = json.dumps({"model": "x" * MAX_VALUE_BYTES}).encode()
    for body in (
        b'{"model":null,"m":"model"}',
        b'[{"model":"a"}]',
        too_long,
        b'{"model":"unterminated\n"x"}',
        b'{"mod\\u0065l":"a"}',
    ):
        assert rewrite_all([body]) == rewrite_all(split(body, [5, 9, 30])) == body


def test_each_json_line_and_event_after_a_broken_one_is_rewritten() -> None:
    """JSON lines are separate documents; a blank line ends a broken SSE event."""
    lines = b'{"model":"a"}\n{"model":"b"}\n'
    assert rewrite_all([lines], "c") == b'{"model":"c"}\n{"model":"c"}\n'
    broken = b'data: {"choices":[{"x":[\n\ndata: {"model":"a"}\n\n'
    assert rewrite_all([broken], "c") == broken.replace(b'"a"', b'"c"')


def test_unfinished_value_comes_back_from_flush() -> None:
    """A stream that ends inside a model value gets those bytes back, unchanged."""
    rewriter = ModelNameRewriter("served", "asked")
    assert rewriter.feed(b'x{"model":"ser') == b'x{"model":'
    assert rewriter.flush() == b'"ser'
