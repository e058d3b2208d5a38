"""Output of the benchmark: aligned text tables, progress (a bar or CI lines) and JSON files.

Only formatting lives here; the numbers come from the modules that measure them. A
:class:`Table` and a :class:`RunInfo` are what the text output, the charts (bench/charts.py)
and the HTML report (bench/htmlreport.py) share.
"""

from __future__ import annotations

import math
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

Cell = str | float | int | None


def fmt(value: Cell, digits: int = 1) -> str:
    """A table cell: numbers rounded, NaN and None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


def pct(value: float) -> str:
    """An overhead percentage with its sign."""
    return "-" if math.isnan(value) else f"{value:+.1f}%"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain aligned table: first column left-aligned, the rest right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


@dataclass(frozen=True, slots=True)
class Table:
    """A result table before it is printed: cells already formatted, ``title`` for the HTML."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    title: str = ""

    def text(self) -> str:
        """The table as aligned text (see :func:`table`)."""
        return table(self.headers, self.rows)


def now() -> datetime:
    """The current local time with its time zone: when a run started."""
    return datetime.now().astimezone()


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a run was asked to do and when it started: chart titles and the HTML report."""

    command: str
    params: Sequence[tuple[str, str]]
    started: datetime = field(default_factory=now)

    def date(self) -> str:
        """The start time with its time zone, to the minute."""
        return self.started.strftime("%Y-%m-%d %H:%M %Z").rstrip()

    def title(self, width: int = 110) -> str:
        """The command and date, then the parameters wrapped to ``width`` characters."""
        params = "; ".join(f"{name}: {value}" for name, value in self.params)
        return "\n".join([f"{self.command}, {self.date()}", *textwrap.wrap(params, width)])


def write_json(path: str | Path, data: object) -> None:
    """Write ``data`` as indented JSON; NaN becomes null (JSON has no NaN)."""
    Path(path).write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))


@dataclass
class Progress:
    """Progress of a benchmark run, for a person at a terminal and for CI logs alike.

    When stdout is not a terminal (CI, ``| tee``, captured output) every labelled step prints
    one line on stdout (``[3/42, 12 s] c=16 round 2 via``) and :meth:`note` prints its text;
    when both stdout and stderr are terminals a one-line bar on stderr is redrawn at most ten
    times a second instead. Passing ``enabled`` explicitly asks for the bar alone (on when
    True), for callers that print their own lines (``bench/swap.py``).
    """

    total: int
    label: str = ""
    width: int = 30
    done: int = 0
    enabled: bool | None = None
    lines: bool = field(init=False)
    _last: float = 0.0
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.enabled is None:
            self.lines = not sys.stdout.isatty()
            self.enabled = not self.lines and sys.stderr.isatty()
        else:
            self.lines = False

    def note(self, text: str) -> None:
        """A step that is not counted (starting servers, an estimate): a line, or the label."""
        if self.lines:
            print(text, flush=True)
        else:
            self.step(0, text)

    def step(self, count: int = 1, label: str | None = None) -> None:
        """Advance by ``count`` and redraw if due; a ``label`` is a line of its own in CI."""
        self.done += count
        if label is not None:
            self.label = label
            if self.lines:
                elapsed = time.monotonic() - self._started
                print(f"[{self.done}/{self.total}, {elapsed:.0f} s] {label}", flush=True)
        now = time.monotonic()
        if self.enabled and (now - self._last >= 0.1 or self.done >= self.total):
            self._last = now
            self._draw()

    def _draw(self) -> None:
        frac = min(1.0, self.done / self.total) if self.total else 1.0
        filled = int(frac * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        sys.stderr.write(f"\r[{bar}] {frac * 100:5.1f}% {self.label[:40]:<40}")
        sys.stderr.flush()

    def finish(self) -> None:
        """End the bar's line."""
        if self.enabled:
            self._draw()
            sys.stderr.write("\n")
            sys.stderr.flush()
