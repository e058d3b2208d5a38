"""The `bench compare` chart: log-scale choice, value labels, titles, PNG/SVG files, headless."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from swapgate.bench import charts
from swapgate.bench.compare import ModelResult, build_chart, draw_chart
from swapgate.bench.loadgen import Summary
from swapgate.bench.report import RunInfo

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG_ROOT = "{http://www.w3.org/2000/svg}svg"
INFO = RunInfo(
    "swapgate bench compare",
    [("models", "small, big, broken"), ("concurrency", "4"), ("warm requests per model", "16")],
    datetime(2025, 3, 14, 9, 26, tzinfo=UTC),
)


def require_matplotlib() -> None:
    """Charts are part of what is tested: a missing matplotlib fails, it never skips."""
    if not charts.available():
        pytest.fail("matplotlib is not installed: pip install -e '.[test]'", pytrace=False)


def summary(tokens_per_s: float, p95: float, p99: float, errors: int) -> Summary:
    """Warm figures with the fields the chart draws set, the rest plausible."""
    return Summary(
        requests=16,
        errors=errors,
        ttft_p50_ms=80.0,
        ttft_p95_ms=95.0,
        latency_p50_ms=p95 / 2,
        latency_p95_ms=p95,
        latency_p99_ms=p99,
        tokens_per_s=tokens_per_s,
        requests_per_s=4.0,
    )


RESULTS = [
    ModelResult("small", 420.0, "", summary(1234.5, 210.0, 300.0, 0)),
    ModelResult("big", 9800.0, "", summary(35.25, 1900.0, 2600.0, 2)),
    # The cold request failed and no warm request succeeded: NaN figures, one error more.
    ModelResult(
        "broken", math.nan, "connection refused", summary(math.nan, math.nan, math.nan, 16)
    ),
]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, 10.0], False),  # exactly 10x is not more than 10x
        ([1.0, 10.01], True),
        ([40.0, 2500.0, 90.0], True),
        ([200.0, 250.0, 1900.0], False),
        ([0.0, 5000.0], False),  # a single positive value spans nothing
        ([0.0, 2.0, 30.0], True),
        ([math.nan, 3.0, 31.0], True),
        ([math.nan, math.inf, 3.0], False),
        ([7.0], False),
        ([], False),
    ],
)
def test_log_scale_only_when_values_span_more_than_ten_times(
    values: list[float], expected: bool
) -> None:
    """Positive finite values decide; zeros and NaN are not part of the span."""
    assert charts.needs_log_scale(values) is expected


def test_axis_scale_keeps_zero_and_missing_bars_on_a_symlog_axis() -> None:
    """Linear within 10x; log when every bar is positive; symlog when a bar is zero or NaN."""
    assert charts.axis_scale([100.0, 900.0]) == "linear"
    assert charts.axis_scale([1.0, 100.0]) == "log"
    assert charts.axis_scale([0.0, 1.0, 100.0]) == "symlog"
    assert charts.axis_scale([math.nan, 1.0, 100.0]) == "symlog"


def test_compare_chart_has_the_panels_labels_and_title() -> None:
    """Six panels, every bar labelled with its value ('-' where unmeasured), log where needed."""
    require_matplotlib()
    fig = build_chart(RESULTS, INFO)
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    assert set(panels) == {
        "tokens/s (log scale)",
        "p95 latency (ms)",
        "p99 latency (ms)",
        "errors",
        "cold load (ms) (log scale)",
        "warm TTFT p50 (ms)",
    }
    labels = {title: [t.get_text() for t in ax.texts] for title, ax in panels.items()}
    assert labels["tokens/s (log scale)"] == ["1,234.5", "35.2", "-"]
    assert labels["p95 latency (ms)"] == ["210.0", "1,900.0", "-"]
    assert labels["p99 latency (ms)"] == ["300.0", "2,600.0", "-"]
    assert labels["errors"] == ["0", "2", "17"]
    assert labels["cold load (ms) (log scale)"] == ["420.0", "9,800.0", "-"]
    assert panels["tokens/s (log scale)"].get_yscale() == "symlog"  # the NaN bar sits at 0
    assert panels["p99 latency (ms)"].get_yscale() == "linear"  # 2600 / 300 is under 10x
    ticks = [t.get_text() for t in panels["errors"].get_xticklabels()]
    assert ticks == ["small", "big", "broken"]
    title = fig.get_suptitle()
    assert title.startswith("swapgate bench compare, 2025-03-14 09:26 UTC\n")
    for part in ("models: small, big, broken", "concurrency: 4", "warm requests per model: 16"):
        assert part in title


def test_log_axis_when_every_bar_is_positive() -> None:
    """All positive and spanning over 10x: a true log axis."""
    require_matplotlib()
    fig = charts.bar_figure(["a", "b"], [charts.Panel("tokens/s", [3.0, 300.0])], "t")
    (ax,) = (ax for ax in fig.axes if ax.get_visible())
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.texts] == ["3.0", "300.0"]


def test_linear_axes_start_at_zero_and_no_errors_is_not_a_band_around_zero() -> None:
    """A linear panel starts at 0; an all-zero count panel shows 0..1, not -0.06..0.06."""
    require_matplotlib()
    panels = [charts.Panel("errors", [0.0, 0.0], digits=0), charts.Panel("tokens/s", [90.0, 92.0])]
    fig = charts.bar_figure(["a", "b"], panels, "t")
    errors, rate = (ax for ax in fig.axes if ax.get_visible())
    assert errors.get_ylim() == (0.0, 1.0)
    assert [t.get_text() for t in errors.texts] == ["0", "0"]
    assert rate.get_ylim()[0] == 0.0
    assert rate.get_ylim()[1] > 92.0


def test_chart_files_are_valid_png_and_svg(tmp_path: Path) -> None:
    """`--chart x.png` writes a PNG, `--chart x.svg` an SVG document, as their suffixes say."""
    require_matplotlib()
    png, svg = tmp_path / "chart.png", tmp_path / "chart.svg"
    assert draw_chart(RESULTS, str(png), INFO) == f"chart written to {png}"
    assert draw_chart(RESULTS, str(svg), INFO) == f"chart written to {svg}"
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 800 and height > 400  # noqa: PT018 - one image size
    root = ET.parse(svg).getroot()  # noqa: S314 - our own file
    assert root.tag == SVG_ROOT


def test_inline_svg_is_one_svg_element_with_the_labels_as_text() -> None:
    """The HTML report's SVG has no prolog and keeps the labels as text."""
    require_matplotlib()
    svg = charts.to_svg(build_chart(RESULTS, INFO))
    assert svg.startswith("<svg")
    assert ET.fromstring(svg).tag == SVG_ROOT  # noqa: S314 - our own output
    assert "1,234.5" in svg
    assert "9,800.0" in svg


def test_chart_is_drawn_without_a_display_or_pyplot(tmp_path: Path) -> None:
    """No DISPLAY and a GUI backend asked for: the chart is still written, pyplot never loaded."""
    require_matplotlib()
    out = tmp_path / "chart.png"
    script = (
        "import sys\n"
        "from swapgate.bench import charts\n"
        "panel = charts.Panel('tokens/s', [2.0, 250.0])\n"
        "charts.save(charts.bar_figure(['a', 'b'], [panel], 'title'), sys.argv[1])\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["MPLBACKEND"] = "TkAgg"
    done = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_without_matplotlib_the_chart_is_skipped_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """matplotlib made unimportable: a message naming the extra, and no file."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert not charts.available()
    out = tmp_path / "chart.png"
    message = draw_chart(RESULTS, str(out), INFO)
    assert message == "chart skipped: matplotlib is not installed (pip install -e '.[bench]')"
    assert not out.exists()
