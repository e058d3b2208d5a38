"""Notice a client that hung up, so the upstream request is dropped at once.

Once the request body has been read, the next ASGI `receive()` only returns when the client
disconnects; one watcher task per forwarded request waits for exactly that.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TypeVar

from blacksheep import Request

T = TypeVar("T")
Receive = Callable[[], Awaitable[MutableMapping[str, object]]]


class DisconnectWatch:
    """Resolves `gone` when the client disconnects; runs `on_gone` callbacks then."""

    def __init__(self, receive: Receive | None) -> None:
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._callbacks: list[Callable[[], None]] = []
        self._task = None if receive is None else asyncio.create_task(self._watch(receive))

    @classmethod
    def for_request(cls, request: Request) -> DisconnectWatch:
        content = request.content
        receive: Receive | None = getattr(content, "receive", None)
        return cls(receive)

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                break
        if not self.gone.done():
            self.gone.set_result(None)
        for callback in self._callbacks:
            callback()

    def on_gone(self, callback: Callable[[], None]) -> None:
        if self.gone.done():
            callback()
        else:
            self._callbacks.append(callback)

    def close(self) -> None:
        """Stop watching (the response is complete)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if not self.gone.done():
            self.gone.cancel()
        self._callbacks.clear()

    async def unless_gone(self, work: Awaitable[T]) -> T | None:
        """The result of `work`, or None (and `work` cancelled) if the client leaves first."""
        task = asyncio.ensure_future(work)

        def cancel() -> None:
            task.cancel()

        self.on_gone(cancel)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if (
                self.gone.done()
                and not self.gone.cancelled()
                and not (current and current.cancelling())
            ):
                return None
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._callbacks.remove(cancel)
