"""The load generator: an aiohttp client that sends chat completions and times each one.

Per request it records the time to first token (the first SSE chunk that carries content, not
the role-only opening chunk), the total latency and the number of tokens (``usage`` when the
server sends it, else the count of content chunks). It owns its own connection pool, so a run
never shares connections with the harness's control requests.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import aiohttp
import orjson

from swapgate.bench.stats import median, percentile

Message = dict[str, str]
DEFAULT_MESSAGES: list[Message] = [{"role": "user", "content": "Say something."}]
_DATA = b"data: "
_DONE = b"[DONE]"
_EMPTY_CONTENT = b'"content":""'
_CONTENT = b'"content":'
_USAGE = b'"usage"'


@dataclass(frozen=True, slots=True)
class Workload:
    """What every request of a run asks for."""

    base_url: str
    model: str
    stream: bool = True
    max_tokens: int | None = None
    prompts: Sequence[Sequence[Message]] = (DEFAULT_MESSAGES,)

    def body(self, messages: Sequence[Message]) -> bytes:
        """The JSON request body for one prompt."""
        payload: dict[str, object] = {"model": self.model, "messages": list(messages)}
        if self.stream:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
        if self.max_tokens is not None:
            payload["max_tokens"] = self.max_tokens
        return orjson.dumps(payload)


@dataclass(frozen=True, slots=True)
class RequestResult:
    """One request's timings in seconds; ``error`` is empty when it succeeded."""

    ttft_s: float
    latency_s: float
    tokens: int
    error: str = ""


@dataclass(slots=True)
class RunResult:
    """Every request of one run, and the run's wall time."""

    results: list[RequestResult] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def ok(self) -> list[RequestResult]:
        """The requests that succeeded."""
        return [r for r in self.results if not r.error]

    @property
    def errors(self) -> int:
        """How many requests failed."""
        return sum(1 for r in self.results if r.error)


@dataclass(frozen=True, slots=True)
class Summary:
    """The figures a report shows for one run (times in milliseconds)."""

    requests: int
    errors: int
    ttft_p50_ms: float
    ttft_p95_ms: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    tokens_per_s: float
    requests_per_s: float

    @classmethod
    def of(cls, run: RunResult) -> Summary:
        """Summarise ``run``; a run with no successful request gives NaN figures."""
        ok = run.ok
        ttfts = [r.ttft_s * 1000 for r in ok]
        latencies = [r.latency_s * 1000 for r in ok]
        wall = run.wall_s or float("nan")
        return cls(
            requests=len(run.results),
            errors=run.errors,
            ttft_p50_ms=median(ttfts),
            ttft_p95_ms=percentile(ttfts, 95),
            latency_p50_ms=median(latencies),
            latency_p95_ms=percentile(latencies, 95),
            latency_p99_ms=percentile(latencies, 99),
            tokens_per_s=sum(r.tokens for r in ok) / wall,
            requests_per_s=len(ok) / wall,
        )


def new_session(concurrency: int, timeout_s: float = 120.0) -> aiohttp.ClientSession:
    """A client session whose pool holds exactly one connection per concurrent worker."""
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        trust_env=False,  # never route 127.0.0.1 through an HTTP proxy from the environment
    )


async def one_request(
    session: aiohttp.ClientSession, workload: Workload, body: bytes
) -> RequestResult:
    """Send one chat completion and time it; failures become a result with ``error`` set."""
    url = workload.base_url.rstrip("/") + "/v1/chat/completions"
    start = time.perf_counter()
    try:
        async with session.post(
            url, data=body, headers={"Content-Type": "application/json"}
        ) as resp:
            if resp.status != 200:  # HTTP OK
                await resp.read()
                return RequestResult(0.0, time.perf_counter() - start, 0, f"HTTP {resp.status}")
            if workload.stream:
                return await _read_stream(resp, start)
            data = orjson.loads(await resp.read())
            latency = time.perf_counter() - start
            return RequestResult(latency, latency, max(0, _usage_tokens(data)))
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
        return RequestResult(0.0, time.perf_counter() - start, 0, type(exc).__name__)


async def _read_stream(resp: aiohttp.ClientResponse, start: float) -> RequestResult:
    ttft = 0.0
    chunks = 0
    usage_tokens = -1
    async for line in resp.content:
        if not line.startswith(_DATA):
            continue
        payload = line[len(_DATA) :].strip()
        if payload == _DONE:
            break
        # Byte tests, not a JSON parse per chunk: at 64 streams the client shares a core with
        # the upstream, and parsing every chunk would make the client the bottleneck.
        if _CONTENT in payload and _EMPTY_CONTENT not in payload:
            chunks += 1
            if not ttft:
                ttft = time.perf_counter() - start
        elif _USAGE in payload:
            usage_tokens = _usage_tokens(orjson.loads(payload))
    latency = time.perf_counter() - start
    tokens = usage_tokens if usage_tokens >= 0 else chunks
    if not ttft:
        return RequestResult(0.0, latency, tokens, "no content chunk")
    return RequestResult(ttft, latency, tokens)


def _usage_tokens(data: object) -> int:
    """``usage.completion_tokens`` of a response or chunk, or -1 when it has none."""
    usage = data.get("usage") if isinstance(data, dict) else None
    value = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return value if isinstance(value, int) else -1


async def run_load(
    workload: Workload,
    concurrency: int,
    *,
    requests: int | None = None,
    duration_s: float | None = None,
    on_result: Callable[[RequestResult], None] | None = None,
) -> RunResult:
    """Run ``concurrency`` closed-loop workers until ``requests`` are sent or ``duration_s``
    has passed (a request in flight at the deadline still completes and counts)."""
    if (requests is None) == (duration_s is None):
        msg = "give exactly one of requests or duration_s"
        raise ValueError(msg)
    bodies = _bodies(workload)
    run = RunResult()
    remaining = [requests if requests is not None else -1]
    start = time.perf_counter()
    deadline = start + duration_s if duration_s is not None else float("inf")

    def take() -> bool:
        # Single-threaded event loop: this check-and-decrement runs without an await, so
        # workers can never overshoot the request budget.
        if remaining[0] == 0 or time.perf_counter() >= deadline:
            return False
        remaining[0] -= 1
        return True

    async def worker(session: aiohttp.ClientSession) -> None:
        while take():
            result = await one_request(session, workload, next(bodies))
            run.results.append(result)
            if on_result is not None:
                on_result(result)

    async with new_session(concurrency) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    run.wall_s = time.perf_counter() - start
    return run


def _bodies(workload: Workload) -> Iterator[bytes]:
    return itertools.cycle([workload.body(p) for p in workload.prompts])
