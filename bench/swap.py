"""``python -m bench swap``: how much time swapgate adds to a model switch.

Through swapgate: with model A loaded, a request for B is sent and timed to B's first token
(swapgate stops A, starts B, waits for B's health check, forwards). Directly: the same fake
server is spawned by hand and ``/health`` polled every 5 ms until it answers, then one request
is timed to its first token. The difference of the medians is swapgate's added swap time.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import uvloop

from bench import stack as st
from bench.loadgen import Workload, new_session, one_request
from bench.report import fmt, table, write_json
from bench.stats import median

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


async def _first_token_ms(base_url: str, model: str) -> float:
    workload = Workload(base_url, model)
    async with new_session(1) as session:
        result = await one_request(session, workload, workload.body(workload.prompts[0]))
    if result.error:
        msg = f"request for {model} at {base_url} failed: {result.error}"
        raise RuntimeError(msg)
    return result.ttft_s * 1000


async def direct_start(stack: st.Stack, core: int | None) -> tuple[float, float]:
    """(spawn-to-healthy ms, first-token ms) of one fake started by hand."""
    port = st.free_port()
    start = time.perf_counter()
    proc = stack.spawn(st.fake_cmd("direct", str(port), *FAKE_ARGS), core=core)
    url = f"http://{st.LOCALHOST}:{port}"
    await st.wait_ready(url + "/health", proc, interval_s=HEALTH_POLL_S)
    healthy_ms = (time.perf_counter() - start) * 1000
    first_ms = await _first_token_ms(url, "direct")
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
        await _first_token_ms(via, "a")  # A is running before the first switch
        for index in range(samples):
            h, f = await direct_start(stack, core)
            healthy.append(h)
            first.append(f)
            switches.append(await _first_token_ms(via, "b" if index % 2 == 0 else "a"))
    direct_total = median(healthy) + median(first)
    return SwapResult(
        samples=samples,
        direct_spawn_to_healthy_ms=median(healthy),
        direct_first_token_ms=median(first),
        via_switch_to_first_token_ms=median(switches),
        added_ms=median(switches) - direct_total,
    )


def render(result: SwapResult) -> str:
    """The swap measurement as a text table."""
    verdict = "within" if result.added_ms <= result.target_ms else "OVER"
    rows = [
        ["direct: spawn -> /health 200 (5 ms polls)", fmt(result.direct_spawn_to_healthy_ms)],
        ["direct: warm request -> first token", fmt(result.direct_first_token_ms)],
        [
            "via swapgate: request for B while A runs -> first token",
            fmt(result.via_switch_to_first_token_ms),
        ],
        [f"added by swapgate ({verdict} the {result.target_ms:g} ms target)", fmt(result.added_ms)],
    ]
    return table([f"swap latency, median of {result.samples}", "ms"], rows)


def main(argv: Sequence[str]) -> int:
    """``python -m bench swap [--samples N] [--json PATH]``."""
    ap = argparse.ArgumentParser(prog="python -m bench swap", description=__doc__)
    ap.add_argument("--samples", type=int, default=10, help="switches (and direct starts)")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--pin", action=argparse.BooleanOptionalAction, default=st.can_pin())
    ns = ap.parse_args(argv)
    result = uvloop.run(measure(ns.samples, pin_cores=ns.pin))
    print(render(result))
    if ns.json:
        write_json(ns.json, asdict(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
