"""The event bus: callbacks, bounded subscriber queues, and isolation from broken ones."""

from __future__ import annotations

import asyncio
import logging

import pytest

from swapgate.proxy.events import Cause, Event, EventBus, QueueChanged, StateChanged
from swapgate.proxy.lifecycle.state import BackendState

_S = BackendState


def state(at: float) -> StateChanged:
    return StateChanged("a", _S.STOPPED, _S.STARTING, Cause.REQUESTED, at)


def test_callbacks_and_subscribers_see_every_event_in_order() -> None:
    """A callback and a subscribed queue each receive every event published meanwhile."""

    async def body() -> None:
        bus = EventBus()
        seen: list[Event] = []
        bus.on(seen.append)
        with bus.subscribe() as queue:
            bus.publish(state(1.0))
            bus.publish(QueueChanged((("a", 2),), 2.0))
            got = [queue.get_nowait(), queue.get_nowait()]
        bus.publish(state(3.0))  # after the block: the queue is gone
        assert got == seen[:2]
        assert [e.at for e in seen] == [1.0, 2.0, 3.0]

    asyncio.run(body())


def test_a_slow_subscriber_loses_its_oldest_events_and_never_blocks() -> None:
    """Publishing never waits: a full queue drops its oldest event."""

    async def body() -> None:
        bus = EventBus()
        with bus.subscribe() as queue:
            for i in range(2000):
                bus.publish(state(float(i)))
            assert queue.qsize() == 1024
            assert queue.get_nowait().at == 2000 - 1024

    asyncio.run(body())


def test_a_broken_callback_is_logged_and_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One failing subscriber does not stop the event reaching the rest."""
    bus = EventBus()
    seen: list[Event] = []

    def broken(_event: Event) -> None:
        msg = "subscriber bug"
        raise RuntimeError(msg)

    bus.on(broken)
    bus.on(seen.append)
    with caplog.at_level(logging.ERROR, logger="swapgate.events"):
        bus.publish(state(1.0))
    assert len(seen) == 1
    assert "event subscriber failed on state" in caplog.text


def test_event_kinds_are_distinct() -> None:
    """Each record says what kind of event it is (the SSE event name)."""
    assert state(0.0).kind == "state"
    assert QueueChanged((), 0.0).kind == "queue"
