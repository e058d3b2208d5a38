"""``swapgate bench gate``: the CI performance gate (exit 1 when swapgate costs too much).

A fixed, short comparison: 32 concurrent streams against the realistic fake upstream (first
token after 100 ms, 50 tokens 20 ms apart), directly and through swapgate, in alternated
rounds with swapgate pinned to its own core. Each metric's overhead is the median of the
per-round overheads, so drift and one noisy round cannot fail the gate; it fails when the
overhead on median TTFT, p99 latency or tokens/s exceeds the threshold (4 %).

The load comes from this package's aiohttp generator rather than locust: locust rounds
response times above 100 ms to the nearest 10 ms, a 10 % step on a 100 ms TTFT, far too
coarse for a 4 % gate.

``--inject-delay-ms N`` starts swapgate with SWAPGATE_TEST_INJECT_DELAY_MS=N, which delays
every proxied request inside swapgate; it proves the gate fails when it should.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import uvloop

from swapgate.bench import htmlreport
from swapgate.bench import stack as st
from swapgate.bench.harness import (
    BENCH_MODEL,
    METRICS,
    LevelResult,
    Plan,
    pin_self,
    run_estimate_s,
    run_level,
    start_default_target,
    workloads,
)
from swapgate.bench.report import Progress, RunInfo, Table, fmt, pct, write_json
from swapgate.bench.stats import Target, overhead_pct

THRESHOLD_PCT = 4.0
CONCURRENCY = 32
ROUNDS = 7
ROUND_S = 7.0


async def run_gate(plan: Plan, *, inject_delay_ms: float, pin_cores: bool) -> LevelResult:
    """Start swapgate and its fake upstream, then run the alternated rounds."""
    progress = Progress(plan.rounds * 2, "gate")
    progress.note(
        f"gate: {plan.rounds} alternated rounds of {plan.duration_s:g} s per target at "
        f"concurrency {plan.concurrency[0]}; estimated run time about "
        f"{run_estimate_s(plan) or 0:.0f} s"
    )
    with st.Stack(pin_cores=pin_cores) as stack:
        direct, via = await start_default_target(
            stack, inject_delay_ms=inject_delay_ms, progress=progress
        )
        if pin_cores:
            pin_self()
        try:
            targets = workloads(direct, via, BENCH_MODEL, plan)
            level = await run_level(targets, plan.concurrency[0], plan, progress)
        finally:
            progress.finish()
        if any(s.errors for s in level.pooled.values()):
            # Failed requests make the figures meaningless: show why before the logs go.
            print("requests failed; swapgate's log ends with:", file=sys.stderr)
            print(stack.log_tail(stack.procs[0], 40), file=sys.stderr)
        return level


def verdict(level: LevelResult, threshold: float) -> list[str]:
    """What fails the gate: metrics over ``threshold`` %, and any failed request."""
    failed = [label for name, label, _h in METRICS if not level.overhead[name] <= threshold]
    # `not x <= t` also fails NaN: a gate that measured nothing must not pass.
    errors = sum(s.errors for s in level.pooled.values())
    if errors:
        failed.append(f"{errors} failed requests")
    return failed


def results_table(level: LevelResult) -> Table:
    """Per-round overheads and the medians the gate judges."""
    rows: list[list[str]] = []
    for index, rnd in enumerate(level.rounds):
        d, v = rnd[Target.DIRECT], rnd[Target.VIA]
        cells = [
            pct(overhead_pct(float(getattr(d, n)), float(getattr(v, n)), higher_is_better=h))
            for n, _l, h in METRICS
        ]
        rows.append([f"round {index + 1}", *cells])
    rows.append(["median of rounds", *(pct(level.overhead[n]) for n, _l, _h in METRICS)])
    d, v = level.pooled[Target.DIRECT], level.pooled[Target.VIA]
    rows.append(["pooled direct", *(fmt(float(getattr(d, n))) for n, _l, _h in METRICS)])
    rows.append(["pooled via swapgate", *(fmt(float(getattr(v, n))) for n, _l, _h in METRICS)])
    headers = ["overhead per round", *(label for _n, label, _h in METRICS)]
    return Table(headers, rows, "overhead of swapgate, per round and overall")


def render(level: LevelResult, threshold: float) -> str:
    """The table and the limit it is judged against."""
    return results_table(level).text() + f"\n{_limit(threshold)}"


def _limit(threshold: float) -> str:
    return f"limit: +{threshold:g}% on each metric"


def run_info(ns: argparse.Namespace) -> RunInfo:
    """The gate's parameters, for the HTML report."""
    params = [
        ("concurrency", str(ns.concurrency)),
        ("alternated rounds", str(ns.rounds)),
        ("seconds per round", f"{ns.duration:g}"),
        ("threshold", f"+{ns.threshold:g}%"),
        ("pinned to cores", "yes" if ns.pin else "no"),
    ]
    if ns.inject_delay_ms:
        params.append(("injected delay", f"{ns.inject_delay_ms:g} ms"))
    return RunInfo("swapgate bench gate", params)


def main(argv: Sequence[str]) -> int:
    """``swapgate bench gate [--inject-delay-ms N] [--json PATH]``; 0 pass, 1 fail."""
    ap = argparse.ArgumentParser(prog="swapgate bench gate", description=__doc__)
    ap.add_argument("--threshold", type=float, default=THRESHOLD_PCT, help="max overhead %%")
    ap.add_argument("--concurrency", type=int, default=CONCURRENCY)
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    ap.add_argument("--duration", type=float, default=ROUND_S, help="seconds per round")
    ap.add_argument("--inject-delay-ms", type=float, default=0.0)
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--html", metavar="PATH.html", help="one self-contained HTML report")
    ap.add_argument("--pin", action=argparse.BooleanOptionalAction, default=st.can_pin())
    ns = ap.parse_args(argv)
    plan = Plan(concurrency=[ns.concurrency], rounds=ns.rounds, duration_s=ns.duration)
    info = run_info(ns)
    start = time.monotonic()
    level = uvloop.run(run_gate(plan, inject_delay_ms=ns.inject_delay_ms, pin_cores=ns.pin))
    print(render(level, ns.threshold))
    failed = verdict(level, ns.threshold)
    elapsed = time.monotonic() - start
    if ns.json:
        write_json(ns.json, {**level.to_json(), "threshold_pct": ns.threshold, "failed": failed})
    if failed:
        outcome = (
            f"GATE FAILED after {elapsed:.0f} s (limit +{ns.threshold:g}%): {'; '.join(failed)}"
        )
    else:
        outcome = f"gate passed in {elapsed:.0f} s"
    if ns.html:
        notes = [_limit(ns.threshold), outcome]
        print(htmlreport.write(ns.html, info, [results_table(level)], notes=notes))
    print(outcome)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
