"""Direct versus through-swapgate comparison: the workload, its rounds and its results.

The same closed-loop workload runs against the upstream directly and through swapgate in
alternated rounds; every figure is reported for both, and each overhead is the median of the
per-round overhead percentages (see :func:`bench.stats.median_of_ratios`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import aiohttp

from swapgate.bench import stack as st
from swapgate.bench.loadgen import RequestResult, RunResult, Summary, Workload, run_load
from swapgate.bench.report import Progress, Table, fmt, pct
from swapgate.bench.stats import Target, median, median_of_ratios, overhead_pct, round_order

BENCH_MODEL = "bench"
# (field of Summary, label, higher is better)
METRICS: tuple[tuple[str, str, bool], ...] = (
    ("ttft_p50_ms", "median TTFT (ms)", False),
    ("latency_p99_ms", "p99 latency (ms)", False),
    ("tokens_per_s", "tokens/s", True),
)
CONNECT_PROBES = 30
# Rough costs for the up-front estimates: swapgate and the fake upstream starting and loading,
# one warm-up, and the new-connection probes.
START_UP_S = 3.0
WARM_UP_S = 1.0
CONNECT_PROBE_S = 1.0


@dataclass(frozen=True, slots=True)
class Plan:
    """How much load to run: per round either ``requests`` or ``duration_s``."""

    concurrency: Sequence[int] = (1, 16, 64)
    rounds: int = 3
    duration_s: float | None = 4.0
    requests: int | None = None
    stream: bool = True
    max_tokens: int | None = None


@dataclass
class LevelResult:
    """The rounds of one concurrency level, pooled figures and the overheads."""

    concurrency: int
    rounds: list[dict[Target, Summary]] = field(default_factory=list)
    pooled: dict[Target, Summary] = field(default_factory=dict)
    overhead: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The level as plain JSON data."""
        return {
            "concurrency": self.concurrency,
            "direct": asdict(self.pooled[Target.DIRECT]),
            "via": asdict(self.pooled[Target.VIA]),
            "overhead_pct": self.overhead,
            "rounds": [{t.value: asdict(s) for t, s in r.items()} for r in self.rounds],
        }


def workloads(direct_url: str, via_url: str, model: str, plan: Plan) -> dict[Target, Workload]:
    """The same workload aimed at each target."""
    return {
        target: Workload(url, model, stream=plan.stream, max_tokens=plan.max_tokens)
        for target, url in ((Target.DIRECT, direct_url), (Target.VIA, via_url))
    }


async def run_level(
    targets: Mapping[Target, Workload],
    concurrency: int,
    plan: Plan,
    progress: Progress | None = None,
) -> LevelResult:
    """Run ``plan.rounds`` alternated pairs of runs at one concurrency level."""
    level = LevelResult(concurrency)
    merged = {t: RunResult() for t in targets}
    if progress is not None:
        progress.note(f"c={concurrency}: {_level_plan(plan)}")
    warm_s = 0.0
    for t, workload in targets.items():  # warm both paths' connection pools first
        warm = await run_load(workload, concurrency, requests=concurrency)
        warm_s = max(warm_s, warm.wall_s)
        if progress is not None:
            progress.step(0, f"c={concurrency} warm-up {t.value}")
    if progress is not None and plan.requests is not None:
        # A warm-up is one request per client: about one request's latency.
        rounds_s = 2 * plan.rounds * warm_s * plan.requests / concurrency
        progress.note(f"c={concurrency}: about {rounds_s:.0f} s more (from the warm-up)")
    level.rounds = [{} for _ in range(plan.rounds)]
    for index, target in round_order(plan.rounds):
        on_result = _progress_hook(progress, plan) if progress is not None else None
        run = await run_load(
            targets[target],
            concurrency,
            requests=plan.requests,
            duration_s=plan.duration_s,
            on_result=on_result,
        )
        level.rounds[index][target] = Summary.of(run)
        merged[target].results.extend(run.results)
        merged[target].wall_s += run.wall_s
        if progress is not None:
            counted = 1 if plan.requests is None else 0  # request runs count each request
            progress.step(counted, f"c={concurrency} round {index + 1} {target.value}")
    level.pooled = {t: Summary.of(r) for t, r in merged.items()}
    level.overhead = overheads(level.rounds)
    return level


def _level_plan(plan: Plan) -> str:
    """What one level runs, with its time when the rounds are timed."""
    if plan.requests is not None:
        return f"warm-up, then {plan.rounds} alternated rounds of {plan.requests} requests"
    duration = plan.duration_s or 0.0
    return (
        f"warm-up, then {plan.rounds} alternated rounds of {duration:g} s per target, "
        f"about {level_estimate_s(plan):.0f} s"
    )


def level_estimate_s(plan: Plan) -> float:
    """About how long one timed level takes: its rounds plus a second per warm-up."""
    return 2 * plan.rounds * (plan.duration_s or 0.0) + 2 * WARM_UP_S


def run_estimate_s(plan: Plan) -> float | None:
    """About how long a whole comparison takes (start-up included), or None when the rounds
    are counted in requests (their time depends on the latency, unknown before the warm-up)."""
    if plan.requests is not None:
        return None
    return START_UP_S + len(plan.concurrency) * (level_estimate_s(plan) + CONNECT_PROBE_S)


def _progress_hook(progress: Progress, plan: Plan) -> Callable[[RequestResult], None] | None:
    if plan.requests is None:
        return None  # duration runs advance the bar once per round instead

    def hook(_result: RequestResult) -> None:
        progress.step()

    return hook


def overheads(rounds: Sequence[Mapping[Target, Summary]]) -> dict[str, float]:
    """Each metric's median over rounds of the per-round overhead %."""
    out: dict[str, float] = {}
    for name, _label, higher in METRICS:
        pairs = [
            (float(getattr(r[Target.DIRECT], name)), float(getattr(r[Target.VIA], name)))
            for r in rounds
        ]
        out[name] = median_of_ratios(pairs, higher_is_better=higher)
    return out


async def connection_ms(base_url: str, probes: int = CONNECT_PROBES) -> float:
    """Median ms of a GET /v1/models on a brand-new TCP connection each time.

    It prices what a client pays to open a connection and get a trivial answer, which a pooled
    run never shows.
    """
    samples: list[float] = []
    for _ in range(probes):
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
            start = time.perf_counter()
            async with session.get(base_url.rstrip("/") + "/v1/models") as resp:
                await resp.read()
            samples.append((time.perf_counter() - start) * 1000)
    return median(samples)


async def start_default_target(
    stack: st.Stack,
    *,
    inject_delay_ms: float = 0.0,
    fake_args: Sequence[str] = (),
    progress: Progress | None = None,
) -> tuple[str, str]:
    """swapgate starting the fake upstream itself; returns (direct URL, via URL).

    The direct URL is the very upstream swapgate proxies to (read from GET /running), so both
    sides measure the same process.
    """
    if progress is not None:
        progress.note("starting swapgate and the fake upstream")
    args = list(fake_args) or st.realistic_fake_args()
    model = {
        "cmd": " ".join([*st.fake_cmd(BENCH_MODEL, "${PORT}"), *args]),
        "checkEndpoint": "/health",
    }  # everything else at the shipped defaults: what the README's figures describe
    env = {"SWAPGATE_TEST_INJECT_DELAY_MS": str(inject_delay_ms)} if inject_delay_ms else {}
    proc, via = stack.start_swapgate({BENCH_MODEL: model}, env=env)
    try:
        await st.wait_ready(via + "/health", proc)
        await run_load(Workload(via, BENCH_MODEL), 1, requests=1)  # loads the model
        direct, upstream_pid = await st.running_backend(via, BENCH_MODEL)
    except (RuntimeError, TimeoutError) as exc:
        msg = f"{exc}\n--- swapgate log ---\n{stack.log_tail(proc)}"
        raise RuntimeError(msg) from exc
    if stack.pin_cores:
        # swapgate's children inherit its core; the upstream belongs with the load generator.
        st.pin(upstream_pid, st.LOAD_CORE)
    return direct, via


def pin_self() -> None:
    """Move this process (the load generator) to the load core."""
    os.sched_setaffinity(0, {st.LOAD_CORE})


@dataclass
class Comparison:
    """A whole direct-versus-swapgate run."""

    direct_url: str
    via_url: str
    model: str
    plan: Plan
    levels: list[LevelResult]
    connect_ms: dict[Target, float]

    def to_json(self) -> dict[str, object]:
        """The run as plain JSON data (the ``--json`` file)."""
        d, v = self.connect_ms[Target.DIRECT], self.connect_ms[Target.VIA]
        return {
            "direct_url": self.direct_url,
            "via_url": self.via_url,
            "model": self.model,
            "plan": {**asdict(self.plan), "concurrency": list(self.plan.concurrency)},
            "levels": [lv.to_json() for lv in self.levels],
            "connection": {"direct_ms": d, "via_ms": v, "overhead_pct": overhead_pct(d, v)},
        }

    def render(self) -> str:
        """The run as a text table."""
        return self.results_table().text()

    def results_table(self) -> Table:
        """Every level's figures on both targets, with the overheads."""
        rows: list[list[str]] = []
        for level in self.levels:
            d, v = level.pooled[Target.DIRECT], level.pooled[Target.VIA]
            tag = f"c={level.concurrency:<3}"
            for name, label, _higher in METRICS:
                cells = [fmt(float(getattr(d, name))), fmt(float(getattr(v, name)))]
                rows.append([f"{tag} {label}", *cells, pct(level.overhead[name])])
            rows.append(
                [
                    f"{tag} requests (errors)",
                    f"{d.requests} ({d.errors})",
                    f"{v.requests} ({v.errors})",
                    "",
                ]
            )
        cd, cv = self.connect_ms[Target.DIRECT], self.connect_ms[Target.VIA]
        label = "new connection + GET /v1/models (ms)"
        rows.append([label, fmt(cd, 2), fmt(cv, 2), pct(overhead_pct(cd, cv))])
        headers = ["metric", "direct", "via swapgate", "overhead"]
        return Table(headers, rows, "direct against through swapgate, per concurrency level")


async def run_comparison(
    direct_url: str, via_url: str, model: str, plan: Plan, progress: Progress | None
) -> Comparison:
    """Every level of ``plan``, then the new-connection probe on both targets."""
    targets = workloads(direct_url, via_url, model, plan)
    levels = [await run_level(targets, c, plan, progress) for c in plan.concurrency]
    if progress is not None:
        progress.note(f"new-connection probes: {CONNECT_PROBES} per target")
    connect = {t: await connection_ms(w.base_url) for t, w in targets.items()}
    return Comparison(direct_url, via_url, model, plan, levels, connect)
