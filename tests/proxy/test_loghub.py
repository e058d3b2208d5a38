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


def test_rings_are_bounded_in_bytes_per_source_and_overall() -> None:
    """Old lines fall off once a ring holds more bytes (UTF-8) than its budget; a quiet source
    keeps its own lines, and the combined ring has its own, larger budget."""
    hub = LogHub(ring_lines=1000, source_bytes=100, all_bytes=250)
    hub.write("quiet", "q" * 40)
    for i in range(50):
        hub.write("busy", f"{i:02d}" + "b" * 18)  # 20 bytes each
    busy = hub.tail("busy")
    assert busy == [f"{i:02d}" + "b" * 18 for i in range(45, 50)]  # 5 x 20 = 100 bytes
    assert hub.tail("quiet") == ["q" * 40]
    combined = hub.tail()
    assert len(combined) == 12  # 12 x 20 = 240 <= 250 < 13 x 20
    assert combined[-1] == "[busy] 49" + "b" * 18


def test_byte_budget_counts_utf8_bytes_and_keeps_the_newest_line() -> None:
    """Multi-byte characters count as their UTF-8 length; a line over the whole budget is
    still kept, alone, so the newest output is never lost."""
    hub = LogHub(ring_lines=1000, source_bytes=12, all_bytes=1000)
    hub.write("a", "ééé")  # 6 bytes
    hub.write("a", "ééé")  # 12 bytes in all: fits
    assert hub.tail("a") == ["ééé", "ééé"]
    hub.write("a", "x")  # 13 bytes: the oldest goes
    assert hub.tail("a") == ["ééé", "x"]
    hub.write("a", "y" * 50)
    assert hub.tail("a") == ["y" * 50]


def test_default_budgets_hold_a_flood_of_long_lines_to_one_mib() -> None:
    """With the defaults, 16 KiB lines from one model are held to 1 MiB, all sources to 4 MiB."""
    hub = LogHub()
    line = "z" * 16 * 1024
    for source in ("a", "b", "c", "d", "e"):
        for _ in range(100):
            hub.write(source, line)
    assert sum(map(len, hub.tail("a"))) <= 1024 * 1024
    assert len(hub.tail("a")) == 64
    assert sum(len(x) - len("[a] ") for x in hub.tail()) <= 4 * 1024 * 1024
    assert len(hub.tail()) == 256
