"""``swapgate bench swap``: how much time swapgate adds to a model switch.

Through swapgate: with model A loaded, a request for B is sent and timed to B's first token
(swapgate stops A, starts B, waits for B's health check, forwards). Directly: the same fake
server is spawned by hand and ``/health`` polled every 5 ms until it answers, then one request
is timed to its first token. Direct starts and switches alternate; the median of each pair's
difference (switch minus the direct start just before it) is swapgate's added swap time.

``--interleaved``: what collating queued requests by model saves. Two fake models A and B share
one swap group (only one runs at a time). Two clients run at once, each sending ``--requests``
streamed requests one after the other, alternating models (client 1: A B A B ..., client 2:
B A B A ...). The baseline is the same two clients asking only for A. With one request in
flight per client, every client's consecutive requests need a swap between them, so no
scheduler can do better than about one swap per request pair; ``--in-flight K`` lets each
client keep K requests unanswered, which queues A and B together for collation to reorder.
Swaps are counted as
upstream process starts after the warm-up: every fake is started through a tiny ``sh`` wrapper
that appends its model and PID to a log before it ``exec``s the fake (same PID, so swapgate
sees no difference), which counts real starts without relying on swapgate's logs or API.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import uvloop

from swapgate.bench import htmlreport
from swapgate.bench import stack as st
from swapgate.bench.interleaved import (
    DEFAULT_REQUESTS,
    DEFAULT_STARTUP_DELAY_S,
    InterleavedPlan,
    fake_description,
    first_token_ms,
    interleaved_notes,
    interleaved_table,
    measure_interleaved,
    render_interleaved,
)
from swapgate.bench.report import RunInfo, Table, fmt, write_json
from swapgate.bench.stats import median

TARGET_MS = 30.0
HEALTH_POLL_S = 0.005
# Zero start-up delay and an immediate token: all that is left is process start and swapping.
FAKE_ARGS = ("--startup-delay", "0", "--ttft", "0", "--tokens", "1")


@dataclass(frozen=True, slots=True)
class SwapResult:
    """Medians in milliseconds over ``samples`` switches and direct starts."""

    samples: int
    direct_spawn_to_healthy_ms: float
    direct_first_token_ms: float
    via_switch_to_first_token_ms: float
    added_ms: float
    target_ms: float = TARGET_MS


async def direct_start(stack: st.Stack, core: int | None) -> tuple[float, float]:
    """(spawn-to-healthy ms, first-token ms) of one fake started by hand."""
    port = st.free_port()
    start = time.perf_counter()
    proc = stack.spawn(st.fake_cmd("direct", str(port), *FAKE_ARGS), core=core)
    url = f"http://{st.LOCALHOST}:{port}"
    await st.wait_ready(url + "/health", proc, interval_s=HEALTH_POLL_S)
    healthy_ms = (time.perf_counter() - start) * 1000
    first_ms = await first_token_ms(url, "direct")
    st.ensure_stopped(proc)
    return healthy_ms, first_ms


async def measure(samples: int, *, pin_cores: bool) -> SwapResult:
    """Alternate direct starts and swapgate switches ``samples`` times each."""
    # Swapgate's children inherit its core, so the direct fakes start there too: same CPU.
    core = st.PROXY_CORE if pin_cores else None
    models = {
        name: {
            "cmd": " ".join(st.fake_cmd(name, "${PORT}", *FAKE_ARGS)),
            "checkEndpoint": "/health",
        }
        for name in ("a", "b")
    }
    healthy: list[float] = []
    first: list[float] = []
    switches: list[float] = []
    with st.Stack(pin_cores=pin_cores) as stack:
        proc, via = stack.start_swapgate(models)
        await st.wait_ready(via + "/health", proc)
        await first_token_ms(via, "a")  # A is running before the first switch
        for index in range(samples):
            h, f = await direct_start(stack, core)
            healthy.append(h)
            first.append(f)
            switches.append(await first_token_ms(via, "b" if index % 2 == 0 else "a"))
    # Each switch is compared with the direct start just before it: the machine's speed
    # drifts (the same start takes 230 ms one minute and 300 ms the next), and a median of
    # the pairs' differences cancels that drift where a difference of medians would not.
    added = [s - (h + f) for s, h, f in zip(switches, healthy, first, strict=True)]
    return SwapResult(
        samples=samples,
        direct_spawn_to_healthy_ms=median(healthy),
        direct_first_token_ms=median(first),
        via_switch_to_first_token_ms=median(switches),
        added_ms=median(added),
    )


def render(result: SwapResult) -> str:
    """The swap measurement as a text table."""
    return results_table(result).text()


def results_table(result: SwapResult) -> Table:
    """The medians of the direct starts and the switches, and what swapgate adds."""
    verdict = "within" if result.added_ms <= result.target_ms else "OVER"
    rows = [
        ["direct: spawn -> /health 200 (5 ms polls)", fmt(result.direct_spawn_to_healthy_ms)],
        ["direct: warm request -> first token", fmt(result.direct_first_token_ms)],
        [
            "via swapgate: request for B while A runs -> first token",
            fmt(result.via_switch_to_first_token_ms),
        ],
        [
            f"added by swapgate, median of pairs ({verdict} the {result.target_ms:g} ms target)",
            fmt(result.added_ms),
        ],
    ]
    headers = [f"swap latency, median of {result.samples}", "ms"]
    return Table(headers, rows, "model switch through swapgate against a direct start")


def interleaved_params(plan: InterleavedPlan) -> list[tuple[str, str]]:
    """The interleaved run's parameters, for the HTML report."""
    return [
        ("requests per client", str(plan.requests)),
        ("unanswered requests per client", str(plan.in_flight)),
        ("fake start-up delay", f"{plan.startup_delay_s:g} s"),
    ]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        msg = f"must be >= 1, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also rejects NaN
        msg = f"must be >= 0, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def build_parser() -> argparse.ArgumentParser:
    """Options of ``swapgate bench swap``."""
    ap = argparse.ArgumentParser(prog="swapgate bench swap", description=__doc__)
    ap.add_argument(
        "--samples", type=_positive_int, default=10, help="switches (and direct starts)"
    )
    ap.add_argument(
        "--interleaved",
        action="store_true",
        help="two clients alternating models A and B, against a baseline on A only",
    )
    ap.add_argument(
        "--requests",
        type=_positive_int,
        metavar="N",
        help=f"--interleaved: requests per client (default {DEFAULT_REQUESTS})",
    )
    ap.add_argument(
        "--startup-delay",
        type=_non_negative_float,
        metavar="S",
        help=f"--interleaved: the fake's start-up delay in s (default {DEFAULT_STARTUP_DELAY_S:g})",
    )
    ap.add_argument(
        "--in-flight",
        type=_positive_int,
        metavar="K",
        help="--interleaved: unanswered requests each client keeps open (default 1: each waits "
        "for its answer, so any scheduler needs at least N-1 swaps)",
    )
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--html", metavar="PATH.html", help="one self-contained HTML report")
    ap.add_argument("--pin", action=argparse.BooleanOptionalAction, default=st.can_pin())
    return ap


def main(argv: Sequence[str]) -> int:
    """``swapgate bench swap [--samples N | --interleaved [--requests N] [--startup-delay S]
    [--in-flight K]] [--json PATH]``."""
    ap = build_parser()
    ns = ap.parse_args(argv)
    pinned = ("pinned to cores", "yes" if ns.pin else "no")
    if not ns.interleaved:
        if (ns.requests, ns.startup_delay, ns.in_flight) != (None, None, None):
            ap.error("--requests, --startup-delay and --in-flight need --interleaved")
        info = RunInfo("swapgate bench swap", [("samples", str(ns.samples)), pinned])
        result = uvloop.run(measure(ns.samples, pin_cores=ns.pin))
        print(render(result))
        if ns.json:
            write_json(ns.json, asdict(result))
        if ns.html:
            print(htmlreport.write(ns.html, info, [results_table(result)]))
        return 0
    plan = InterleavedPlan(
        requests=DEFAULT_REQUESTS if ns.requests is None else ns.requests,
        startup_delay_s=DEFAULT_STARTUP_DELAY_S if ns.startup_delay is None else ns.startup_delay,
        in_flight=1 if ns.in_flight is None else ns.in_flight,
    )
    info = RunInfo("swapgate bench swap --interleaved", [*interleaved_params(plan), pinned])
    both = uvloop.run(measure_interleaved(plan, pin_cores=ns.pin))
    print(render_interleaved(both))
    if ns.json:
        write_json(ns.json, asdict(both))
    if ns.html:
        notes = [fake_description(plan.startup_delay_s), *interleaved_notes(both)]
        print(htmlreport.write(ns.html, info, [interleaved_table(both)], notes=notes))
    failed = both.baseline.errors + both.interleaved.errors
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
