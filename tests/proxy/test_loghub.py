"""The log hub: per-source and combined rings, and live subscribers that never block writers."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from swapgate.proxy.loghub import PROXY_SOURCE, LogHub

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one async test body on a fresh event loop."""
    return asyncio.run(coro)


def drain(queue: asyncio.Queue[str]) -> list[str]:
    """Everything queued right now, without waiting."""
    items: list[str] = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


def test_tail_per_source_is_bare_lines_in_order() -> None:
    """tail(source) returns that source's lines only, unprefixed, oldest first."""
    hub = LogHub()
    hub.write("a", "a1")
    hub.write(PROXY_SOURCE, "p1")
    hub.write("a", "a2")
    assert hub.tail("a") == ["a1", "a2"]
    assert hub.tail(PROXY_SOURCE) == ["p1"]


def test_tail_all_interleaves_with_source_prefix() -> None:
    """tail() returns every source in write order, each line prefixed with [source]."""
    hub = LogHub()
    hub.write("a", "a1")
    hub.write(PROXY_SOURCE, "p1")
    hub.write("b", "b1")
    assert hub.tail() == ["[a] a1", "[proxy] p1", "[b] b1"]


def test_tail_unknown_source_is_empty() -> None:
    """A source that never wrote has an empty tail rather than an error."""
    hub = LogHub()
    hub.write("a", "x")
    assert hub.tail("nobody") == []


def test_tail_lines_limits_to_the_newest() -> None:
    """tail(lines=n) keeps only the last n lines, for one source and for all."""
    hub = LogHub()
    for i in range(5):
        hub.write("a", f"l{i}")
    assert hub.tail("a", lines=2) == ["l3", "l4"]
    assert hub.tail(lines=1) == ["[a] l4"]
    assert hub.tail("a", lines=10) == [f"l{i}" for i in range(5)]


def test_rings_are_bounded_per_source_and_overall() -> None:
    """Each ring keeps ring_lines lines: old lines fall off, and a quiet source keeps its own."""
    hub = LogHub(ring_lines=3)
    hub.write("quiet", "q0")
    for i in range(10):
        hub.write("busy", f"b{i}")
    assert hub.tail("busy") == ["b7", "b8", "b9"]
    assert hub.tail("quiet") == ["q0"]  # not pushed out by another source
    assert hub.tail() == ["[busy] b7", "[busy] b8", "[busy] b9"]


def test_subscriber_to_one_source_gets_only_its_new_lines() -> None:
    """A per-source subscriber sees later lines of that source, newline-terminated, bare."""

    async def body() -> None:
        hub = LogHub()
        hub.write("a", "before")
        async with hub.subscribe("a") as queue:
            hub.write("a", "one")
            hub.write("b", "other")
            hub.write("a", "two")
            assert await asyncio.wait_for(queue.get(), 1.0) == "one\n"
            assert drain(queue) == ["two\n"]

    run(body())


def test_subscriber_to_all_gets_prefixed_lines() -> None:
    """An all-sources subscriber sees every new line prefixed with its source."""

    async def body() -> None:
        hub = LogHub()
        async with hub.subscribe() as queue:
            hub.write("a", "x")
            hub.write(PROXY_SOURCE, "y")
            assert drain(queue) == ["[a] x\n", "[proxy] y\n"]

    run(body())


def test_closed_subscription_gets_nothing_more() -> None:
    """Leaving the subscribe() block stops delivery to that queue."""

    async def body() -> None:
        hub = LogHub()
        async with hub.subscribe() as queue:
            hub.write("a", "in")
        hub.write("a", "after")
        assert drain(queue) == ["[a] in\n"]

    run(body())


def test_slow_subscriber_drops_oldest_without_blocking_writer() -> None:
    """A subscriber that never reads loses its oldest lines; writes stay synchronous and complete."""

    async def body() -> None:
        hub = LogHub()
        async with hub.subscribe("a") as slow, hub.subscribe("a") as fast:
            assert slow.maxsize > 0
            total = slow.maxsize + 250
            seen_by_fast: list[str] = []
            for i in range(total):
                hub.write("a", f"l{i}")  # synchronous: it cannot wait for a reader
                if i % 100 == 0:
                    seen_by_fast += drain(fast)
            seen_by_fast += drain(fast)
            assert seen_by_fast == [f"l{i}\n" for i in range(total)]  # unaffected by the slow one
            queued = drain(slow)
            assert len(queued) == slow.maxsize
            assert queued[0] == f"l{total - slow.maxsize}\n"
            assert queued[-1] == f"l{total - 1}\n"
            assert hub.tail("a", lines=1) == [f"l{total - 1}"]

    run(body())
