"""The aiohttp application, the listening socket and the process entry point.

Beyond the API modules this owns ``/health``, ``/debug/stats``, the echo catch-all for any
other path and method, per-request logging, the loading gate and signal handling.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

import orjson
import uvloop
from aiohttp import web

from swapgate.bench.fake_upstream.anthropic_api import AnthropicHandlers
from swapgate.bench.fake_upstream.context import JSON_TYPE, Context, json_response
from swapgate.bench.fake_upstream.openai_api import OpenAIHandlers
from swapgate.bench.fake_upstream.options import Options, parse_args

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

START_FAILURE_MESSAGE = "fatal: cannot load model (simulated)"
_HEALTH_OK = orjson.dumps({"status": "ok"})
_LOADING = orjson.dumps(
    {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
)
_UNHEALTHY = orjson.dumps(
    {"error": {"code": 503, "message": "Model failed to load", "type": "unavailable_error"}}
)


class Service:
    """The endpoints that are not an inference API, plus the request middleware."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.server: web.Server | None = None
        self._log = not ctx.opts.quiet
        self._headers = {"x-fake-model": ctx.opts.model, "x-fake-pid": str(ctx.pid)}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count and log each request; answer 503 for API paths while loading."""
        path = request.path
        if path.startswith("/debug/"):
            return await handler(request)
        self.ctx.stats.requests += 1
        if self._log:
            os.write(1, f"{request.method} {request.raw_path}\n".encode())
        if path != "/health" and self.ctx.loading():
            return web.Response(body=_LOADING, status=503, content_type=JSON_TYPE)
        return await handler(request)

    async def add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        """Tag every response with the fake's model and pid."""
        response.headers.update(self._headers)

    async def health(self, request: web.Request) -> web.Response:
        """``GET /health`` in llama-server's shape: 503 while loading, then 200."""
        if self.ctx.opts.fail_health:
            return web.Response(body=_UNHEALTHY, status=503, content_type=JSON_TYPE)
        if self.ctx.loading():
            return web.Response(body=_LOADING, status=503, content_type=JSON_TYPE)
        return web.Response(body=_HEALTH_OK, content_type=JSON_TYPE)

    async def stats(self, request: web.Request) -> web.Response:
        """``GET /debug/stats``: counters since start."""
        s = self.ctx.stats
        active = len(self.server.connections) if self.server is not None else 0
        return json_response(
            {
                "requests": s.requests,
                "connections_opened": s.connections_opened,
                "connections_active": active,
                "streams_started": s.streams_started,
                "streams_completed": s.streams_completed,
                "streams_cancelled": s.streams_cancelled,
                "streams_active": s.streams_started - s.streams_completed - s.streams_cancelled,
                "pid": self.ctx.pid,
                "model": self.ctx.opts.model,
            }
        )

    async def echo(self, request: web.Request) -> web.Response:
        """Any other path and method: describe exactly what arrived."""
        body = await request.read()
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return json_response(
            {
                "echo": True,
                "method": request.method,
                "path": request.rel_url.raw_path,
                "query": request.rel_url.raw_query_string,
                "model": self.ctx.opts.model,
                "content_type": request.headers.get("Content-Type", ""),
                "body_bytes": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "headers": headers,
            }
        )


def build_app(ctx: Context) -> tuple[web.Application, Service]:
    """The application for ``ctx``; the service still needs its ``server`` set for stats."""
    service = Service(ctx)
    app = web.Application(middlewares=[service.middleware], client_max_size=1 << 30)
    app.on_response_prepare.append(service.add_headers)
    app.add_routes([web.get("/health", service.health), web.get("/debug/stats", service.stats)])
    app.add_routes(OpenAIHandlers(ctx).routes())
    app.add_routes(AnthropicHandlers(ctx).routes())
    # Registered last: aiohttp tries the more specific resources first, and a known path
    # with another method (GET /v1/chat/completions) falls through to the echo.
    app.router.add_route("*", "/{tail:.*}", service.echo)
    return app, service


async def serve(opts: Options) -> None:
    """Bind, announce, and serve until SIGTERM or SIGINT."""
    ctx = Context(opts)
    app, service = build_app(ctx)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    server = runner.server
    if server is None:
        msg = "AppRunner.setup() did not create a server"
        raise RuntimeError(msg)
    service.server = server

    def accept() -> asyncio.Protocol:
        ctx.stats.connections_opened += 1
        return server()

    loop = asyncio.get_running_loop()
    listener = await loop.create_server(accept, opts.host, opts.port, backlog=1024)
    port = listener.sockets[0].getsockname()[1]
    os.write(1, f"fake upstream {opts.model} listening on {opts.host}:{port}\n".encode())
    stop = asyncio.Event()
    signals = [signal.SIGINT] if opts.ignore_sigterm else [signal.SIGINT, signal.SIGTERM]
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    listener.close()
    os.write(1, b"fake upstream stopping\n")
    # Exit without draining: in-flight streams are cut, as when a real server is stopped.
    os._exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake upstream; returns only on a configuration error."""
    opts = parse_args(argv)
    if opts.exit_on_start is not None:
        print(START_FAILURE_MESSAGE, file=sys.stderr, flush=True)
        return opts.exit_on_start
    if opts.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    uvloop.run(serve(opts))
    return 0
