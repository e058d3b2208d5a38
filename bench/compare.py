"""``swapgate bench compare``: the same workload against several models behind one swapgate.

Models run one after another. For each: all models are unloaded (POST /api/models/unload),
one request times the cold load (request to first token, start-up included), then the prompt
set runs warm at the chosen concurrency. The table gives cold load, warm TTFT p50/p95,
tokens/s, p99 latency and errors; ``--chart`` draws them with matplotlib when it is installed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
import uvloop

from swapgate.bench import stack as st
from swapgate.bench.loadgen import Message, Summary, Workload, new_session, one_request, run_load
from swapgate.bench.report import Progress, fmt, table, write_json

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


def render(results: Sequence[ModelResult]) -> str:
    """The comparison as a text table."""
    rows = [
        [
            r.model,
            fmt(r.cold_load_ms),
            fmt(r.warm.ttft_p50_ms),
            fmt(r.warm.ttft_p95_ms),
            fmt(r.warm.tokens_per_s),
            fmt(r.warm.latency_p99_ms),
            str(r.warm.errors + bool(r.cold_error)),
        ]
        for r in results
    ]
    headers = [
        "model",
        "cold load ms",
        "TTFT p50 ms",
        "TTFT p95 ms",
        "tokens/s",
        "p99 ms",
        "errors",
    ]
    return table(headers, rows)


def draw_chart(results: Sequence[ModelResult], path: str) -> str:
    """Bar charts of the main figures; returns a message saying what happened."""
    try:
        # Optional (the `bench` extra), so imported by name: no stubs needed where it is absent.
        mpl = importlib.import_module("matplotlib")
        mpl.use("Agg")  # files only, never a window
        plt = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        return "chart skipped: matplotlib is not installed (pip install -e '.[bench]')"
    names = [r.model for r in results]
    panels = [
        ("cold load (ms)", [r.cold_load_ms for r in results]),
        ("warm TTFT p50 (ms)", [r.warm.ttft_p50_ms for r in results]),
        ("tokens/s", [r.warm.tokens_per_s for r in results]),
        ("p99 latency (ms)", [r.warm.latency_p99_ms for r in results]),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.5))
    for ax, (title, values) in zip(axes, panels, strict=True):
        ax.bar(names, values)
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return f"chart written to {path}"


async def run(ns: argparse.Namespace) -> list[ModelResult]:
    """Every model in turn, with a progress line per step (see :class:`Progress`)."""
    prompts = load_prompts(Path(ns.prompts))
    requests = ns.requests or max(2 * len(prompts), 2 * ns.concurrency)
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
    ap.add_argument("--chart", metavar="PATH.png")
    ns = ap.parse_args(argv)
    results = uvloop.run(run(ns))
    print(render(results))
    if ns.chart:
        print(draw_chart(results, ns.chart))
    if ns.json:
        write_json(ns.json, [asdict(r) for r in results])
    return 1 if any(r.cold_error or r.warm.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
