"""BackendPool.apply() over real fake-upstream children: what a reload keeps, restarts, stops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from swapgate.proxy.config.diff import diff
from swapgate.proxy.config.model import Config, JSONValue, ModelSpec
from swapgate.proxy.errors import ModelNotFound
from swapgate.proxy.lifecycle.pool import BackendPool
from swapgate.proxy.lifecycle.state import BackendState
from tests.support.procs import pids_alive
from tests.support.procs import wait_until_async as wait_for
from tests.support.specs import fake_spec as spec
from tests.support.specs import run

pytestmark = pytest.mark.integration

_S = BackendState
_TOGETHER: dict[str, JSONValue] = {
    "groups": {"all": {"swap": False, "exclusive": False, "members": ["a", "b"]}}
}


def config_of(*specs: ModelSpec) -> Config:
    return Config(models={s.id: s for s in specs}, raw_sections=_TOGETHER)


@contextlib.asynccontextmanager
async def pool_of(config: Config) -> AsyncIterator[BackendPool]:
    pool = BackendPool(config, lambda _model, _line: None)
    await pool.start()
    try:
        yield pool
    finally:
        await asyncio.wait_for(pool.shutdown(1.0), 30.0)


def apply(pool: BackendPool, new: Config) -> tuple[str, ...]:
    return pool.apply(new, diff(pool.config, new))


def test_a_changed_model_restarts_on_its_port_and_the_unchanged_one_keeps_running() -> None:
    """a unchanged: same process and generation; b changed: stopped now, started again with
    the new settings (same port) on the next request."""

    async def body() -> None:
        a, b = spec("a"), spec("b")
        async with pool_of(config_of(a, b)) as pool:
            await pool.load("a")
            await pool.load("b")
            a_pid, b_pid, b_port = (
                pool.backends["a"].pid,
                pool.backends["b"].pid,
                pool.backends["b"].port,
            )
            assert b_pid is not None
            new_b = replace(b, cmd=b.cmd + " --say changed")
            assert apply(pool, config_of(a, new_b)) == ()
            assert pool.backends["b"].state is _S.STOPPING  # refuses new leases at once
            await wait_for(lambda: pool.backends["b"].state is _S.STOPPED, message="b stopped")
            assert pids_alive([b_pid]) == []
            assert pool.backends["b"].spec is new_b
            await pool.load("b")
            assert (pool.backends["b"].port, pool.backends["b"].generation) == (b_port, 2)
            assert pool.backends["a"].pid == a_pid
            assert pool.backends["a"].generation == 1

    run(body())


def test_a_request_waiting_for_a_removed_model_gets_model_not_found() -> None:
    """A request queued while its model starts is decided again when the model is removed:
    404 model_not_found; the start is cancelled and the backend forgotten once stopped."""

    async def body() -> None:
        slow, other = spec("a", "--startup-delay 5"), spec("b")
        async with pool_of(config_of(slow, other)) as pool:
            waiting = asyncio.create_task(pool.acquire("a"))
            await wait_for(lambda: pool.backends["a"].state is _S.STARTING, message="a starting")
            apply(pool, config_of(other))
            with pytest.raises(ModelNotFound):
                await asyncio.wait_for(waiting, 10)
            await wait_for(lambda: "a" not in pool.backends, message="a forgotten")

    run(body())


def test_a_preloaded_running_model_that_changed_is_named_for_a_restart() -> None:
    """apply() returns the changed models that ran and are preloaded."""

    async def body() -> None:
        a = spec("a")
        async with pool_of(Config(models={"a": a}, preload=("a",))) as pool:
            await pool.load("a")
            changed = replace(a, cmd=a.cmd + " --say new")
            assert apply(pool, Config(models={"a": changed}, preload=("a",))) == ("a",)

    run(body())
