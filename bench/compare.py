"""``swapgate bench compare``: the same workload against several models behind one swapgate.

Models run one after another. For each: all models are unloaded (POST /api/models/unload),
one request times the cold load (request to first token, start-up included), then the prompt
set runs warm at the chosen concurrency. The table gives cold load, warm TTFT p50/p95,
tokens/s, p95/p99 latency and errors; ``--chart`` draws them with matplotlib when it is
installed (the ``bench`` extra) and ``--html`` writes them, charts included, to one HTML file.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import uvloop

from swapgate.bench import charts, htmlreport
from swapgate.bench import stack as st
from swapgate.bench.loadgen import Message, Summary, Workload, new_session, one_request, run_load
from swapgate.bench.report import Progress, RunInfo, Table, fmt, write_json

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_PROMPTS = Path(__file__).parent / "prompts" / "default.jsonl"


@dataclass(frozen=True, slots=True)
class ModelResult:
    """One model's cold load and warm run."""

    model: str
    cold_load_ms: float
    cold_error: str
    warm: Summary


def load_prompts(path: Path) -> list[list[Message]]:
    """Chat prompts from JSONL: one ``{"messages": [...]}`` object per non-blank line."""
    prompts: list[list[Message]] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        data = orjson.loads(line)
        messages = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(messages, list) or not messages:
            msg = f"{path}:{number}: expected {{'messages': [...]}}"
            raise ValueError(msg)
        prompts.append([{str(k): str(v) for k, v in m.items()} for m in messages])
    if not prompts:
        msg = f"{path}: no prompts"
        raise ValueError(msg)
    return prompts


async def measure_model(
    via: str,
    model: str,
    prompts: list[list[Message]],
    concurrency: int,
    requests: int,
    max_tokens: int | None,
) -> ModelResult:
    """Unload everything, time one cold request, then run the prompts warm."""
    await st.get_json(via + "/api/models/unload", method="POST")
    workload = Workload(via, model, max_tokens=max_tokens, prompts=prompts)
    async with new_session(1, timeout_s=600) as session:
        cold = await one_request(session, workload, workload.body(prompts[0]))
    warm = await run_load(workload, concurrency, requests=requests)
    return ModelResult(
        model, cold.ttft_s * 1000 if not cold.error else float("nan"), cold.error, Summary.of(warm)
    )


def results_table(results: Sequence[ModelResult]) -> Table:
    """The comparison, one row per model."""
    rows = [
        [
            r.model,
            fmt(r.cold_load_ms),
            fmt(r.warm.ttft_p50_ms),
            fmt(r.warm.ttft_p95_ms),
            fmt(r.warm.tokens_per_s),
            fmt(r.warm.latency_p95_ms),
            fmt(r.warm.latency_p99_ms),
            str(_errors(r)),
        ]
        for r in results
    ]
    headers = [
        "model",
        "cold load ms",
        "TTFT p50 ms",
        "TTFT p95 ms",
        "tokens/s",
        "p95 ms",
        "p99 ms",
        "errors",
    ]
    return Table(headers, rows, "per model (warm figures after one cold request)")


def render(results: Sequence[ModelResult]) -> str:
    """The comparison as a text table."""
    return results_table(results).text()


def _errors(result: ModelResult) -> int:
    return result.warm.errors + bool(result.cold_error)


def chart_panels(results: Sequence[ModelResult]) -> list[charts.Panel]:
    """The charted figures: throughput, tail latency and errors first, then the load times."""
    return [
        charts.Panel("tokens/s", [r.warm.tokens_per_s for r in results]),
        charts.Panel("p95 latency (ms)", [r.warm.latency_p95_ms for r in results]),
        charts.Panel("p99 latency (ms)", [r.warm.latency_p99_ms for r in results]),
        charts.Panel("errors", [float(_errors(r)) for r in results], digits=0),
        charts.Panel("cold load (ms)", [r.cold_load_ms for r in results]),
        charts.Panel("warm TTFT p50 (ms)", [r.warm.ttft_p50_ms for r in results]),
    ]


def build_chart(results: Sequence[ModelResult], info: RunInfo) -> Figure:
    """The chart as a matplotlib figure; needs matplotlib (see :func:`charts.available`)."""
    return charts.bar_figure([r.model for r in results], chart_panels(results), info.title())


def draw_chart(results: Sequence[ModelResult], path: str, info: RunInfo) -> str:
    """Bar charts of the main figures; returns a message saying what happened."""
    if not charts.available():
        return f"chart skipped: {charts.MISSING}"
    charts.save(build_chart(results, info), path)
    return f"chart written to {path}"


def write_html(results: Sequence[ModelResult], path: str, info: RunInfo) -> str:
    """The HTML report of the run (table and chart); returns a message saying where."""
    chart = None
    if charts.available():
        chart = [
            htmlreport.Chart(
                "throughput, latency, errors and load times per model",
                charts.to_svg(build_chart(results, info)),
            )
        ]
    return htmlreport.write(path, info, [results_table(results)], chart)


def run_info(ns: argparse.Namespace, prompts: Sequence[list[Message]], requests: int) -> RunInfo:
    """The parameters of a run, for the chart title and the HTML report."""
    max_tokens = "server default" if ns.max_tokens is None else str(ns.max_tokens)
    return RunInfo(
        "swapgate bench compare",
        [
            ("via", ns.via),
            ("models", ", ".join(ns.models.split(","))),
            ("concurrency", str(ns.concurrency)),
            ("warm requests per model", str(requests)),
            ("prompts", f"{Path(ns.prompts).name} ({len(prompts)})"),
            ("max tokens", max_tokens),
        ],
    )


def warm_requests(ns: argparse.Namespace, prompts: Sequence[list[Message]]) -> int:
    """``--requests``, or by default every prompt twice and at least two per client."""
    return int(ns.requests or max(2 * len(prompts), 2 * ns.concurrency))


async def run(
    ns: argparse.Namespace, prompts: list[list[Message]], requests: int
) -> list[ModelResult]:
    """Every model in turn, with a progress line per step (see :class:`Progress`)."""
    via = ns.via.rstrip("/")
    models = ns.models.split(",")
    progress = Progress(len(models), "starting")
    progress.note(
        f"{len(models)} models, each: unload all, one cold request, {requests} warm requests at "
        f"concurrency {ns.concurrency}; the run time depends on the load times (estimated "
        "after the first model)"
    )
    results: list[ModelResult] = []
    started = time.monotonic()
    try:
        for index, model in enumerate(models):
            progress.note(f"{model}: unloading everything, then timing a cold load")
            result = await measure_model(
                via, model, prompts, ns.concurrency, requests, ns.max_tokens
            )
            results.append(result)
            progress.step(1, f"{model}: {_outcome(result)}")
            if index == 0 and len(models) > 1:
                rest = (time.monotonic() - started) * (len(models) - 1)
                progress.note(f"about {rest:.0f} s more for the other {len(models) - 1}")
    finally:
        progress.finish()
    return results


def _outcome(result: ModelResult) -> str:
    cold = (
        f"cold load failed ({result.cold_error})"
        if result.cold_error
        else (f"cold load {result.cold_load_ms:.0f} ms")
    )
    return f"{cold}, warm TTFT p50 {result.warm.ttft_p50_ms:.1f} ms, {result.warm.errors} errors"


def main(argv: Sequence[str]) -> int:
    """``swapgate bench compare --via URL --models a,b,c [...]``; 1 when any request failed."""
    ap = argparse.ArgumentParser(prog="swapgate bench compare", description=__doc__)
    ap.add_argument("--via", required=True, metavar="URL", help="a running swapgate")
    ap.add_argument("--models", required=True, metavar="A,B,C")
    ap.add_argument("--prompts", default=str(DEFAULT_PROMPTS), metavar="FILE.jsonl")
    ap.add_argument("--max-tokens", type=int, metavar="N")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--requests", type=int, metavar="N", help="warm requests per model")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--chart", metavar="PATH.png", help="bar charts (.png, .svg or .pdf)")
    ap.add_argument("--html", metavar="PATH.html", help="one self-contained HTML report")
    ns = ap.parse_args(argv)
    prompts = load_prompts(Path(ns.prompts))
    requests = warm_requests(ns, prompts)
    info = run_info(ns, prompts, requests)
    results = uvloop.run(run(ns, prompts, requests))
    print(render(results))
    if ns.chart:
        print(draw_chart(results, ns.chart, info))
    if ns.html:
        print(write_html(results, ns.html, info))
    if ns.json:
        write_json(ns.json, [asdict(r) for r in results])
    return 1 if any(r.cold_error or r.warm.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
