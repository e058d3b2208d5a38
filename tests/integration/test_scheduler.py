"""The scheduler through a real swapgate and fake upstreams: queueing, collation, fairness,
priorities, timeouts, limits, the fit policy, and the resources a long run must not leak."""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.gateway import Swapgate, fake_cmd, start_swapgate
from tests.support.procs import iter_sse, pids_alive, start_fake_upstream, wait_until

pytestmark = pytest.mark.integration

Reply = tuple[int, dict[str, str], Any]
_TRANSITION = re.compile(r"model (\S+): (\w+) -> (\w+) \(")
_NOT_RUNNING = ("stopped", "failed")


# ---- config and observation helpers ------------------------------------------------------


def plain_models(*names: str, **flags: object) -> str:
    """A `models:` section: one fake upstream per name, each answering with its own name."""
    lines = ["models:"]
    for name in names:
        lines += [f"  {name}:", f"    cmd: {fake_cmd(name, say=name, **flags)}"]
    return "\n".join(lines) + "\n"


# Two groups that never stop each other: alpha's start or stop cannot involve bravo.
SEPARATE_GROUPS = """
groups:
  slow: {swap: true, exclusive: false, members: [alpha]}
  fast: {swap: true, exclusive: false, members: [bravo]}
"""


def transitions(gate: Swapgate) -> list[tuple[str, str, str]]:
    """(model, old, new) for every state change swapgate logged, in order."""
    return [(m[1], m[2], m[3]) for m in _TRANSITION.finditer(gate.output())]


def starts(gate: Swapgate, model: str | None = None) -> list[str]:
    """The models swapgate moved to starting, in order (only `model`'s when given)."""
    return [m for m, _, new in transitions(gate) if new == "starting" and model in (None, m)]


def error_code(reply: Reply) -> str:
    body = reply[2]
    assert isinstance(body, dict), reply
    code: str = body["error"]["code"]
    return code


def content(reply: Reply) -> str:
    text: str = reply[2]["choices"][0]["message"]["content"]
    return text


def stays(predicate: Callable[[], bool], seconds: float, *, message: str) -> None:
    """Assert `predicate` holds all through the next `seconds` (checks that a thing does NOT
    happen within a bound: the only place a test here waits a fixed time)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), message
        time.sleep(0.05)
    assert predicate(), message


def chat_body(model: str, **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


def stream(gate: Swapgate, model: str, timeout: float = 30.0) -> tuple[int, bool]:
    """Stream one chat answer to its end: (events received, whether it ended cleanly)."""
    events = 0
    try:
        for _ in iter_sse(
            gate.url + "/v1/chat/completions", chat_body(model, stream=True), timeout=timeout
        ):
            events += 1
    except (http.client.HTTPException, OSError):
        return events, False
    return events, True


def in_flight(gate: Swapgate, model: str, count: int = 1) -> bool:
    record = gate.running().get(model)
    return record is not None and record["inFlight"] >= count


def queued(gate: Swapgate, model: str, count: int = 1) -> bool:
    record = gate.running().get(model)
    return record is not None and record["queued"] >= count


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    msg = f"no VmRSS for pid {pid}"
    raise AssertionError(msg)


@pytest.fixture
def pool() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    """Threads for requests that must run alongside the test's own. Open it before the gate
    (the fixture is set up first), so the gate is killed first and blocked threads return."""
    with concurrent.futures.ThreadPoolExecutor(32) as executor:
        yield executor


# ---- 1. memory across failed starts -------------------------------------------------------


def test_rss_stays_flat_across_300_failed_starts() -> None:
    """300 requests (100 KB bodies) to a model that cannot start leak no memory in swapgate."""
    config = f"""
models:
  alpha:
    cmd: {fake_cmd("alpha", exit_on_start=1)}
"""
    pad = "x" * 100_000
    with start_swapgate(config) as gate:

        def one() -> None:
            reply = gate.chat("alpha", pad=pad)
            assert reply[0] == 503, reply
            assert error_code(reply) in ("backend_start_failed", "backend_failed"), reply

        for _ in range(20):
            one()
        first = rss_kib(gate.proc.pid)
        for _ in range(280):
            one()
        growth_mib = (rss_kib(gate.proc.pid) - first) / 1024
        assert growth_mib < 15, f"swapgate RSS grew {growth_mib:.1f} MiB over 280 requests"
        assert gate.descendants() == []


# ---- 2. a cmd that cannot be run ---------------------------------------------------------


def test_a_nul_byte_in_cmd_fails_that_model_only() -> None:
    """A NUL in cmd gives a quick 503 backend_start_failed naming the cmd; others still work."""
    config = f"""
groups:
  broken: {{swap: true, exclusive: false, members: [alpha]}}
  fine: {{swap: true, exclusive: false, members: [bravo]}}
models:
  alpha:
    cmd: "{sys.executable}\\0 -m swapgate.bench.fake_upstream --port ${{PORT}}"
  bravo:
    cmd: {fake_cmd("bravo", say="bravo")}
"""
    with start_swapgate(config) as gate:
        started = time.monotonic()
        reply = gate.chat("alpha")
        assert time.monotonic() - started < 5
        assert reply[0] == 503, reply
        assert error_code(reply) == "backend_start_failed"
        message = reply[2]["error"]["message"]
        assert "embedded null byte" in message
        assert "models.alpha.cmd" in message
        assert gate.get("/health")[0] == 200
        reply = gate.chat("bravo")
        assert reply[0] == 200, reply
        assert "bravo" in content(reply)
        assert gate.get("/health")[0] == 200


# ---- 3. and 4. independent models do not wait for each other ------------------------------


def test_a_cold_start_does_not_delay_an_unrelated_model(
    pool: concurrent.futures.ThreadPoolExecutor,
) -> None:
    """bravo (its own group) answers while alpha still spends its 3 s starting."""
    config = (
        SEPARATE_GROUPS
        + f"""
models:
  alpha:
    cmd: {fake_cmd("alpha", say="alpha", startup_delay=3)}
  bravo:
    cmd: {fake_cmd("bravo", say="bravo")}
"""
    )
    with start_swapgate(config) as gate:
        slow = pool.submit(gate.chat, "alpha")
        wait_until(lambda: gate.running().get("alpha", {}).get("state") == "starting")
        started = time.monotonic()
        reply = gate.chat("bravo")
        elapsed = time.monotonic() - started
        assert reply[0] == 200, reply
        # Its own cold start, on a loaded 2-core machine; waiting behind alpha would be > 3 s.
        assert elapsed < 2.5, f"bravo took {elapsed:.2f}s"
        assert gate.running()["alpha"]["state"] == "starting"
        assert not slow.done()
        reply = slow.result(timeout=10)
        assert reply[0] == 200, reply
        assert "alpha" in content(reply)


def test_unloading_an_idle_model_is_quick_while_another_drains(
    pool: concurrent.futures.ThreadPoolExecutor,
) -> None:
    """unload/bravo (idle) returns in < 1 s while unload/alpha waits for alpha's stream."""
    config = (
        "shutdownTimeout: 5\n"
        + SEPARATE_GROUPS
        + f"""
models:
  alpha:
    cmd: {fake_cmd("alpha", tokens=200, token_interval=0.05)}
  bravo:
    cmd: {fake_cmd("bravo")}
"""
    )
    with start_swapgate(config) as gate:
        assert gate.chat("bravo")[0] == 200
        long = pool.submit(stream, gate, "alpha")
        wait_until(lambda: in_flight(gate, "alpha"), message="alpha streaming")
        unload_alpha = pool.submit(gate.post, "/api/models/unload/alpha", timeout=15.0)
        wait_until(lambda: gate.running()["alpha"]["state"] == "stopping")
        started = time.monotonic()
        status, _, _ = gate.post("/api/models/unload/bravo")
        elapsed = time.monotonic() - started
        assert status == 200
        assert elapsed < 1.0, f"unload/bravo took {elapsed:.2f}s"
        assert "bravo" not in gate.running()
        assert gate.running()["alpha"]["state"] == "stopping"  # still draining
        assert not unload_alpha.done()
        assert not long.done()


# ---- 5. a client that gives up ------------------------------------------------------------


def test_an_abandoned_waiters_swap_is_not_performed(
    pool: concurrent.futures.ThreadPoolExecutor,
) -> None:
    """A request for bravo that hangs up while alpha is busy never stops alpha nor starts bravo."""
    config = plain_models("alpha", "bravo", tokens=30, token_interval=0.05)
    with start_swapgate(config) as gate:
        long = pool.submit(stream, gate, "alpha")
        wait_until(lambda: in_flight(gate, "alpha"), message="alpha streaming")
        pid = gate.running()["alpha"]["pid"]
        with pytest.raises(TimeoutError):  # the client times out and closes its socket
            gate.post("/v1/chat/completions", chat_body("bravo"), timeout=0.5)
        events, clean = long.result(timeout=10)
        assert clean
        assert events > 0

        def untouched() -> bool:
            running = gate.running()
            return (
                "bravo" not in running
                and running.get("alpha", {}).get("pid") == pid
                and running["alpha"]["state"] == "ready"
                and "bravo: stopped -> starting" not in gate.output()
            )

        stays(untouched, 2.0, message="bravo was started for a client that left")
        assert pids_alive([pid]) == [pid]


# ---- 6. sticky ports ----------------------------------------------------------------------


def test_a_model_keeps_its_port_across_20_restarts() -> None:
    """20 times load and unload: the model's ${PORT} is the same every time."""
    config = plain_models("alpha")
    with start_swapgate(config) as gate:
        ports = []
        for _ in range(20):
            assert gate.chat("alpha")[0] == 200
            ports.append(gate.running()["alpha"]["port"])
            assert gate.post("/api/models/unload/alpha")[0] == 200
        assert len(set(ports)) == 1, ports
        assert starts(gate, "alpha") == ["alpha"] * 20


# ---- 7. a foreign listener -----------------------------------------------------------------


def test_a_foreign_listener_on_the_models_port_is_refused() -> None:
    """A server that already holds the model's port answers /health: the start fails, saying so,
    and the model's own child is stopped."""
    with start_fake_upstream() as foreign:
        config = f"""
models:
  alpha:
    cmd: {sys.executable} -c "import time; time.sleep(30)"
    proxy: http://127.0.0.1:{foreign.port}
"""
        with start_swapgate(config) as gate:
            reply = gate.chat("alpha")
            assert reply[0] == 503, reply
            assert error_code(reply) == "backend_start_failed"
            message = reply[2]["error"]["message"]
            assert f"another process was already listening on port {foreign.port}" in message
            wait_until(lambda: gate.descendants() == [], timeout=5, message="sleep child gone")
            assert foreign.is_healthy()


# ---- 8. and 9. many concurrent requests in one exclusive group ----------------------------


def check_one_at_a_time(gate: Swapgate) -> None:
    """From the log: no model started twice without stopping in between, and (one exclusive
    group) never two models out of stopped/failed at once."""
    state: dict[str, str] = {}
    for model, old, new in transitions(gate):
        assert state.get(model, "stopped") == old, (model, old, new)
        if new == "starting":
            assert old in _NOT_RUNNING, f"{model} started twice at once"
        state[model] = new
        running = sorted(m for m, s in state.items() if s not in _NOT_RUNNING)
        assert len(running) <= 1, f"{running} ran at once in one exclusive group"


async def _fire(url: str, models: list[str]) -> list[tuple[str, int, str]]:
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(model: str) -> tuple[str, int, str]:
            async with session.post(url, json=chat_body(model)) as resp:
                body = await resp.json()
                if resp.status != 200:
                    return model, resp.status, str(body)
                return model, resp.status, str(body["choices"][0]["message"]["content"])

        return await asyncio.gather(*(one(model) for model in models))


def test_500_concurrent_requests_across_three_swapping_models() -> None:
    """500 concurrent requests over three models of one exclusive group: all answered by the
    right model within 120 s, and no model ever started twice at once."""
    config = plain_models("alpha", "bravo", "charlie", tokens=2, ttft=0.001, token_interval=0)
    models = [("alpha", "bravo", "charlie")[i % 3] for i in range(500)]
    with start_swapgate(config) as gate:
        started = time.monotonic()
        results = asyncio.run(_fire(gate.url + "/v1/chat/completions", models))
        assert time.monotonic() - started < 120
        wrong = [r for r in results if r[1] != 200 or r[0] not in r[2]]
        assert wrong == [], wrong[:5]
        check_one_at_a_time(gate)


def test_20_alternating_requests_cause_at_most_two_starts(
    pool: concurrent.futures.ThreadPoolExecutor,
) -> None:
    """20 concurrent requests alternating two models that swap: all answered, at most 2 starts."""
    config = plain_models("alpha", "bravo")
    barrier = threading.Barrier(20)

    with start_swapgate(config) as gate:

        def ask(model: str) -> Reply:
            barrier.wait(timeout=10)
            return gate.chat(model)

        futures = [pool.submit(ask, ("alpha", "bravo")[i % 2]) for i in range(20)]
        replies = [f.result(timeout=30) for f in futures]
        assert [r[0] for r in replies] == [200] * 20
        for i, reply in enumerate(replies):
            assert ("alpha", "bravo")[i % 2] in content(reply)
        assert len(starts(gate)) <= 2, starts(gate)
        check_one_at_a_time(gate)


# ---- 10. collation -------------------------------------------------------------------------


def test_queued_requests_are_collated_by_model(
    pool: concurrent.futures.ThreadPoolExecutor,
) -> None:
    """B A B A behind a busy alpha: both A's answered while alpha runs, then one swap serves
    both B's."""
    config = plain_models("alpha", "bravo", tokens=40, token_interval=0.05)
    with start_swapgate(config) as gate:
        long = pool.submit(stream, gate, "alpha")
        wait_until(lambda: in_flight(gate, "alpha"), message="alpha streaming")
        b1 = pool.submit(gate.chat, "bravo", max_tokens=1)
        wait_until(lambda: queued(gate, "bravo", 1), message="bravo queued")
        a1 = pool.submit(gate.chat, "alpha", max_tokens=1)
        b2 = pool.submit(gate.chat, "bravo", max_tokens=1)
        wait_until(lambda: queued(gate, "bravo", 2), message="second bravo queued")
        a2 = pool.submit(gate.chat, "alpha", max_tokens=1)
        for a in (a1, a2):
            reply = a.result(timeout=10)
            assert reply[0] == 200, reply
            assert "alpha" in content(reply)
        assert not long.done()  # the A's were served while alpha still ran its long answer
        assert starts(gate, "bravo") == []
        assert long.result(timeout=10)[1]
        for b in (b1, b2):
            reply = b.result(timeout=10)
            assert reply[0] == 200, reply
            assert "bravo" in content(reply)
        assert starts(gate) == ["alpha", "bravo"]
        assert gate.output().count("swap: stopping alpha to run bravo") == 1


# ---- 11. fairness --------------------------------------------------------------------------


def test_fairness_drains_a_model_that_is_never_idle(
    pool: concurrent.futures.ThreadPoolExecutor,
) -> None:
    """With maxWaitSeconds 1 and drainTimeout 1, a bravo request is answered within 6 s though
    alpha streams a long answer and new alpha requests keep arriving every 0.2 s."""
    config = (
        "drainTimeout: 1\nrouting:\n  scheduler:\n    settings:\n      fifo:\n"
        "        maxWaitSeconds: 1\n"
    ) + plain_models("alpha", "bravo", tokens=300, token_interval=0.05)
    with start_swapgate(config) as gate:
        long = pool.submit(stream, gate, "alpha")
        wait_until(lambda: in_flight(gate, "alpha"), message="alpha streaming")
        stop = threading.Event()

        def keep_alpha_busy() -> None:
            while not stop.wait(0.2):
                pool.submit(gate.chat, "alpha", max_tokens=5)

        feeder = pool.submit(keep_alpha_busy)
        try:
            wait_until(lambda: in_flight(gate, "alpha", 2), message="more alpha requests")
            started = time.monotonic()
            body = chat_body("bravo", max_tokens=1)
            reply = gate.post("/v1/chat/completions", body, timeout=10.0)
            elapsed = time.monotonic() - started
        finally:
            stop.set()
            feeder.result(timeout=5)
        assert reply[0] == 200, reply
        assert "bravo" in content(reply)
        assert elapsed < 6, f"bravo waited {elapsed:.1f}s"
        events, _clean = long.result(timeout=5)  # drained: cut (or finished)
        assert events < 300
        assert "swap: stopping alpha to run bravo (fairness)" in gate.output()


# ---- 12. priority --------------------------------------------------------------------------


def test_a_higher_priority_model_starts_first(
    pool: concurrent.futures.ThreadPoolExecutor,
) -> None:
    """bravo queued, then charlie (priority 10): when alpha is released, charlie starts first."""
    config = (
        "routing:\n  scheduler:\n    settings:\n      fifo:\n        priority: {charlie: 10}\n"
    ) + plain_models("alpha", "bravo", "charlie", tokens=30, token_interval=0.05)
    with start_swapgate(config) as gate:
        long = pool.submit(stream, gate, "alpha")
        wait_until(lambda: in_flight(gate, "alpha"), message="alpha streaming")
        b = pool.submit(gate.chat, "bravo", max_tokens=1)
        wait_until(lambda: queued(gate, "bravo"), message="bravo queued")
        c = pool.submit(gate.chat, "charlie", max_tokens=1)
        wait_until(lambda: queued(gate, "charlie"), message="charlie queued")
        assert long.result(timeout=10)[1]
        assert b.result(timeout=10)[0] == 200
        assert c.result(timeout=10)[0] == 200
        assert starts(gate) == ["alpha", "charlie", "bravo"]


# ---- 13. and 14. refusals ------------------------------------------------------------------


def test_queue_timeout_answers_503_with_retry_after(
    pool: concurrent.futures.ThreadPoolExecutor,
) -> None:
    """queueTimeout 1: a bravo request behind a busy alpha gets 503 queue_timeout in 1-4 s."""
    config = "queueTimeout: 1\n" + plain_models("alpha", "bravo", tokens=200, token_interval=0.05)
    with start_swapgate(config) as gate:
        pool.submit(stream, gate, "alpha")
        wait_until(lambda: in_flight(gate, "alpha"), message="alpha streaming")
        started = time.monotonic()
        reply = gate.chat("bravo")
        elapsed = time.monotonic() - started
        assert reply[0] == 503, reply
        assert error_code(reply) == "queue_timeout"
        assert "retry-after" in reply[1]
        assert int(reply[1]["retry-after"]) >= 1
        assert 1 <= elapsed < 4, f"refused after {elapsed:.2f}s"
        assert "bravo" not in gate.running()


def test_concurrency_limit_answers_429_at_once(
    pool: concurrent.futures.ThreadPoolExecutor,
) -> None:
    """concurrencyLimit 1: a second request while one streams gets 429 in < 1 s."""
    config = f"""
models:
  alpha:
    cmd: {fake_cmd("alpha", tokens=200, token_interval=0.05)}
    concurrencyLimit: 1
"""
    with start_swapgate(config) as gate:
        pool.submit(stream, gate, "alpha")
        wait_until(lambda: in_flight(gate, "alpha"), message="alpha streaming")
        started = time.monotonic()
        reply = gate.chat("alpha")
        elapsed = time.monotonic() - started
        assert reply[0] == 429, reply
        assert error_code(reply) == "concurrency_limit"
        assert "retry-after" in reply[1]
        assert elapsed < 1, f"refused after {elapsed:.2f}s"


# ---- 15. the fit policy --------------------------------------------------------------------


def test_fit_runs_models_together_within_the_budget() -> None:
    """use: fit, budget 1000 MiB: alpha (600) and bravo (300) run together; charlie (500)
    stops the least recently used idle alpha; a 2000 MiB model times out naming the figures."""
    models = "".join(
        f"  {name}:\n    cmd: {fake_cmd(name, say=name)}\n    vram: {vram}\n"
        for name, vram in (("alpha", 600), ("bravo", 300), ("charlie", 500), ("delta", 2000))
    )
    config = f"""
routing:
  router:
    use: fit
    settings:
      fit: {{budgetMiB: 1000}}
models:
{models}    queueTimeout: 1
"""  # the last line belongs to delta: it gives up after 1 s, the others wait as usual
    with start_swapgate(config) as gate:
        assert gate.chat("alpha")[0] == 200
        assert gate.chat("bravo")[0] == 200
        assert sorted(gate.running()) == ["alpha", "bravo"]
        reply = gate.chat("charlie")
        assert reply[0] == 200, reply
        assert "charlie" in content(reply)
        running = gate.running()
        assert sorted(running) == ["bravo", "charlie"]
        assert running["bravo"]["memory"]["mib"] == 300
        assert running["bravo"]["memory"]["source"] == "configured"
        assert running["charlie"]["memory"]["mib"] == 500
        assert "swap: stopping alpha to run charlie" in gate.output()

        started = time.monotonic()
        reply = gate.chat("delta")
        elapsed = time.monotonic() - started
        assert reply[0] == 503, reply
        assert error_code(reply) == "queue_timeout"
        message = reply[2]["error"]["message"]
        assert "2000 MiB" in message
        assert "1000 MiB" in message
        assert 1 <= elapsed < 4
        assert sorted(gate.running()) == ["bravo", "charlie"]  # nothing stopped for it
