"""A child's output as lines: linear splitting, CR progress lines, a 16 KiB cut per line.

Stdlib only; imports nothing of the project.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

_MAX_LINE_BYTES = 16 * 1024
_CUT_MARK = " … [line cut at 16 KiB]"
_LINE_END = re.compile(rb"\r\n|\r|\n")


class LineSplitter:
    """Bytes in, lines out: `\n`, `\r\n` and a lone `\r` (progress bars) each end a line.

    Linear in the bytes fed: each chunk is searched once and a line is kept as a list of
    pieces, joined once when it ends. A line longer than 16 KiB is handed on at the cut, with
    a mark, and the rest of it is dropped up to the next line end.
    """

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self.on_line = on_line
        self._pieces: list[bytes] = []
        self._size = 0
        self._dropping = False  # past a cut: discard up to the next line end
        self._after_cr = False  # the last chunk ended in \r: a leading \n belongs to it

    def feed(self, data: bytes) -> None:
        if b"\r" not in data and not (self._pieces or self._dropping or self._after_cr):
            self._feed_plain(data)
            return
        start = 1 if self._after_cr and data.startswith(b"\n") else 0
        for end in _LINE_END.finditer(data, start):
            self._add(data, start, end.start())
            self._end_line()
            start = end.end()
        self._add(data, start, len(data))
        self._after_cr = data.endswith(b"\r")

    def _feed_plain(self, data: bytes) -> None:
        """The usual chunk: whole `\n` lines and nothing held from before. One split in C,
        one decode per line; a long line or a trailing partial one goes the general way."""
        *lines, rest = data.split(b"\n")
        on_line = self.on_line
        for raw in lines:
            if len(raw) <= _MAX_LINE_BYTES:
                on_line(raw.decode("utf-8", "replace"))
            else:
                self._add(raw, 0, len(raw))
                self._end_line()
        self._add(rest, 0, len(rest))

    def close(self) -> None:
        """Hand on the last line if it had no line end."""
        if self._pieces and not self._dropping:
            self._emit("")

    def _add(self, data: bytes, start: int, end: int) -> None:
        if self._dropping or start == end:
            return
        room = _MAX_LINE_BYTES - self._size
        if end - start <= room:
            self._pieces.append(data[start:end])
            self._size += end - start
            return
        cut = start + room
        while cut > start and data[cut] & 0xC0 == 0x80:  # not inside a UTF-8 character
            cut -= 1
        self._pieces.append(data[start:cut])
        self._emit(_CUT_MARK)
        self._dropping = True

    def _end_line(self) -> None:
        if self._dropping:
            self._dropping = False  # the cut part went out already
        else:
            self._emit("")

    def _emit(self, mark: str) -> None:
        line = b"".join(self._pieces).decode("utf-8", "replace")
        self._pieces = []
        self._size = 0
        self.on_line(line + mark)


class OutputProtocol(asyncio.Protocol):
    """Feeds a process's merged stdout/stderr to a LineSplitter; `closed` resolves at EOF."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self.lines = LineSplitter(on_line)
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.lines.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lines.close()
        if not self.closed.done():
            self.closed.set_result(None)
