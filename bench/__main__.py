"""``swapgate bench`` (and ``swapgate bench``): direct versus through-swapgate benchmarks.

Without a subcommand it runs the latency/throughput comparison; ``swap``, ``saturation``,
``compare``, ``gate`` and ``memory`` run the other benchmarks (each has its own ``--help``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import datetime

import uvloop

from swapgate.bench import htmlreport
from swapgate.bench import stack as st
from swapgate.bench.harness import (
    Plan,
    pin_self,
    run_comparison,
    run_estimate_s,
    start_default_target,
)
from swapgate.bench.report import Progress, RunInfo, now, write_json

SUBCOMMANDS = ("swap", "saturation", "compare", "gate", "memory")


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        msg = f"expected comma-separated positive integers, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return values


def build_parser() -> argparse.ArgumentParser:
    """Options of the default comparison."""
    ap = argparse.ArgumentParser(
        prog="swapgate bench",
        description="Same workload directly and through swapgate, in alternated rounds. "
        f"Other benchmarks: {', '.join(SUBCOMMANDS)} (swapgate bench NAME --help).",
    )
    ap.add_argument("--direct", metavar="URL", help="upstream base URL (default: spawn a fake)")
    ap.add_argument("--via", metavar="URL", help="swapgate base URL in front of --direct")
    ap.add_argument("--model", default="bench", help="model name sent in requests")
    ap.add_argument("--concurrency", type=_int_list, default=[1, 16, 64], metavar="N,N,...")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--duration", type=float, metavar="S", help="seconds per round (default 4)")
    size.add_argument("--requests", type=int, metavar="N", help="requests per round")
    ap.add_argument("--rounds", type=int, default=3, help="alternated pairs per level")
    ap.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--max-tokens", type=int, metavar="N")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--html", metavar="PATH.html", help="also write one self-contained HTML report")
    ap.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=st.can_pin(),
        help="swapgate on core 0, load generator and upstream on core 1 (default on 2+ cores)",
    )
    ap.add_argument("--inject-delay-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark named by ``argv``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] and args[0] in SUBCOMMANDS:
        return _subcommand(args[0])(args[1:])
    ns = build_parser().parse_args(args)
    if (ns.direct is None) != (ns.via is None):
        print("swapgate bench: give both --direct and --via, or neither", file=sys.stderr)
        return 2
    duration = ns.duration if ns.requests is None else None
    plan = Plan(
        concurrency=ns.concurrency,
        rounds=ns.rounds,
        duration_s=4.0 if duration is None and ns.requests is None else duration,
        requests=ns.requests,
        stream=ns.stream,
        max_tokens=ns.max_tokens,
    )
    return uvloop.run(_compare(ns, plan))


def _subcommand(name: str) -> Callable[[Sequence[str]], int]:
    # Imported on demand: each benchmark pulls in only what it needs.
    if name == "swap":
        from swapgate.bench.swap import main as swap_main

        return swap_main
    if name == "saturation":
        from swapgate.bench.saturation import main as saturation_main

        return saturation_main
    if name == "memory":
        from swapgate.bench.memory import main as memory_main

        return memory_main
    if name == "compare":
        from swapgate.bench.compare import main as compare_main

        return compare_main
    from swapgate.bench.gate import main as gate_main

    return gate_main


def _estimate_line(plan: Plan) -> str:
    """The up-front estimate of the run time, printed before anything starts."""
    levels = f"{len(plan.concurrency)} concurrency levels ({','.join(map(str, plan.concurrency))})"
    estimate = run_estimate_s(plan)
    if estimate is None:
        return f"{levels}; each level estimates its time after its warm-up"
    return f"{levels}; estimated run time about {estimate:.0f} s"


def _run_info(
    ns: argparse.Namespace, plan: Plan, direct: str, via: str, started: datetime
) -> RunInfo:
    """The run's parameters for the HTML report; the URLs are known once the stack runs."""
    mode = f"{plan.requests} requests" if plan.requests else f"{plan.duration_s:g} s"
    return RunInfo(
        "swapgate bench",
        [
            ("direct", direct),
            ("via swapgate", via),
            ("model", ns.model),
            ("concurrency", ", ".join(map(str, plan.concurrency))),
            ("alternated rounds per level", str(plan.rounds)),
            ("per round and target", mode),
            ("streamed", "yes" if plan.stream else "no"),
            ("max tokens", "server default" if plan.max_tokens is None else str(plan.max_tokens)),
            ("pinned to cores", "yes" if ns.pin else "no"),
        ],
        started,
    )


async def _compare(ns: argparse.Namespace, plan: Plan) -> int:
    started = now()
    per_round = len(plan.concurrency) * plan.rounds * 2
    units = per_round * plan.requests if plan.requests is not None else per_round
    progress = Progress(units, "starting")
    progress.note(_estimate_line(plan))
    with st.Stack(pin_cores=ns.pin) as stack:
        if ns.direct is None:
            direct, via = await start_default_target(
                stack, inject_delay_ms=ns.inject_delay_ms, progress=progress
            )
        else:
            direct, via = ns.direct.rstrip("/"), ns.via.rstrip("/")
        if ns.pin:
            pin_self()
        try:
            result = await run_comparison(direct, via, ns.model, plan, progress)
        finally:
            progress.finish()
    print(f"direct: {direct}   via swapgate: {via}   model: {ns.model}")
    mode = f"{plan.requests} requests" if plan.requests else f"{plan.duration_s:g} s"
    print(f"{plan.rounds} alternated rounds of {mode} per target and level, pinned={ns.pin}")
    print(result.render())
    if ns.json:
        write_json(ns.json, result.to_json())
    if ns.html:
        info = _run_info(ns, plan, direct, via, started)
        print(htmlreport.write(ns.html, info, [result.results_table()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
