"""The `--html` report: one self-contained file whose tables parse back to the run's values."""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from swapgate.bench import charts, htmlreport
from swapgate.bench.compare import ModelResult, write_html
from swapgate.bench.loadgen import Summary
from swapgate.bench.report import RunInfo, Table

HOSTILE = "<script>alert('x')</script> & \"quoted\""
WHEN = datetime(2025, 3, 14, 9, 26, tzinfo=UTC)


class Page(HTMLParser):
    """What a browser would see: tables as lists of rows of cell texts, and every tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.captions: list[str] = []
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None
        self.open_elements: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "xlink:href")]
        if tag in ("table", "tr", "td", "th", "caption"):
            self.open_elements.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "caption":
            self._caption = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("table", "tr", "td", "th", "caption"):
            assert self.open_elements.pop() == tag, f"</{tag}> closes another element"
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "caption" and self._caption is not None:
            self.captions.append("".join(self._caption))
            self._caption = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for sink in (self._cell, self._caption):
            if sink is not None:
                sink.append(data)


def parse(document: str) -> Page:
    page = Page()
    page.feed(document)
    page.close()
    assert page.open_elements == [], "unclosed table elements"
    return page


def result(model: str, tokens_per_s: float, errors: int) -> ModelResult:
    warm = Summary(
        requests=8,
        errors=errors,
        ttft_p50_ms=81.25,
        ttft_p95_ms=97.0,
        latency_p50_ms=150.0,
        latency_p95_ms=1800.0,
        latency_p99_ms=2450.5,
        tokens_per_s=tokens_per_s,
        requests_per_s=2.0,
    )
    return ModelResult(model, 1520.0, "", warm)


RESULTS = [result("small", 1234.5, 0), result(HOSTILE, math.nan, 3)]
INFO = RunInfo(
    "swapgate bench compare",
    [("via", "http://127.0.0.1:9/?a=1&b=<2>"), ("models", f"small, {HOSTILE}")],
    WHEN,
)


def test_compare_report_holds_parameters_table_and_an_inline_chart(tmp_path: Path) -> None:
    """Parameters and date, the per-model table cell for cell, one inline SVG chart."""
    if not charts.available():
        pytest.fail("matplotlib is not installed: pip install -e '.[test]'", pytrace=False)
    out = tmp_path / "report.html"
    assert write_html(RESULTS, str(out), INFO) == f"HTML report written to {out}"
    document = out.read_text(encoding="utf-8")
    page = parse(document)
    params, models = page.tables
    assert params == [
        ["via", "http://127.0.0.1:9/?a=1&b=<2>"],
        ["models", f"small, {HOSTILE}"],
    ]
    header, *rows = models
    assert header == [
        "model",
        "cold load ms",
        "TTFT p50 ms",
        "TTFT p95 ms",
        "tokens/s",
        "p95 ms",
        "p99 ms",
        "errors",
    ]
    assert rows == [
        ["small", "1,520.0", "81.2", "97.0", "1,234.5", "1,800.0", "2,450.5", "0"],
        [HOSTILE, "1,520.0", "81.2", "97.0", "-", "1,800.0", "2,450.5", "3"],
    ]
    assert "run started 2025-03-14 09:26 UTC" in "".join(page.text)
    assert page.tags.count("svg") == 1
    assert "script" not in page.tags  # the hostile name stayed text
    assert "<script>" not in document
    self_contained(page)


def test_every_value_is_escaped() -> None:
    """Titles, headers, cells, parameters and notes with markup in them come back as text."""
    info = RunInfo(HOSTILE, [(HOSTILE, HOSTILE)], WHEN)
    table = Table([HOSTILE, "b"], [[HOSTILE, "1 < 2 & 3 > 2"]], title=HOSTILE)
    document = htmlreport.render(info, [table], notes=[HOSTILE])
    page = parse(document)
    assert page.tables == [[[HOSTILE, HOSTILE]], [[HOSTILE, "b"], [HOSTILE, "1 < 2 & 3 > 2"]]]
    assert page.captions == ["parameters", HOSTILE]
    assert "script" not in page.tags
    assert "<script>" not in document
    assert "1 &lt; 2 &amp; 3 &gt; 2" in document


def test_without_matplotlib_the_report_has_the_table_and_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """matplotlib made unimportable: still one report with the table, and how to get charts."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    out = tmp_path / "report.html"
    write_html(RESULTS, str(out), INFO)
    page = parse(out.read_text(encoding="utf-8"))
    assert [row[0] for row in page.tables[1]] == ["model", "small", HOSTILE]
    assert "svg" not in page.tags
    text = " ".join("".join(page.text).split())
    assert "Charts need matplotlib, which is not installed here: pip install -e '.[bench]'" in text
    self_contained(page)


def test_a_report_without_charts_does_not_ask_for_matplotlib() -> None:
    """Commands that draw no chart (gate, swap, saturation) get no install hint."""
    document = htmlreport.render(INFO, [Table(["a"], [["1"]])])
    assert "matplotlib" not in document
    assert "svg" not in parse(document).tags


def self_contained(page: Page) -> None:
    """Nothing fetched: no external script, stylesheet or image, only in-page references."""
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(page.tags)
    assert all(url.startswith("#") for url in page.urls), page.urls
