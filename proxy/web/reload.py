"""Config endpoints: `POST /api/config/reload` (reload now) and `GET /api/config` (what is
loaded, from which files, and how the last reload went). Both need the admin scope."""

from __future__ import annotations

from http import HTTPStatus

from blacksheep import Request, Response

from swapgate.proxy.config import effective_json
from swapgate.proxy.web.envelope import json_response
from swapgate.proxy.web.gateway import Gateway
from swapgate.proxy.web.reloader import ReloadOutcome


async def reload_config(gateway: Gateway, _request: Request) -> Response:
    """POST /api/config/reload: read the config files again and apply them; 200 with what
    changed (`outcome` applied or unchanged), or 422 with every problem (the old config
    keeps serving)."""
    result = await gateway.reload("api")
    failed = result.outcome is ReloadOutcome.FAILED
    status = HTTPStatus.UNPROCESSABLE_ENTITY if failed else HTTPStatus.OK
    return json_response(result.json(), status)


async def show_config(gateway: Gateway, _request: Request) -> Response:
    """GET /api/config: the effective config as `--print-config` prints it (secrets masked),
    its source files with their SHA-256, when it was loaded, and the last reload."""
    reloader = gateway.reloader
    record: dict[str, object] = {"config": effective_json(gateway.config)}
    if reloader is None:
        record.update(sources=[], loadedAt=None, lastReload=None, watching=False)
    else:
        record.update(
            sources=[{"path": f.path, "sha256": f.sha256} for f in reloader.files],
            loadedAt=round(reloader.loaded_at, 3),
            lastReload=None if reloader.last is None else reloader.last.json(),
            watching=reloader.sources.watch,
        )
    return json_response(record)
