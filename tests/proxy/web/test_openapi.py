"""The OpenAPI document: valid, and in step with the routes the app serves."""

from __future__ import annotations

import re
from typing import Any

import schemathesis
from blacksheep import Application

from swapgate.proxy.config.model import Config, ModelSpec
from swapgate.proxy.loghub import LogHub
from swapgate.proxy.web.app import build_app
from swapgate.proxy.web.openapi import openapi_document

_IMPLICIT = {"HEAD", "OPTIONS"}  # every GET has its HEAD, every path its CORS preflight


def _served() -> set[tuple[str, str]]:
    config = Config(models={"a": ModelSpec(id="a", cmd="srv --port ${PORT}", proxy="http://x")})
    access, _ = build_app(config, LogHub())
    app: Any = access.app
    while not isinstance(app, Application):  # the middlewares around the application
        app = app.app
    app.router.apply_routes()  # what the application's start does
    return {
        (method, route.pattern.decode())
        for method, route in app.router.iter_with_methods()  # type: ignore[no-untyped-call]
        if method not in (*_IMPLICIT, "*")  # "*": the fallback (404 or 405)
    }


def _documented() -> set[tuple[str, str]]:
    """(METHOD, route pattern): `/v1/models/{model}` is the router's `/v1/models/*`."""
    found: set[tuple[str, str]] = set()
    for path, operations in openapi_document("test")["paths"].items():
        pattern = re.sub(r"/\{[^}]+\}.*$", "/*", path)
        found.update((method.upper(), pattern) for method in operations)
    return found


def test_the_document_is_valid_openapi() -> None:
    schema = schemathesis.openapi.from_dict(openapi_document("test"))
    assert len(list(schema.get_all_operations())) == len(_documented())


def test_every_served_endpoint_is_documented_and_every_documented_one_served() -> None:
    served = _served()
    documented = _documented()
    # /upstream/* takes every method; the document lists GET, as the others are the same.
    served = {(m, p) for m, p in served if p != "/upstream/*"} | {("GET", "/upstream/*")}
    assert documented == served
