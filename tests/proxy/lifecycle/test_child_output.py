"""LineSplitter and OutputProtocol fed chunks directly: line ends, the 16 KiB cut, linear time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import pytest

from swapgate.proxy.lifecycle.child_output import LineSplitter, OutputProtocol

CUT = 16 * 1024
MARK = " … [line cut at 16 KiB]"


def split(chunks: Iterable[bytes]) -> list[str]:
    """The lines a splitter hands on for these chunks, the unterminated tail included."""
    lines: list[str] = []
    splitter = LineSplitter(lines.append)
    for chunk in chunks:
        splitter.feed(chunk)
    splitter.close()
    return lines


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        ([b"a\nb\n"], ["a", "b"]),
        ([b"a\n\nb"], ["a", "", "b"]),  # an empty line is a line; the tail is kept
        ([b"par", b"tial\n"], ["partial"]),
        ([b"crlf\r\nnext\r\n"], ["crlf", "next"]),
        ([b"split\r", b"\nnext\n"], ["split", "next"]),  # CRLF across two reads: one end
        ([b"\r", b"\n", b"x\n"], ["", "x"]),
        ([b"a\r\r\nb\n"], ["a", "", "b"]),
        ([b"10%\r20%\r100%\n"], ["10%", "20%", "100%"]),  # a progress bar gives lines
        ([b"10%\r", b"20%\r", b"done\n"], ["10%", "20%", "done"]),
        ([b"no newline at all"], ["no newline at all"]),
        ([], []),
    ],
)
def test_line_ends(chunks: list[bytes], lines: list[str]) -> None:
    """\\n, \\r\\n (even split across reads) and a lone \\r each end exactly one line."""
    assert split(chunks) == lines


def test_multibyte_utf8_split_across_chunks_decodes_whole() -> None:
    """A character whose bytes arrive in two reads comes out whole, not as replacements."""
    text = "naïve — 日本語 🙂\n".encode()
    for at in range(1, len(text)):
        assert split([text[:at], text[at:]]) == ["naïve — 日本語 🙂"]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    """Bytes that are not UTF-8 become U+FFFD; the line still arrives."""
    assert split([b"bad \xff\xfe byte\n"]) == ["bad \ufffd\ufffd byte"]


def test_a_line_of_exactly_16_kib_is_kept_whole() -> None:
    """The cut applies only past 16 KiB."""
    assert split([b"x" * CUT + b"\nnext\n"]) == ["x" * CUT, "next"]


def test_a_long_line_is_cut_at_16_kib_and_its_rest_dropped() -> None:
    """Past 16 KiB the line goes out at once with a mark; the rest of it, however it is read,
    is dropped up to the next line end, and the line after it is whole."""
    chunks = [b"y" * 10_000, b"y" * 10_000, b"y" * 50_000 + b"\r\n", b"after\n"]
    assert split(chunks) == ["y" * CUT + MARK, "after"]


def test_the_cut_falls_on_a_character_boundary() -> None:
    """A cut that would split a multi-byte character backs up to its start."""
    data = b"a" + "é".encode() * CUT + b"\n"  # the 16 KiB boundary falls inside an "é"
    (line,) = split([data])
    assert line.endswith(MARK)
    body = line.removesuffix(MARK)
    assert "\ufffd" not in body
    assert len(body.encode()) == CUT - 1


def test_32_mb_without_a_newline_is_linear_and_kept_to_the_cut() -> None:
    """32 MB with no line end, read in pipe-sized chunks, is handled in well under a second
    and yields one cut line; the next real line follows."""
    chunk = b"z" * 65536
    lines: list[str] = []
    splitter = LineSplitter(lines.append)
    started = time.perf_counter()
    for _ in range(32 * 1024 * 1024 // len(chunk)):
        splitter.feed(chunk)
    splitter.feed(b"\nserver listening\n")
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5
    assert lines == ["z" * CUT + MARK, "server listening"]


def test_many_short_lines_in_one_read() -> None:
    """A read holding thousands of lines gives each, in order."""
    data = b"".join(b"line %d\n" % i for i in range(5000))
    assert split([data]) == [f"line {i}" for i in range(5000)]


def test_protocol_flushes_the_tail_and_resolves_closed_on_eof() -> None:
    """OutputProtocol hands on the unterminated last line at EOF and then resolves `closed`."""

    async def body() -> None:
        lines: list[str] = []
        protocol = OutputProtocol(lines.append)
        protocol.data_received(b"one\r\ntw")
        protocol.data_received(b"o")
        assert lines == ["one"]
        assert not protocol.closed.done()
        protocol.connection_lost(None)
        assert lines == ["one", "two"]
        assert protocol.closed.done()

    asyncio.run(body())


def test_whole_lines_then_a_partial_one_then_its_rest() -> None:
    """The common read (whole `\\n` lines, nothing held) and what follows it keep every line:
    a long one is cut there too, and a line split over reads is joined."""
    long = b"w" * (CUT + 10)
    chunks = [b"one\n" + long + b"\ntwo\nthr", b"ee\nfour\n"]
    assert split(chunks) == ["one", "w" * CUT + MARK, "two", "three", "four"]
