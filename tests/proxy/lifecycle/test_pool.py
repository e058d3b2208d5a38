"""BackendPool over real fake-upstream children: single flight, swaps, crashes, TTL, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from swapgate.proxy.config.model import Config, ModelSpec, Scheduling
from swapgate.proxy.errors import (
    BackendFailed,
    BackendStartFailed,
    ConcurrencyLimited,
    ModelNotFound,
    ShuttingDown,
)
from swapgate.proxy.lifecycle.pool import BackendPool
from swapgate.proxy.lifecycle.state import BackendState
from swapgate.proxy.lifecycle.wardenlink import WARDEN
from tests.support.procs import children_of, http_json, pids_alive
from tests.support.procs import wait_until_async as wait_for_condition
from tests.support.specs import fake_spec as spec
from tests.support.specs import run

pytestmark = pytest.mark.integration

_S = BackendState


class Output:
    """Every line the children printed, per model."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, model: str, line: str) -> None:
        self.lines.append((model, line))

    def count(self, model: str, text: str) -> int:
        return sum(m == model and text in line for m, line in self.lines)


@contextlib.asynccontextmanager
async def pool_of(*specs: ModelSpec, **config: Any) -> AsyncIterator[tuple[BackendPool, Output]]:
    """A started pool; shut down afterwards, and no child of this process may outlive it."""
    before = set(_our_children())
    output = Output()
    pool = BackendPool(Config(models={s.id: s for s in specs}, **config), output)
    await pool.start()
    try:
        yield pool, output
    finally:
        await asyncio.wait_for(pool.shutdown(1.0), 30.0)
        leaked = pids_alive(sorted(set(_our_children()) - before))
        for pid in leaked:
            os.killpg(pid, signal.SIGKILL)
        assert leaked == [], f"children left running: {leaked}"


def moves(caplog: pytest.LogCaptureFixture, model: str) -> list[str]:
    """The pool's state-change log lines for `model`, as 'old -> new'."""
    prefix = f"model {model}: "
    found = [r.getMessage() for r in caplog.records if r.name == "swapgate.pool"]
    return [m.removeprefix(prefix).split(" (")[0] for m in found if m.startswith(prefix)]


async def get(url: str) -> tuple[int, Any]:
    """GET a URL off the event loop; (status, JSON body)."""
    status, _, body = await asyncio.to_thread(http_json, "GET", url)
    return status, body


async def gone(pid: int | None) -> None:
    """Wait (bounded) until `pid` no longer runs."""
    assert pid is not None
    await wait_for_condition(lambda: not pids_alive([pid]), 5.0, message=f"pid {pid} gone")


async def not_done_within(task: asyncio.Task[Any], seconds: float) -> bool:
    """True if `task` is still pending after `seconds` (a bounded check for 'has not happened')."""
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return not done


@pytest.fixture
def caplog_info(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """caplog recording swapgate's INFO lines (state changes, swaps)."""
    caplog.set_level(logging.INFO, logger="swapgate")
    return caplog


def test_acquire_starts_model_and_process_answers(caplog_info: pytest.LogCaptureFixture) -> None:
    """acquire() moves STOPPED -> STARTING -> READY and leases a URL the server answers on."""

    async def body() -> None:
        async with pool_of(spec("a")) as (pool, _):
            lease = await pool.acquire("a")
            backend = pool.backends["a"]
            assert backend.state is _S.READY
            assert moves(caplog_info, "a") == ["stopped -> starting", "starting -> ready"]
            status, models = await get(lease.url + "/v1/models")
            assert (status, models["data"][0]["id"]) == (200, "a")
            assert lease.model == "a"
            assert pool.in_flight() == 1
            lease.release()
            assert pool.in_flight() == 0
            assert list(pool.running()) == ["a"]

    run(body())


def test_concurrent_acquires_share_one_start(caplog_info: pytest.LogCaptureFixture) -> None:
    """Requests arriving while a model starts share one process and one STARTING move."""

    async def body() -> None:
        async with pool_of(spec("a", "--startup-delay 0.3")) as (pool, output):
            leases = await asyncio.gather(*(pool.acquire("a") for _ in range(6)))
            assert moves(caplog_info, "a") == ["stopped -> starting", "starting -> ready"]
            assert output.count("a", "listening on") == 1
            assert {(lease.url, lease.generation) for lease in leases} == {(leases[0].url, 1)}
            assert pool.backends["a"].in_flight == 6
            for lease in leases:
                lease.release()

    run(body())


def test_swap_waits_for_lease_then_stops_old_and_starts_new(
    caplog_info: pytest.LogCaptureFixture,
) -> None:
    """B waits while A serves (A keeps taking requests); once A is idle, A stops, then B starts."""

    async def body() -> None:
        async with pool_of(spec("a"), spec("b")) as (pool, _):
            a, b = pool.backends["a"], pool.backends["b"]
            lease_a = await pool.acquire("a")
            pid_a = a.pid
            want_b = asyncio.create_task(pool.acquire("b"))
            await wait_for_condition(lambda: pool.scheduler.queued("b") == 1, message="B queued")
            assert await not_done_within(want_b, 0.4)
            assert (a.state, b.state) == (_S.READY, _S.STOPPED)
            (await pool.acquire("a")).release()  # a busy model keeps serving (collation)
            assert pid_a is not None
            assert pids_alive([pid_a]) == [pid_a]
            lease_a.release()
            lease_b = await asyncio.wait_for(want_b, 15.0)
            assert (a.state, b.state) == (_S.STOPPED, _S.READY)
            await gone(pid_a)
            assert (await get(lease_b.url + "/v1/models"))[1]["data"][0]["id"] == "b"
            lines = [r.getMessage() for r in caplog_info.records]
            assert lines.index("model a: stopping -> stopped (stopped)") < lines.index(
                "model b: stopped -> starting (requested)"
            )
            assert "swap: stopping a to run b (swap)" in lines
            lease_b.release()

    run(body())


def test_crash_is_noticed_and_next_acquire_restarts() -> None:
    """A READY child that dies is FAILED within 0.5 s; the next acquire starts a new one."""

    async def body() -> None:
        async with pool_of(spec("a")) as (pool, output):
            backend = pool.backends["a"]
            (await pool.acquire("a")).release()
            first = backend.pid
            assert first is not None
            os.kill(first, signal.SIGKILL)
            await wait_for_condition(lambda: backend.state is _S.FAILED, 0.5, message="FAILED")
            with pytest.raises(BackendFailed) as caught:  # crash back-off: 1 s
                await pool.acquire("a")
            assert caught.value.retry_after_s is not None
            assert 0 < caught.value.retry_after_s <= 1.0
            await asyncio.sleep(caught.value.retry_after_s)
            lease = await pool.acquire("a")
            assert backend.pid not in (None, first)
            assert lease.generation == 2
            assert output.count("a", "listening on") == 2
            assert (await get(lease.url + "/health"))[0] == 200
            lease.release()

    run(body())


def test_start_failure_fails_queued_requests_without_respawning() -> None:
    """Requests queued behind a failing start get its error; during the back-off requests are
    refused at once; only a request after it retries."""

    async def body() -> None:
        async with pool_of(spec("a", "--exit-on-start 3")) as (pool, output):
            results = await asyncio.gather(
                *(pool.acquire("a") for _ in range(4)), return_exceptions=True
            )
            assert all(isinstance(r, BackendStartFailed) for r in results), results
            for error in results:
                assert isinstance(error, BackendStartFailed)
                assert "exited with code 3 during startup" in error.message
                assert error.message.endswith("fatal: cannot load model (simulated)")
            assert output.count("a", "fatal: cannot load model") == 1
            with pytest.raises(BackendFailed, match="failed 1 time"):  # backing off: no spawn
                await pool.acquire("a")
            assert output.count("a", "fatal: cannot load model") == 1
            await asyncio.sleep(1.0)
            with pytest.raises(BackendStartFailed):
                await pool.acquire("a")  # the back-off has passed: tries again
            assert output.count("a", "fatal: cannot load model") == 2

    run(body())


def test_health_timeout_fails_and_kills_child() -> None:
    """healthCheckTimeout expiring gives BackendStartFailed and leaves no process behind."""

    async def body() -> None:
        async with pool_of(spec("a", "--fail-health"), health_check_timeout_s=0.5) as (pool, _):
            backend = pool.backends["a"]
            acquiring = asyncio.create_task(pool.acquire("a"))
            pid = await wait_for_condition(lambda: backend.pid, message="spawned")
            with pytest.raises(BackendStartFailed, match="did not become healthy"):
                await acquiring
            assert backend.state is _S.FAILED
            await gone(pid)

    run(body())


def test_ttl_unloads_idle_model_but_never_under_a_lease() -> None:
    """ttl 0.5 s: a held lease keeps the model up past its TTL; once idle it is unloaded."""

    async def body() -> None:
        async with pool_of(spec("a", ttl_s=0.5)) as (pool, _):
            backend = pool.backends["a"]
            lease = await pool.acquire("a")
            pid = backend.pid
            with pytest.raises(TimeoutError):  # three reaper rounds past the TTL: still up
                await wait_for_condition(lambda: backend.state is not _S.READY, 1.2)
            released = time.monotonic()
            lease.release()
            await wait_for_condition(lambda: backend.state is _S.STOPPED, 5.0, message="unload")
            assert time.monotonic() - released >= 0.5
            await gone(pid)

    run(body())


def test_unload_stops_after_in_flight_request() -> None:
    """unload(model) waits for the lease, stops the process and reports what it stopped."""

    async def body() -> None:
        async with pool_of(spec("a"), spec("b")) as (pool, _):
            assert await pool.unload() == []
            lease = await pool.acquire("a")
            pid = pool.backends["a"].pid
            unloading = asyncio.create_task(pool.unload("a"))
            assert await not_done_within(unloading, 0.3)
            lease.release()
            assert await asyncio.wait_for(unloading, 10.0) == ["a"]
            assert pool.backends["a"].state is _S.STOPPED
            assert pool.running() == {}
            await gone(pid)
            with pytest.raises(ModelNotFound, match="known models: a, b"):
                await pool.unload("zzz")

    run(body())


def test_concurrency_limit_refuses_extra_requests() -> None:
    """With concurrencyLimit 1 a second simultaneous request gets ConcurrencyLimited (429)."""

    async def body() -> None:
        async with pool_of(spec("a", concurrency_limit=1)) as (pool, _):
            lease = await pool.acquire("a")
            with pytest.raises(ConcurrencyLimited) as caught:
                await pool.acquire("a")
            assert caught.value.status == 429
            lease.release()
            (await pool.acquire("a")).release()

    run(body())


def test_unknown_model_is_model_not_found() -> None:
    """acquire() of an unconfigured id raises ModelNotFound listing the known ones."""

    async def body() -> None:
        async with pool_of(spec("a")) as (pool, _):
            with pytest.raises(ModelNotFound, match="'nope' is not configured; known models: a"):
                await pool.acquire("nope")

    run(body())


def test_shutdown_stops_everything_and_refuses_new_work() -> None:
    """shutdown() cuts a held lease after the drain timeout, stops the child; acquire then fails."""

    async def body() -> None:
        async with pool_of(spec("a"), spec("b")) as (pool, _):
            lease = await pool.acquire("a")
            pid = pool.backends["a"].pid
            await asyncio.wait_for(pool.shutdown(0.3), 10.0)
            assert pool.shutting_down
            assert all(b.state is _S.STOPPED for b in pool.backends.values())
            await gone(pid)
            for model in ("a", "b"):
                with pytest.raises(ShuttingDown):
                    await pool.acquire(model)
            lease.release()

    run(body())


def test_shutdown_honours_drain_timeout_for_a_model_already_draining() -> None:
    """A model draining for a swap (here forced by the fairness bound, with drainTimeout 0 =
    no limit) is cut at the shutdown drain timeout too, not waited on forever."""

    async def body() -> None:
        fair = Scheduling(max_wait_s=0.1)
        async with pool_of(spec("a"), spec("b"), scheduling=fair) as (pool, _):
            a = pool.backends["a"]
            lease = await pool.acquire("a")
            pid = a.pid
            want_b = asyncio.create_task(pool.acquire("b"))
            await wait_for_condition(lambda: a.state is _S.STOPPING, message="A draining")
            stopping = asyncio.create_task(pool.shutdown(0.3))
            try:
                done, _ = await asyncio.wait({stopping}, timeout=5.0)
                assert done, "shutdown still waits for the swap's unbounded drain"
                await gone(pid)
                with pytest.raises(ShuttingDown):
                    await want_b
            finally:
                lease.release()
                await asyncio.wait({want_b, stopping}, timeout=10.0)

    run(body())


def test_port_in_use_is_skipped() -> None:
    """When the configured port is taken, the child gets the next free one and serves there."""

    async def body() -> None:
        with socket.socket() as blocker:
            blocker.bind(("127.0.0.1", 0))
            blocker.listen()
            taken = blocker.getsockname()[1]
            async with pool_of(spec("a", port=taken)) as (pool, _):
                lease = await pool.acquire("a")
                port = pool.backends["a"].port
                assert port is not None
                assert port != taken
                assert port > taken
                assert lease.url == f"http://127.0.0.1:{port}"
                assert (await get(f"http://127.0.0.1:{port}/health"))[0] == 200
                lease.release()

    run(body())


def test_no_free_port_fails_start_instead_of_hanging() -> None:
    """If no port at or above the configured one is free, acquire fails with BackendStartFailed."""

    async def body() -> None:
        with socket.socket() as blocker:
            try:
                blocker.bind(("127.0.0.1", 65535))
            except OSError:
                pytest.skip("port 65535 is busy on this machine")
            blocker.listen()
            async with pool_of(spec("a", port=65535)) as (pool, _):
                acquiring = asyncio.create_task(pool.acquire("a"))
                done, _ = await asyncio.wait({acquiring}, timeout=5.0)
                acquiring.cancel()
                assert done, "acquire() still pending with no free port"
                with pytest.raises(BackendStartFailed, match="port"):
                    acquiring.result()
                assert pool.backends["a"].state is _S.FAILED

    run(body())


def _our_children() -> list[int]:
    """This process's children but its warden (one per process, for its whole life)."""
    return [pid for pid in children_of(os.getpid()) if pid != WARDEN.pid]
