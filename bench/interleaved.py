"""``swapgate bench swap --interleaved``: what collating queued requests by model saves.

Two fake models A and B share one swap group (only one runs at a time). Two clients run at
once, each sending streamed requests one after the other, alternating models (client 1:
A B A B ..., client 2: B A B A ...). The baseline is the same two clients asking only for A.
Swaps are counted as upstream process starts, through a tiny ``sh`` wrapper that appends
its model and PID to a log before it ``exec``s the fake (see bench/swap.py for the rest).
"""

from __future__ import annotations

import asyncio
import math
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from swapgate.bench import stack as st
from swapgate.bench.loadgen import Workload, new_session, one_request
from swapgate.bench.report import Progress, Table, fmt
from swapgate.bench.stats import median, percentile


async def first_token_ms(base_url: str, model: str) -> float:
    """Time to the first token of one streamed request for `model` at `base_url`."""
    workload = Workload(base_url, model)
    async with new_session(1) as session:
        result = await one_request(session, workload, workload.body(workload.prompts[0]))
    if result.error:
        msg = f"request for {model} at {base_url} failed: {result.error}"
        raise RuntimeError(msg)
    return result.ttft_s * 1000


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
        await first_token_ms(via, models[0])
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
    """Both workloads and their ratio as a text table, then the start order."""
    return "\n".join([interleaved_table(result).text(), *interleaved_notes(result)])


def interleaved_notes(result: InterleavedResult) -> list[str]:
    """The lines under the table: the upstream start order and the swap count."""
    order = " ".join(result.interleaved.start_sequence) or "-"
    return [
        f"upstream starts during the interleaved workload: {order}",
        f"swaps = {result.swap_count}",
    ]


def interleaved_table(result: InterleavedResult) -> Table:
    """Both workloads side by side, with the interleaved/baseline ratio."""
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
    headers = [head, "baseline (a only)", "interleaved (a/b)", "ratio"]
    return Table(headers, rows, "baseline against interleaved models")
