"""The OpenAPI 3.1 document of swapgate's own endpoints, served at GET /openapi.json.

Written by hand rather than derived from handlers: the handlers take raw requests (bodies are
parsed once, by hand, on the hot path), so there are no typed signatures to derive it from.
tests/proxy/web/test_openapi.py keeps it and the app's route table in step, and a
schemathesis run checks the admin API's answers against it. Inference endpoints are listed
with the one field swapgate reads (`model`); everything else in their bodies is the model
server's business and passes through untouched.
"""

from __future__ import annotations

from typing import Any

from blacksheep import Request, Response

from swapgate.proxy import __version__
from swapgate.proxy.web.envelope import json_response
from swapgate.proxy.web.gateway import Gateway
from swapgate.proxy.web.inference import INFERENCE_PATHS

JSON = "application/json"
_ERROR = {"$ref": "#/components/responses/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _text(description: str, media: str = "text/plain") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": {"type": "string"}}}}


def _model_parameter() -> dict[str, Any]:
    return {
        "name": "model",
        "in": "path",
        "required": True,
        "description": "a model id or alias from the config",
        "schema": {"type": "string"},
    }


_OK = _json(
    {
        "type": "object",
        "required": ["msg"],
        "properties": {"msg": {"type": "string", "const": "ok"}},
    },
    "done",
)
_RUNNING_RECORD = {
    "type": "object",
    "required": ["model", "state", "inFlight", "queued"],
    "properties": {
        "model": {"type": "string"},
        "state": {
            "type": "string",
            "enum": ["stopped", "starting", "ready", "stopping", "failed"],
        },
        "inFlight": {"type": "integer", "minimum": 0},
        "queued": {"type": "integer", "minimum": 0},
        "pid": {"type": ["integer", "null"]},
        "port": {"type": ["integer", "null"]},
        "external": {"type": "boolean"},
    },
}
_RELOAD = {
    "type": "object",
    "required": ["outcome"],
    "properties": {"outcome": {"type": "string", "enum": ["applied", "unchanged", "failed"]}},
}
# The dashboard's files, by kind (/ui/ itself is the page).
_UI_FILE = {
    "description": "the file",
    "content": {
        media: {"schema": {"type": "string"}}
        for media in ("text/html", "text/css", "text/javascript", "image/svg+xml")
    },
}
_MODEL = {
    "type": "object",
    "required": ["id", "object", "created", "owned_by"],
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string", "const": "model"},
        "created": {"type": "integer"},
        "owned_by": {"type": "string"},
    },
}


def _activity_parameters() -> list[dict[str, Any]]:
    """The filters and page of /api/activity (see proxy/activity/query.py)."""
    text = {"type": "string"}
    return [
        {"name": "model", "in": "query", "schema": text},
        {"name": "route", "in": "query", "schema": text},
        {"name": "arm", "in": "query", "schema": text},
        {
            "name": "status",
            "in": "query",
            "schema": text,
            "description": "200, 2xx, 4xx, 5xx or error",
        },
        {"name": "since", "in": "query", "schema": {"type": "number"}},
        {"name": "until", "in": "query", "schema": {"type": "number"}},
        {"name": "before", "in": "query", "schema": {"type": "integer"}},
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
        },
    ]


def _admin_paths() -> dict[str, Any]:
    model = [_model_parameter()]
    return {
        "/health": {
            "get": {
                "summary": "Liveness; needs no API key",
                "security": [],
                "responses": {"200": _text("OK")},
            }
        },
        "/running": {
            "get": {
                "summary": "Every model's state, queue and memory figure",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["running"],
                            "properties": {"running": {"type": "array", "items": _RUNNING_RECORD}},
                        },
                        "the models that are not stopped",
                    ),
                    "401": _ERROR,
                },
            }
        },
        "/v1/models": {
            "get": {
                "summary": "The listed models (OpenAI shape)",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["object", "data"],
                            "properties": {
                                "object": {"const": "list"},
                                "data": {"type": "array", "items": _MODEL},
                            },
                        },
                        "models",
                    ),
                    "401": _ERROR,
                },
            }
        },
        "/v1/models/{model}": {
            "get": {
                "summary": "One model (OpenAI shape)",
                "parameters": model,
                "responses": {"200": _json(_MODEL, "the model"), "401": _ERROR, "404": _ERROR},
            }
        },
        "/api/models/load/{model}": {
            "post": {
                "summary": "Start a model (as a request for it would), without a request",
                "parameters": [
                    *model,
                    {
                        "name": "wait",
                        "in": "query",
                        "required": False,
                        "description": "false: answer 202 at once instead of when it is ready",
                        "schema": {"type": "string", "enum": ["true", "false"]},
                    },
                ],
                "responses": {
                    "200": _json({"type": "object", "required": ["model", "state"]}, "ready"),
                    "202": _json({"type": "object", "required": ["model", "state"]}, "queued"),
                    "401": _ERROR,
                    "404": _ERROR,
                    "503": _ERROR,
                },
            }
        },
        "/api/models/unload": {
            "post": {
                "summary": "Stop every model",
                "responses": {"200": _OK, "401": _ERROR},
            }
        },
        "/api/models/unload/{model}": {
            "post": {
                "summary": "Stop one model",
                "parameters": model,
                "responses": {"200": _text("OK"), "401": _ERROR, "404": _ERROR},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics: requests, latencies, tokens, queue, swaps, GPU; "
                "with keys configured it needs an admin-scoped key",
                "responses": {
                    "200": _text("the text exposition format", "text/plain"),
                    "401": _ERROR,
                    "403": _ERROR,
                },
            }
        },
        "/api/gpu": {
            "get": {
                "summary": "GPUs seen through NVML, or why none are",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["available", "devices"],
                            "properties": {
                                "available": {"type": "boolean"},
                                "devices": {"type": "array"},
                            },
                        },
                        "devices",
                    ),
                    "401": _ERROR,
                },
            }
        },
        "/api/config": {
            "get": {
                "summary": "The effective config (secrets masked), its files and the last reload",
                "responses": {
                    "200": _json(
                        {"type": "object", "required": ["config", "sources", "lastReload"]},
                        "the config",
                    ),
                    "401": _ERROR,
                },
            }
        },
        "/api/config/reload": {
            "post": {
                "summary": "Read the config files again and apply what changed",
                "responses": {
                    "200": _json(_RELOAD, "applied, or the files were unchanged"),
                    "401": _ERROR,
                    "422": _json(_RELOAD, "the new config is wrong; the old one keeps serving"),
                },
            }
        },
        "/api/activity": {
            "get": {
                "summary": "Request records, newest first, with a summary of the matches",
                "parameters": _activity_parameters(),
                "responses": {
                    "200": _json(
                        {"type": "object", "required": ["records", "next", "summary"]},
                        "a page of records",
                    ),
                    "400": _ERROR,
                    "401": _ERROR,
                },
            }
        },
        "/api/activity.csv": {
            "get": {
                "summary": "Every matching request record as CSV",
                "parameters": _activity_parameters(),
                "responses": {
                    "200": _text("records, one row each", "text/csv"),
                    "400": _ERROR,
                    "401": _ERROR,
                },
            }
        },
        "/api/routes": {
            "get": {
                "summary": "Per-rule and per-arm counts and latencies of the routes section",
                "responses": {
                    "200": _json({"type": "object", "required": ["since", "routes"]}, "statistics"),
                    "401": _ERROR,
                },
            }
        },
        "/api/routes/reset": {
            "post": {
                "summary": "Start the route statistics afresh",
                "responses": {"200": _OK, "401": _ERROR},
            }
        },
        "/api/events": {
            "get": {
                "summary": "Server-sent events: a snapshot, then state, queue, swap and memory",
                "responses": {"200": _text("event stream", "text/event-stream"), "401": _ERROR},
            }
        },
        "/logs": {
            "get": {
                "summary": "The recent log lines of swapgate and every model",
                "responses": {"200": _text("log lines"), "401": _ERROR},
            }
        },
        "/logs/stream": {
            "get": {
                "summary": "The log as it is written (add ?no-history to skip what is kept)",
                "responses": {"200": _text("log lines as they come"), "401": _ERROR},
            }
        },
        "/logs/stream/{model}": {
            "get": {
                "summary": "One model's (or `proxy`'s) log as it is written",
                "parameters": model,
                "responses": {"200": _text("log lines as they come"), "401": _ERROR},
            }
        },
        "/unload": {
            "get": {
                "summary": "llama-swap's unload-everything; needs an API key (a bare GET is 405)",
                "responses": {"200": _text("OK"), "401": _ERROR, "405": _ERROR},
            }
        },
        "/ui": {
            "get": {
                "summary": "The web dashboard; the page needs no API key, its calls do",
                "security": [],
                "responses": {"200": _text("the page", "text/html")},
            }
        },
        "/ui/{file}": {
            "get": {
                "summary": "A script, style or icon of the dashboard",
                "security": [],
                "parameters": [
                    {"name": "file", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": _UI_FILE, "404": _ERROR},
            }
        },
        "/": {
            "get": {
                "summary": "Redirects to the dashboard at /ui",
                "security": [],
                "responses": {"302": {"description": "to /ui"}},
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "the OpenAPI document")},
            }
        },
    }


def _inference_paths() -> dict[str, Any]:
    body = {
        "type": "object",
        "required": ["model"],
        "properties": {"model": {"type": "string", "minLength": 1}},
        "additionalProperties": True,
    }
    operation: dict[str, Any] = {
        "summary": "Relayed to the model's server, started or swapped in as needed",
        "tags": ["inference"],
        "requestBody": {"required": True, "content": {JSON: {"schema": body}}},
        "responses": {
            "200": {"description": "the model server's answer, as it sent it"},
            "400": _ERROR,
            "401": _ERROR,
            "404": _ERROR,
            "413": _ERROR,
            "415": _ERROR,
            "429": _ERROR,
            "502": _ERROR,
            "503": _ERROR,
            "504": _ERROR,
        },
    }
    paths: dict[str, Any] = {path: {"post": operation} for path in INFERENCE_PATHS}
    paths["/upstream/{model}/{path}"] = {
        "get": {
            "summary": "Any request, relayed as is to the model's server under `path`",
            "tags": ["inference"],
            "parameters": [
                _model_parameter(),
                {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "responses": {"200": {"description": "the model server's answer"}, "404": _ERROR},
        }
    }
    return paths


def openapi_document(version: str) -> dict[str, Any]:
    """The whole document; `version` is swapgate's."""
    error = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "code": {"type": ["string", "null"]},
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "swapgate",
            "version": version,
            "description": "A model-swapping gateway for local LLM servers. Errors are "
            "OpenAI-shaped (Anthropic-shaped on /v1/messages*).",
        },
        "security": [{"apiKey": []}, {"bearer": []}],
        "paths": {**_admin_paths(), **_inference_paths()},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
            "schemas": {"Error": error},
            "responses": {"Error": _json({"$ref": "#/components/schemas/Error"}, "an error")},
        },
    }


async def serve_openapi(_gateway: Gateway, _request: Request) -> Response:
    """GET /openapi.json (needs no key: it describes the API, it holds nothing of the config)."""
    return json_response(_DOCUMENT)


_DOCUMENT = openapi_document(__version__)
