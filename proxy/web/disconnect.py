"""Notice a client that hung up, so the upstream request is dropped at once.

Once the request body has been read, the next ASGI `receive()` only returns when the client
disconnects; a watcher task waits for exactly that. Most requests finish within milliseconds,
so the watcher starts only after a short delay: a quick request costs one timer, not a task.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TypeVar, cast

from blacksheep import Request

T = TypeVar("T")
Receive = Callable[[], Awaitable[MutableMapping[str, object]]]

# Long enough that short requests never start a watcher; short next to a generation.
WATCH_AFTER_S = 0.05
# Where a request whose body is still being read leaves the receive() the watch should use
# instead of the client's own (bodystream.py): the watch must never take a body chunk.
WATCH_RECEIVE_KEY = "swapgate.watch_receive"


class DisconnectWatch:
    """`gone` becomes true when the client disconnects; `on_gone` callbacks run then."""

    __slots__ = ("_callbacks", "_receive", "_task", "_timer", "gone")

    def __init__(self, receive: Receive | None, delay_s: float = WATCH_AFTER_S) -> None:
        self.gone = False
        self._receive = receive
        self._callbacks: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._timer = (
            None if receive is None else asyncio.get_running_loop().call_later(delay_s, self._start)
        )

    @classmethod
    def for_request(cls, request: Request) -> DisconnectWatch:
        scope = cast("Mapping[str, Receive]", request.scope)
        receive: Receive | None = scope.get(WATCH_RECEIVE_KEY)
        if receive is None:
            receive = getattr(request.content, "receive", None)
        return cls(receive)

    def _start(self) -> None:
        self._timer = None
        if self._receive is not None:
            self._task = asyncio.create_task(self._watch(self._receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive()).get("type") != "http.disconnect":
            pass
        self.gone = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_gone(self, callback: Callable[[], None]) -> None:
        if self.gone:
            callback()
        else:
            self._callbacks.append(callback)

    def close(self) -> None:
        """Stop watching (the response is complete or failed)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._callbacks.clear()

    async def unless_gone(self, work: Awaitable[T]) -> T | None:
        """The result of `work`, or None (and `work` cancelled) if the client leaves first.

        No extra task: a disconnect cancels the task running this coroutine, and the
        cancellation is taken back here (Task.uncancel) so it never escapes as our own.
        """
        current = asyncio.current_task()
        if current is None or self._receive is None:
            return await work

        def cancel() -> None:
            current.cancel()

        self.on_gone(cancel)
        try:
            return await work
        except asyncio.CancelledError:
            if self.gone and current.uncancel() == 0:
                return None
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._callbacks.remove(cancel)
