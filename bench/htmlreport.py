"""The ``--html PATH`` report of a benchmark run: one self-contained HTML file.

It holds the run's parameters and date, its tables and its charts as inline SVG; no script,
stylesheet, font or image is fetched from anywhere, so the file can be mailed or attached to a
CI run as it is. Every value from the run is escaped with :func:`html.escape`. The SVG comes
from matplotlib (bench/charts.py), which escapes the text it draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from swapgate.bench.charts import INSTALL_HINT
from swapgate.bench.report import RunInfo, Table

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 75em; padding: 0 1em;
  color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0; }
.date { color: #666; margin-top: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.8em; }
thead th { background: #f3f3f3; }
td { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child, th, .params td { text-align: left; }
figure { margin: 0 0 1.5em; }
figure svg { max-width: 100%; height: auto; }
.missing { background: #fff6d5; padding: 0.6em 0.9em; border-left: 4px solid #e0b000; }
"""


@dataclass(frozen=True, slots=True)
class Chart:
    """An inline ``<svg>`` element (from :func:`bench.charts.to_svg`) and its caption."""

    caption: str
    svg: str


def render(
    info: RunInfo,
    tables: Sequence[Table],
    charts: Sequence[Chart] | None = (),
    notes: Sequence[str] = (),
) -> str:
    """The report as an HTML document.

    ``charts`` is None when the run has charts but matplotlib is missing: the report then
    says how to install it. An empty sequence means the command draws none.
    """
    title = f"{info.command}, {info.date()}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(info.command)}</h1>",
        f'<p class="date">run started {escape(info.date())}</p>',
        _params(info.params),
        *(_table(t) for t in tables),
    ]
    if notes:
        parts.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    parts.extend(_charts(charts))
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _params(params: Sequence[tuple[str, str]]) -> str:
    rows = "".join(
        f'<tr><th scope="row">{escape(name)}</th><td>{escape(value)}</td></tr>'
        for name, value in params
    )
    return f'<table class="params"><caption>parameters</caption><tbody>{rows}</tbody></table>'


def _table(table: Table) -> str:
    caption = f"<caption>{escape(table.title)}</caption>" if table.title else ""
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in table.headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in table.rows
    )
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _charts(charts: Sequence[Chart] | None) -> list[str]:
    if charts is None:
        return [
            '<p class="missing">Charts need matplotlib, which is not installed here: '
            f"<code>{escape(INSTALL_HINT)}</code></p>"
        ]
    return [f"<figure>{c.svg}<figcaption>{escape(c.caption)}</figcaption></figure>" for c in charts]


def write(
    path: str | Path,
    info: RunInfo,
    tables: Sequence[Table],
    charts: Sequence[Chart] | None = (),
    notes: Sequence[str] = (),
) -> str:
    """Write the report to ``path``; returns the line to print about it."""
    Path(path).write_text(render(info, tables, charts, notes), encoding="utf-8")
    return f"HTML report written to {path}"
