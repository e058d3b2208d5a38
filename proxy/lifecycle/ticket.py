"""Ticket: one request's place in the pool's queue, and the lease it is waiting for. Imports no
web code."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from swapgate.proxy.lifecycle.lease import Lease
from swapgate.proxy.lifecycle.scheduler import Waiter


class WaitLine(Protocol):
    """What a ticket asks of the pool that issued it."""

    def forget(self, ticket: Ticket) -> None: ...
    def describe_wait(self, waiter: Waiter) -> str: ...


@dataclass(eq=False, slots=True)
class Ticket:
    """One request's place in line: its waiter and the future its lease arrives on."""

    waiter: Waiter
    future: asyncio.Future[Lease]
    pool: WaitLine
    taken: bool = False

    async def wait(self) -> Lease:
        """The lease; if the caller is cancelled, the waiter leaves the queue (and a lease
        that arrived at that very moment is given back), so nothing runs for nobody."""
        try:
            if not self.future.done():
                await asyncio.wait({self.future})  # neither cancels the future nor raises
        except asyncio.CancelledError:
            self.cancel()
            raise
        return self.take()

    def take(self) -> Lease:
        """The granted lease (raises the refusal if there was one); the caller now owns it.

        The ticket lets go of a refusal before raising it: the traceback holds the caller's
        frames, which hold this ticket (and the request body), so a ticket still holding the
        exception would make a reference cycle that only the cyclic GC frees, and a burst of
        refused requests would keep every body alive until it ran.
        """
        self.taken = True
        future = self.future
        refusal = None if future.cancelled() else future.exception()
        if refusal is None:
            return future.result()
        self.future = future.get_loop().create_future()
        self.future.cancel()  # settled, holding nothing
        del future
        try:
            raise refusal
        finally:
            del refusal  # no frame of the traceback may hold the exception either

    def cancel(self) -> None:
        """Leave the queue; a lease granted but not taken is given back."""
        if self.taken:
            return
        self.taken = True
        if not self.future.done():
            self.future.cancel()
        elif not self.future.cancelled() and self.future.exception() is None:
            self.future.result().release()
        self.pool.forget(self)

    def status(self) -> str:
        """Where this request stands, in words, for loading progress."""
        return self.pool.describe_wait(self.waiter)
