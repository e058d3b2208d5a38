"""Build the BlackSheep application: routes, error envelopes, the gateway's lifespan, and
around it all the access log, the browser guard and the header flush for streams."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from blacksheep import Application, Request, Response

from swapgate.proxy.activity.recorder import Recorder
from swapgate.proxy.config.model import Config
from swapgate.proxy.errors import EndpointNotFound
from swapgate.proxy.loghub import LogHub
from swapgate.proxy.web import activity, admin, control, dashboard, metrics, reload
from swapgate.proxy.web.access import AccessLog
from swapgate.proxy.web.cors import CorsPolicy
from swapgate.proxy.web.envelope import error_response, is_anthropic_path
from swapgate.proxy.web.flush import FlushHeaders
from swapgate.proxy.web.gateway import Gateway
from swapgate.proxy.web.guard import BrowserGuard, HostPolicy
from swapgate.proxy.web.inference import INFERENCE_PATHS, handle_inference, handle_upstream
from swapgate.proxy.web.media import BodyKind, check_media
from swapgate.proxy.web.methods import MethodTable, head_of, not_allowed_response
from swapgate.proxy.web.openapi import serve_openapi

GatewayHandler = Callable[[Gateway, Request], Awaitable[Response]]
Handler = Callable[[Request], Awaitable[Response]]
_ANY_METHOD = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
# Inference endpoints that take uploads; every other one reads a JSON body.
_UPLOADS = {
    "/v1/audio/transcriptions": BodyKind.MULTIPART,
    "/v1/audio/translations": BodyKind.MULTIPART,
    "/v1/images/edits": BodyKind.JSON_OR_MULTIPART,
}
# Streams whose headers go out before their first event (see flush.py).
STREAM_PREFIXES = ("/logs/stream", "/api/events")
DEFAULT_LISTEN = "127.0.0.1:8080"


def build_app(
    config: Config, hub: LogHub, *, listen: str = DEFAULT_LISTEN, bound: str | None = None
) -> tuple[AccessLog, Gateway]:
    """The ASGI app (the BlackSheep application inside the guards and the access log) and
    its gateway; the gateway starts and stops with the app's lifespan.

    `listen` is the address as given to `--listen` (`host:port`), `bound` the address the
    socket got: Host headers naming either reach the app (see guard.py)."""
    app = Application(show_error_details=False)
    gateway = Gateway(config, hub)

    async def on_start(_app: Application) -> None:
        await gateway.start()

    async def on_stop(_app: Application) -> None:
        await gateway.stop()

    app.on_start += on_start
    app.on_stop += on_stop
    cors = CorsPolicy(config.browser.allow_origins)
    methods = _add_routes(app, gateway, cors)

    async def not_found(request: Request) -> Response:
        path: str = request.scope["path"]
        wrong_method = methods.not_allowed(request.method, path)
        if wrong_method is not None:
            return not_allowed_response(wrong_method, path)
        msg = f"no endpoint {request.method} {path}; see README for the API"
        return error_response(EndpointNotFound(msg), anthropic=is_anthropic_path(path))

    app.router.fallback = not_found
    listen_hosts = (listen,) if bound is None else (listen, bound)
    hosts = HostPolicy(listen_hosts, config.browser.allowed_hosts, _port(listen))
    guarded = BrowserGuard(FlushHeaders(app, STREAM_PREFIXES), hosts, cors)
    recorder = Recorder(INFERENCE_PATHS, gateway.pool.events.publish, gateway.activity.next_id())
    return AccessLog(guarded, recorder), gateway


def _port(listen: str) -> int | None:
    port = listen.rpartition(":")[2]
    return int(port) if port.isdigit() else None


def _add_routes(app: Application, gateway: Gateway, cors: CorsPolicy) -> MethodTable:
    """Every endpoint, each GET with its HEAD and each path with its CORS preflight; returns
    what methods each path takes."""
    methods = MethodTable()

    async def preflight(request: Request) -> Response:
        return cors.preflight(request)

    def add(
        verbs: tuple[str, ...],
        path: str,
        handler: GatewayHandler,
        *,
        body: BodyKind | None = None,
        public: bool = False,
    ) -> None:
        bound: Handler = partial(handler, gateway)
        if body is not None:
            bound = _media_checked(body, bound)
        for verb in verbs:
            app.router.add(verb, path, gateway.guarded(bound, public=public))
        if "GET" in verbs and "HEAD" not in verbs:
            app.router.add("HEAD", path, gateway.guarded(head_of(bound), public=public))
            verbs = (*verbs, "HEAD")
        app.router.add("OPTIONS", path, preflight)
        methods.add(verbs, path)

    for path in INFERENCE_PATHS:
        add(("POST",), path, handle_inference, body=_UPLOADS.get(path, BodyKind.JSON))
    add(_ANY_METHOD, "/upstream/*", handle_upstream)  # a raw proxy: bodies pass as they are
    add(("GET",), "/v1/models", admin.list_models)
    add(("GET",), "/v1/models/*", admin.retrieve_model)
    add(("GET",), "/running", admin.running)
    add(("POST",), "/api/models/unload", admin.unload_all, body=BodyKind.NONE)
    add(("POST",), "/api/models/unload/*", admin.unload_one, body=BodyKind.NONE)
    add(("POST",), "/api/models/load/*", control.load, body=BodyKind.NONE)
    add(("GET",), "/api/events", control.events)
    add(("GET",), "/unload", admin.unload_all_legacy)
    add(("GET",), "/api/gpu", admin.gpu)
    add(("GET",), "/metrics", metrics.metrics)
    add(("GET",), "/api/config", reload.show_config)
    add(("POST",), "/api/config/reload", reload.reload_config, body=BodyKind.NONE)
    add(("GET",), "/api/activity", activity.activity)
    add(("GET",), "/api/activity.csv", activity.activity_csv)
    add(("GET",), "/api/routes", admin.route_stats)
    add(("POST",), "/api/routes/reset", admin.reset_route_stats, body=BodyKind.NONE)
    add(("GET",), "/health", admin.health, public=True)
    add(("GET",), "/openapi.json", serve_openapi, public=True)
    add(("GET",), "/ui", dashboard.page, public=True)
    add(("GET",), "/ui/*", dashboard.asset, public=True)
    add(("GET",), "/", dashboard.root, public=True)
    add(("GET",), "/logs", admin.logs)
    add(("GET",), "/logs/stream", admin.logs_stream)
    add(("GET",), "/logs/stream/*", admin.logs_stream)
    return methods


def _media_checked(kind: BodyKind, handler: Handler) -> Handler:
    """`handler` behind the Content-Type check for an endpoint that reads `kind`."""

    async def run(request: Request) -> Response:
        check_media(kind, request)
        return await handler(request)

    return run
