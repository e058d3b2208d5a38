"""BodyScope: each HTTP request gets its own hold, and every way out of the app releases it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from swapgate.proxy.web.bodybudget import BodyBudget, BodyHold
from swapgate.proxy.web.bodyscope import BodyScope, Message, Scope, hold_of
from tests.support.specs import run


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(_message: Message) -> None:
    return None


class _App:
    """Reserves `size` bytes on the request's hold, then does `then` (return, raise, hang)."""

    def __init__(self, size: int, then: str) -> None:
        self.size = size
        self.then = then
        self.seen: list[BodyHold | None] = []
        self.entered = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        hold = hold_of(scope)
        self.seen.append(hold)
        if hold is not None:
            assert hold.reserve_up_to(self.size)
        self.entered.set()
        if self.then == "raise":
            raise RuntimeError(self.then)
        if self.then == "hang":
            await asyncio.Event().wait()


def test_a_finished_request_gives_its_bytes_back() -> None:
    """Bytes reserved while the app runs are released once it returns."""
    budget = BodyBudget(100)
    app = _App(60, "return")
    run(BodyScope(app, budget)({"type": "http"}, _receive, _send))
    assert isinstance(app.seen[0], BodyHold)
    assert budget.held == 0


def test_a_failed_request_gives_its_bytes_back() -> None:
    """An exception out of the app still releases the hold."""
    budget = BodyBudget(100)
    with pytest.raises(RuntimeError):
        run(BodyScope(_App(60, "raise"), budget)({"type": "http"}, _receive, _send))
    assert budget.held == 0


def test_a_cancelled_request_gives_its_bytes_back() -> None:
    """Cancellation (the server dropping the request) releases the hold too."""
    budget = BodyBudget(100)
    app = _App(60, "hang")

    async def scenario() -> int:
        task = asyncio.create_task(BodyScope(app, budget)({"type": "http"}, _receive, _send))
        await asyncio.wait_for(app.entered.wait(), 5)
        held_while_running = budget.held
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return held_while_running

    assert run(scenario()) == 60
    assert budget.held == 0


def test_requests_get_separate_holds_and_lifespan_none() -> None:
    """Two HTTP requests get two holds; a lifespan scope gets none."""
    budget = BodyBudget(100)
    app = _App(10, "return")
    scope = BodyScope(app, budget)

    async def scenario() -> None:
        await scope({"type": "http"}, _receive, _send)
        await scope({"type": "http"}, _receive, _send)
        await scope({"type": "lifespan"}, _receive, _send)

    run(scenario())
    first, second, lifespan = app.seen
    assert first is not None
    assert second is not None
    assert first is not second
    assert lifespan is None
