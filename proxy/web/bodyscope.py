"""Every HTTP request's hold on the body budget, returned when the request has ended.

An ASGI wrapper (the serving command puts it around the app): it opens a `BodyHold` per
HTTP request, leaves it in the scope for `read_body`, and releases it in `finally` once the
app returns, that is when the response is complete, the stream ended or the client left.
The body may be needed until then: a request waiting for its model keeps it, a retry sends
it again. Imports only the standard library and bodybudget.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from swapgate.proxy.web.bodybudget import BodyBudget, BodyHold

HOLD_KEY = "swapgate.body_hold"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyScope:
    """The ASGI app `app`, with each HTTP request's body bytes counted against `budget`."""

    __slots__ = ("app", "budget")

    def __init__(self, app: ASGIApp, budget: BodyBudget) -> None:
        self.app = app
        self.budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hold = self.budget.hold()
        scope[HOLD_KEY] = hold
        try:
            await self.app(scope, receive, send)
        finally:  # every way out, cancellation included, gives the bytes back
            hold.release()


def hold_of(scope: Mapping[str, Any]) -> BodyHold | None:
    """The request's hold; None where no BodyScope wraps the app (the body is then unbudgeted)."""
    hold = scope.get(HOLD_KEY)
    return hold if isinstance(hold, BodyHold) else None
