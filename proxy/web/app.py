"""Build the BlackSheep application: routes, error envelopes, the gateway's lifespan and the
access log around it all."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from blacksheep import Application, Request, Response

from swapgate.proxy.config.model import Config
from swapgate.proxy.errors import EndpointNotFound
from swapgate.proxy.loghub import LogHub
from swapgate.proxy.web import admin, control
from swapgate.proxy.web.access import AccessLog
from swapgate.proxy.web.cors import cors_preflight
from swapgate.proxy.web.envelope import error_response, is_anthropic_path
from swapgate.proxy.web.gateway import Gateway
from swapgate.proxy.web.inference import INFERENCE_PATHS, handle_inference, handle_upstream

GatewayHandler = Callable[[Gateway, Request], Awaitable[Response]]
_ANY_METHOD = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


def build_app(config: Config, hub: LogHub) -> tuple[AccessLog, Gateway]:
    """The ASGI app (the BlackSheep application, as `.app`, inside the access log) and its
    gateway; the gateway starts and stops with the app's lifespan."""
    app = Application(show_error_details=False)
    gateway = Gateway(config, hub)

    async def on_start(_app: Application) -> None:
        await gateway.start()

    async def on_stop(_app: Application) -> None:
        await gateway.stop()

    app.on_start += on_start
    app.on_stop += on_stop

    paths: list[str] = []

    def add(
        methods: tuple[str, ...], path: str, handler: GatewayHandler, *, public: bool = False
    ) -> None:
        bound = gateway.guarded(partial(handler, gateway), public=public)
        for method in methods:
            app.router.add(method, path, bound)
        if path not in paths:
            paths.append(path)

    for path in INFERENCE_PATHS:
        add(("POST",), path, handle_inference)
    add(_ANY_METHOD, "/upstream/*", handle_upstream)
    add(("GET",), "/v1/models", admin.list_models)
    add(("GET",), "/v1/models/*", admin.retrieve_model)
    add(("GET",), "/running", admin.running)
    add(("POST",), "/api/models/unload", admin.unload_all)
    add(("POST",), "/api/models/unload/*", admin.unload_one)
    add(("POST",), "/api/models/load/*", control.load)
    add(("GET",), "/api/events", control.events)
    add(("GET",), "/unload", admin.unload_all_legacy)
    add(("GET",), "/api/gpu", admin.gpu)
    add(("GET",), "/api/routes", admin.route_stats)
    add(("POST",), "/api/routes/reset", admin.reset_route_stats)
    add(("GET",), "/health", admin.health, public=True)
    add(("GET",), "/logs", admin.logs)
    add(("GET",), "/logs/stream", admin.logs_stream)
    add(("GET",), "/logs/stream/*", admin.logs_stream)

    async def preflight(request: Request) -> Response:
        return cors_preflight(request)

    for path in paths:  # any endpoint answers a CORS preflight, as in llama-swap
        app.router.add("OPTIONS", path, preflight)

    async def not_found(request: Request) -> Response:
        msg = f"no endpoint {request.method} {request.scope['path']}; see README for the API"
        anthropic = is_anthropic_path(request.scope["path"])
        return error_response(EndpointNotFound(msg), anthropic=anthropic)

    app.router.fallback = not_found
    return AccessLog(app), gateway
