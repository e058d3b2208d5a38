"""Bar charts of benchmark results, drawn with matplotlib when it is installed (``bench`` extra).

Figures are built on ``matplotlib.figure.Figure`` directly, never through pyplot: no GUI
backend and no global figure state are involved, so charts work headless and need no
``close()``. Every bar carries its value, and a panel whose values span more than
:data:`LOG_SPAN` times gets a log axis, where the small bars would otherwise be slivers.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from swapgate.bench.report import fmt

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LOG_SPAN = 10.0
INSTALL_HINT = "pip install -e '.[bench]'"
MISSING = f"matplotlib is not installed ({INSTALL_HINT})"
PANEL_COLUMNS = 3
BAR_COLOUR = "#4c72b0"

Scale = Literal["linear", "log", "symlog"]


@dataclass(frozen=True, slots=True)
class Panel:
    """One subplot: a figure per bar (NaN where it was not measured), labelled to ``digits``."""

    title: str
    values: Sequence[float]
    digits: int = 1


def available() -> bool:
    """Whether matplotlib can be imported here."""
    try:
        import matplotlib.figure  # noqa: F401 - optional, probed on demand
    except ImportError:
        return False
    return True


def needs_log_scale(values: Sequence[float]) -> bool:
    """True when the largest positive finite value is more than 10x the smallest one.

    Zeros and NaN are left out: a log axis cannot place them, and they make no bar to hide.
    """
    positive = [v for v in values if math.isfinite(v) and v > 0]
    return len(positive) >= 2 and max(positive) > LOG_SPAN * min(positive)


def axis_scale(values: Sequence[float]) -> Scale:
    """``log`` when :func:`needs_log_scale`; ``symlog`` instead when some value is zero or NaN
    (drawn as 0), which keeps those bars on the baseline rather than off the axis."""
    if not needs_log_scale(values):
        return "linear"
    return "log" if all(math.isfinite(v) and v > 0 for v in values) else "symlog"


def bar_figure(names: Sequence[str], panels: Sequence[Panel], title: str) -> Figure:
    """One bar panel per entry of ``panels`` (``names`` along each x axis), up to three a row.

    Raises ImportError when matplotlib is missing; check :func:`available` first.
    """
    from matplotlib import figure  # optional dependency

    columns = min(PANEL_COLUMNS, len(panels))
    rows = math.ceil(len(panels) / columns)
    panel_width = max(4.0, 0.8 * len(names) + 2.0)
    title_lines = title.count("\n") + 1
    fig = figure.Figure(
        figsize=(panel_width * columns, 3.6 * rows + 0.3 * title_lines), layout="constrained"
    )
    grid = fig.subplots(rows, columns, squeeze=False)
    axes = [ax for row in grid for ax in row]
    for ax, panel in zip(axes, panels, strict=False):
        _draw_panel(ax, names, panel)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    # parse_math off: a model name with dollar signs is a name, not a formula.
    fig.suptitle(title, fontsize=10, parse_math=False)
    return fig


def _draw_panel(ax: Axes, names: Sequence[str], panel: Panel) -> None:
    from matplotlib import ticker  # optional dependency

    heights = [v if math.isfinite(v) else 0.0 for v in panel.values]
    bars = ax.bar(range(len(names)), heights, color=BAR_COLOUR)
    slanted = len(names) > 3 or max((len(n) for n in names), default=0) > 12
    ax.set_xticks(
        range(len(names)),
        list(names),
        rotation=30 if slanted else 0,
        ha="right" if slanted else "center",
        parse_math=False,
    )
    scale = axis_scale(panel.values)
    if scale == "symlog":
        smallest = min(v for v in panel.values if math.isfinite(v) and v > 0)
        # Linear up to a power of ten, so the decade ticks above it fall on round numbers.
        ax.set_yscale("symlog", linthresh=10 ** math.floor(math.log10(smallest)))
    elif scale == "log":
        ax.set_yscale("log")
    labels = [fmt(v, panel.digits) for v in panel.values]
    ax.bar_label(bars, labels=labels, padding=2, fontsize=8)
    if scale == "linear":
        # From zero, with head room for the top label; an all-zero panel (no errors) gets 0..1
        # rather than matplotlib's band around zero.
        top = max(heights, default=0.0)
        ax.set_ylim(0.0, top * 1.2 if top > 0 else 1.0)
        if panel.digits == 0:
            ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    else:
        ax.margins(y=0.2)
    ax.set_title(panel.title + ("" if scale == "linear" else " (log scale)"), fontsize=10)


def save(fig: Figure, path: str | Path) -> None:
    """Write ``fig`` to ``path``, in the format its suffix names (.png, .svg, .pdf)."""
    fig.savefig(path, dpi=110)


def to_svg(fig: Figure) -> str:
    """``fig`` as one ``<svg>`` element to inline in HTML (no XML prolog, no DOCTYPE).

    Text stays text (``svg.fonttype: none``): labels are crisp at any zoom and searchable.
    """
    import matplotlib  # optional dependency

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "swapgate"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]
