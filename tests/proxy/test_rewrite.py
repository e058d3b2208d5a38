"""Tests for proxy.rewrite.ModelNameRewriter: streamed model-name replacement."""

from __future__ import annotations

import json
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st
from proxy.rewrite import ModelNameRewriter

SSE = (
    b'data: {"id":"1","model":"llama3-70b","choices":[{"delta":{"content":"Hi"}}]}\n\n'
    b'data: {"id":"1","model": "llama3-70b","choices":[]}\n\n'
    b"data: [DONE]\n\n"
)
EXPECTED = SSE.replace(b'"model":"llama3-70b"', b'"model":"gpt-4"').replace(
    b'"model": "llama3-70b"', b'"model": "gpt-4"'
)


def rewrite_all(rewriter: ModelNameRewriter, chunks: list[bytes]) -> bytes:
    """Feed every chunk, then flush, and join the output."""
    return b"".join([*(rewriter.feed(c) for c in chunks), rewriter.flush()])


def test_whole_body_rewritten_with_and_without_space() -> None:
    """Both `"model":"x"` and `"model": "x"` are rewritten; the spacing is kept."""
    assert rewrite_all(ModelNameRewriter("llama3-70b", "gpt-4"), [SSE]) == EXPECTED


def test_sse_events_pass_through_immediately() -> None:
    """A chunk ending in "\\n\\n" comes out whole at once, nothing held back."""
    rewriter = ModelNameRewriter("llama3-70b", "gpt-4")
    for event in SSE.split(b"\n\n")[:-1]:
        out = rewriter.feed(event + b"\n\n")
        assert out.endswith(b"\n\n")
    assert rewriter.flush() == b""


def test_only_possible_prefix_is_held_back() -> None:
    """A pattern split across chunks is held only from its first byte, then completed."""
    rewriter = ModelNameRewriter("served", "asked")
    assert rewriter.feed(b'{"id":1,"mod') == b'{"id":1,'
    assert rewriter.feed(b'el":"serv') == b""
    assert rewriter.feed(b'ed","x":1}') == b'"model":"asked","x":1}'
    assert rewriter.flush() == b""


def test_longer_name_is_not_rewritten() -> None:
    """`served-2` is a different model: the closing quote is part of the pattern."""
    body = b'{"model":"served-2","object":"x"}'
    assert rewrite_all(ModelNameRewriter("served", "asked"), [body]) == body


def test_names_are_json_escaped() -> None:
    """Quotes and backslashes in names match and are written in JSON escaped form."""
    served, asked = 'we"ird\\name', "ask/é"
    body = json.dumps({"model": served}, separators=(",", ":")).encode()
    out = rewrite_all(ModelNameRewriter(served, asked), [body])
    assert json.loads(out) == {"model": asked}


def test_ascii_escaped_upstream_is_matched() -> None:
    """An upstream that writes \\u escapes still matches; the reply keeps that style."""
    body = json.dumps({"model": "modèle"}).encode()  # ensure_ascii: "mod\u00e8le"
    out = rewrite_all(ModelNameRewriter("modèle", "café"), [body])
    assert out == b'{"model": "caf\\u00e9"}'


def test_flush_returns_unfinished_tail() -> None:
    """A stream that ends inside a possible match gets its tail back from flush()."""
    rewriter = ModelNameRewriter("served", "asked")
    assert rewriter.feed(b'x"model":"ser') == b"x"
    assert rewriter.flush() == b'"model":"ser'


@given(st.lists(st.integers(0, len(SSE)), max_size=12))
def test_any_chunking_gives_the_same_output(cuts: list[int]) -> None:
    """However the stream is split, the output equals rewriting it in one piece."""
    bounds = [0, *sorted(cuts), len(SSE)]
    chunks = [SSE[a:b] for a, b in pairwise(bounds)]
    assert rewrite_all(ModelNameRewriter("llama3-70b", "gpt-4"), chunks) == EXPECTED


@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=6))
def test_hold_back_is_bounded(noise: bytes, cuts: list[int]) -> None:
    """Never more than the longest pattern minus one byte is held between chunks."""
    rewriter = ModelNameRewriter("m", "n")  # same length, so byte counts line up
    longest = len(b'"model": "m"') - 1
    bounds = [0, *sorted(min(c, len(noise)) for c in cuts), len(noise)]
    sent = 0
    for a, b in pairwise(bounds):
        sent += len(rewriter.feed(noise[a:b]))
        assert b - sent <= longest
    assert len(rewriter.flush()) <= longest
