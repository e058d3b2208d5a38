"""``swapgate bench swap``: how much time swapgate adds to a model switch.

Through swapgate: with model A loaded, a request for B is sent and timed to B's first token
(swapgate stops A, starts B, waits for B's health check, forwards). Directly: the same fake
server is spawned by hand and ``/health`` polled every 5 ms until it answers, then one request
is timed to its first token. The difference of the medians is swapgate's added swap time.

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
import asyncio
import math
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import uvloop

from swapgate.bench import stack as st
from swapgate.bench.loadgen import Workload, new_session, one_request
from swapgate.bench.report import Progress, fmt, table, write_json
from swapgate.bench.stats import median, percentile

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


# --- interleaved two-client workload -----------------------------------------------------------

MODELS = ("a", "b")
CLIENTS = 2
DEFAULT_REQUESTS = 10
DEFAULT_STARTUP_DELAY_S = 0.3
# A short answer: first token after 20 ms, then 4 tokens 10 ms apart (about 50 ms in all).
GEN_TTFT_S = 0.02
GEN_TOKENS = 4
GEN_INTERVAL_S = 0.01
# Rough costs for the up-front estimate: a swapgate start and a fake's spawn-to-listening time
# (Python start-up and imports) on a small machine.
_SWAPGATE_START_S = 1.0
_FAKE_SPAWN_S = 0.25
_PORT = "${PORT}"  # swapgate's macro, left unquoted so it is substituted
# Appends "<model> <pid>" to the log, then becomes the fake: exec keeps the PID swapgate knows.
_WRAPPER = """printf '%s %s\\n' "$1" "$$" >> {log}
shift
exec "$@"
"""


def gen_seconds() -> float:
    """How long the fake takes to answer once it is running."""
    return GEN_TTFT_S + (GEN_TOKENS - 1) * GEN_INTERVAL_S


def fake_description(startup_delay_s: float) -> str:
    """The fake upstream's behaviour in words, for the report."""
    return (
        f"fake upstream: {startup_delay_s:g} s start-up delay (/health 503 until then), "
        f"first token after {GEN_TTFT_S * 1000:g} ms, {GEN_TOKENS} tokens "
        f"{GEN_INTERVAL_S * 1000:g} ms apart"
    )


def client_models(client: int, requests: int, models: Sequence[str]) -> list[str]:
    """The models client ``client`` (0-based) asks for, in order: alternating, and each client
    starting one model further along (client 0: A B A B ..., client 1: B A B A ...).
    With a single model, every request asks for it."""
    return [models[(client + index) % len(models)] for index in range(requests)]


def estimate_s(requests: int, startup_delay_s: float) -> float:
    """Rough run time: both workloads, with every interleaved request paying a swap."""
    gen = gen_seconds()
    baseline = requests * gen  # the two clients share one running upstream
    interleaved = CLIENTS * requests * (_FAKE_SPAWN_S + startup_delay_s + gen)
    warm_ups = 2 * (_SWAPGATE_START_S + _FAKE_SPAWN_S + startup_delay_s)
    return baseline + interleaved + warm_ups


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request of a workload: ``client`` and ``index`` count from 1; ``done_s`` is when its
    answer ended, in seconds from the workload's start."""

    client: int
    index: int
    model: str
    ttft_ms: float
    latency_ms: float
    done_s: float
    error: str = ""


@dataclass(frozen=True, slots=True)
class WorkloadResult:
    """One workload through swapgate; times in ms unless named ``_s``."""

    name: str
    models: list[str]
    requests: int
    completed: int
    errors: int
    swaps: int
    start_sequence: list[str]
    wall_s: float
    ttft_p50_ms: float
    ttft_p95_ms: float
    records: list[RequestRecord]


@dataclass(frozen=True, slots=True)
class InterleavedResult:
    """The baseline and the interleaved workload, and interleaved / baseline ratios."""

    clients: int
    requests_per_client: int
    in_flight_per_client: int
    startup_delay_s: float
    gen_ttft_s: float
    gen_tokens: int
    gen_token_interval_s: float
    swap_count: str
    estimate_s: float
    baseline: WorkloadResult
    interleaved: WorkloadResult
    ratio: dict[str, float]


class Steps:
    """Progress: a bar on a terminal, else one line per step on stdout (for CI logs)."""

    def __init__(self, total: int) -> None:
        self.lines = not sys.stdout.isatty()
        self.progress = Progress(total, "starting", enabled=not self.lines and sys.stderr.isatty())

    def note(self, text: str) -> None:
        """A step that is not a request (starting swapgate, warming up)."""
        if self.lines:
            print(text, flush=True)
        else:
            self.progress.step(0, text)

    def request(self, workload: str, record: RequestRecord) -> None:
        """One request answered (or failed)."""
        self.progress.step(1, f"{workload}: {self.progress.done + 1}/{self.progress.total}")
        if self.lines:
            outcome = f"error {record.error}" if record.error else f"TTFT {record.ttft_ms:.1f} ms"
            print(
                f"[{self.progress.done}/{self.progress.total}] {workload}: client "
                f"{record.client} request {record.index} model {record.model}: {outcome}",
                flush=True,
            )

    def finish(self) -> None:
        """End the bar's line."""
        self.progress.finish()


def _swap_group(
    stack: st.Stack, starts_log: Path, startup_delay_s: float
) -> dict[str, dict[str, str]]:
    """Models A and B, plain (no ``groups``): swapgate runs one at a time, like llama-swap."""
    wrapper = stack.tmpdir / "count-starts.sh"
    wrapper.write_text(_WRAPPER.format(log=shlex.quote(str(starts_log))))
    extra = (
        "--startup-delay",
        str(startup_delay_s),
        *st.realistic_fake_args(GEN_TTFT_S, GEN_TOKENS, GEN_INTERVAL_S),
    )
    return {
        name: {
            "cmd": " ".join(
                arg if arg == _PORT else shlex.quote(arg)
                for arg in ["/bin/sh", str(wrapper), name, *st.fake_cmd(name, _PORT, *extra)]
            ),
            "checkEndpoint": "/health",
        }
        for name in MODELS
    }


def _starts(starts_log: Path) -> list[str]:
    """The model of every fake started so far, in order."""
    if not starts_log.exists():
        return []
    return [line.split()[0] for line in starts_log.read_text().splitlines() if line.strip()]


async def _client(
    via: str,
    client: int,
    models: Sequence[str],
    in_flight: int,
    start: float,
    on_record: Callable[[RequestRecord], None],
) -> None:
    """Send ``models`` in order, at most ``in_flight`` unanswered at a time."""
    slots = asyncio.Semaphore(in_flight)

    async def send(session: aiohttp.ClientSession, index: int, model: str) -> None:
        try:
            workload = Workload(via, model)
            result = await one_request(session, workload, workload.body(workload.prompts[0]))
            on_record(
                RequestRecord(
                    client=client + 1,
                    index=index + 1,
                    model=model,
                    ttft_ms=result.ttft_s * 1000,
                    latency_ms=result.latency_s * 1000,
                    done_s=time.perf_counter() - start,
                    error=result.error,
                )
            )
        finally:
            slots.release()

    async with new_session(in_flight) as session, asyncio.TaskGroup() as tasks:
        for index, model in enumerate(models):
            await slots.acquire()
            tasks.create_task(send(session, index, model))


@dataclass(frozen=True, slots=True)
class InterleavedPlan:
    """What the interleaved benchmark runs: per client ``requests``, ``in_flight`` at a time."""

    requests: int = DEFAULT_REQUESTS
    startup_delay_s: float = DEFAULT_STARTUP_DELAY_S
    in_flight: int = 1


async def run_workload(
    name: str, models: Sequence[str], plan: InterleavedPlan, steps: Steps, *, pin_cores: bool
) -> WorkloadResult:
    """The clients at once through a fresh swapgate, with ``models[0]`` warm at the start."""
    records: list[RequestRecord] = []

    def on_record(record: RequestRecord) -> None:
        records.append(record)
        steps.request(name, record)

    with st.Stack(pin_cores=pin_cores) as stack:
        starts_log = stack.tmpdir / "starts.log"
        steps.note(f"{name}: starting swapgate")
        proc, via = stack.start_swapgate(_swap_group(stack, starts_log, plan.startup_delay_s))
        try:
            await st.wait_ready(via + "/health", proc)
        except (RuntimeError, TimeoutError) as exc:
            msg = f"{exc}; swapgate's log ends:\n{stack.log_tail(proc)}"
            raise RuntimeError(msg) from exc
        steps.note(f"{name}: warming up model {models[0]}")
        await _first_token_ms(via, models[0])
        warm = len(_starts(starts_log))
        start = time.perf_counter()
        await asyncio.gather(
            *(
                _client(
                    via,
                    c,
                    client_models(c, plan.requests, models),
                    plan.in_flight,
                    start,
                    on_record,
                )
                for c in range(CLIENTS)
            )
        )
        wall = time.perf_counter() - start
        started = _starts(starts_log)[warm:]
    ttfts = [r.ttft_ms for r in records if not r.error]
    records.sort(key=lambda r: r.done_s)
    return WorkloadResult(
        name=name,
        models=list(models),
        requests=CLIENTS * plan.requests,
        completed=len(ttfts),
        errors=len(records) - len(ttfts),
        swaps=len(started),
        start_sequence=started,
        wall_s=wall,
        ttft_p50_ms=median(ttfts),
        ttft_p95_ms=percentile(ttfts, 95),
        records=records,
    )


def _ratio(interleaved: float, baseline: float) -> float:
    return interleaved / baseline if baseline else math.nan


async def measure_interleaved(plan: InterleavedPlan, *, pin_cores: bool) -> InterleavedResult:
    """The baseline (both clients on A), then the interleaved workload (A and B alternated)."""
    estimate = estimate_s(plan.requests, plan.startup_delay_s)
    print(fake_description(plan.startup_delay_s), flush=True)
    print(
        f"{CLIENTS} clients x {plan.requests} requests per workload, {plan.in_flight} in flight "
        f"per client; estimated run time up to ~{estimate:.0f} s "
        "(every interleaved request paying a swap)",
        flush=True,
    )
    steps = Steps(2 * CLIENTS * plan.requests)
    try:
        baseline = await run_workload("baseline", MODELS[:1], plan, steps, pin_cores=pin_cores)
        interleaved = await run_workload("interleaved", MODELS, plan, steps, pin_cores=pin_cores)
    finally:
        steps.finish()
    return InterleavedResult(
        clients=CLIENTS,
        requests_per_client=plan.requests,
        in_flight_per_client=plan.in_flight,
        startup_delay_s=plan.startup_delay_s,
        gen_ttft_s=GEN_TTFT_S,
        gen_tokens=GEN_TOKENS,
        gen_token_interval_s=GEN_INTERVAL_S,
        swap_count="fake upstream process starts after a warm-up request for a "
        "(a start-log wrapper around each fake)",
        estimate_s=estimate,
        baseline=baseline,
        interleaved=interleaved,
        ratio={
            key: _ratio(getattr(interleaved, key), getattr(baseline, key))
            for key in ("wall_s", "ttft_p50_ms", "ttft_p95_ms")
        },
    )


def render_interleaved(result: InterleavedResult) -> str:
    """Both workloads and their ratio as a text table."""
    b, i = result.baseline, result.interleaved
    rows = [
        ["requests answered", f"{b.completed}/{b.requests}", f"{i.completed}/{i.requests}", "-"],
        ["swaps (upstream starts)", fmt(b.swaps), fmt(i.swaps), "-"],
        ["wall time (s)", fmt(b.wall_s, 2), fmt(i.wall_s, 2), fmt(result.ratio["wall_s"], 2)],
        [
            "TTFT median (ms)",
            fmt(b.ttft_p50_ms),
            fmt(i.ttft_p50_ms),
            fmt(result.ratio["ttft_p50_ms"], 2),
        ],
        [
            "TTFT p95 (ms)",
            fmt(b.ttft_p95_ms),
            fmt(i.ttft_p95_ms),
            fmt(result.ratio["ttft_p95_ms"], 2),
        ],
    ]
    head = (
        f"{result.clients} clients x {result.requests_per_client} requests, "
        f"{result.in_flight_per_client} in flight"
    )
    order = " ".join(i.start_sequence) or "-"
    return "\n".join(
        [
            table([head, "baseline (a only)", "interleaved (a/b)", "ratio"], rows),
            f"upstream starts during the interleaved workload: {order}",
            f"swaps = {result.swap_count}",
        ]
    )


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
    ap.add_argument("--pin", action=argparse.BooleanOptionalAction, default=st.can_pin())
    return ap


def main(argv: Sequence[str]) -> int:
    """``swapgate bench swap [--samples N | --interleaved [--requests N] [--startup-delay S]
    [--in-flight K]] [--json PATH]``."""
    ap = build_parser()
    ns = ap.parse_args(argv)
    if not ns.interleaved:
        if (ns.requests, ns.startup_delay, ns.in_flight) != (None, None, None):
            ap.error("--requests, --startup-delay and --in-flight need --interleaved")
        result = uvloop.run(measure(ns.samples, pin_cores=ns.pin))
        print(render(result))
        if ns.json:
            write_json(ns.json, asdict(result))
        return 0
    plan = InterleavedPlan(
        requests=DEFAULT_REQUESTS if ns.requests is None else ns.requests,
        startup_delay_s=DEFAULT_STARTUP_DELAY_S if ns.startup_delay is None else ns.startup_delay,
        in_flight=1 if ns.in_flight is None else ns.in_flight,
    )
    both = uvloop.run(measure_interleaved(plan, pin_cores=ns.pin))
    print(render_interleaved(both))
    if ns.json:
        write_json(ns.json, asdict(both))
    failed = both.baseline.errors + both.interleaved.errors
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
