"""A backend's command lines and its start-up messages, as plain functions of its config.

Split out of backend.py, which owns the state; everything here is pure.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from swapgate.proxy.errors import BackendStartFailed
from swapgate.proxy.lifecycle.child import split_command

log = logging.getLogger("swapgate.backend")


def start_argv(model_id: str, cmd: str) -> list[str]:
    """`cmd` (ports already in) as argv; BackendStartFailed saying what to fix if it is not."""
    try:
        argv = split_command(cmd)
    except ValueError as exc:
        msg = f"model {model_id!r}: cannot parse cmd: {exc}"
        raise BackendStartFailed(msg) from exc
    if not argv:
        msg = f"model {model_id!r}: cmd is empty"
        raise BackendStartFailed(msg)
    return argv


def stop_argv(model_id: str, cmd_stop: str, pid: int, port: int | None) -> list[str] | None:
    """cmdStop with `${PID}` (and `${PORT}`) filled in; None means: send SIGTERM instead."""
    text = cmd_stop.replace("${PID}", str(pid))
    text = text if port is None else text.replace("${PORT}", str(port))
    try:
        return split_command(text) or None
    except ValueError:
        log.warning("model %s: cannot parse cmdStop; sending SIGTERM", model_id)
        return None


def health_url(base: str, check_endpoint: str | None) -> str | None:
    """The URL readiness polls, or None when the model has no health check."""
    return None if check_endpoint is None else base.rstrip("/") + "/" + check_endpoint.lstrip("/")


def tail_text(lines: Sequence[str]) -> str:
    """The last output lines, appended to a start failure's message."""
    return "; last output:\n" + "\n".join(lines) if lines else "; no output"


def external_down(model_id: str, url: str) -> str:
    """Why an external model (no cmd) cannot serve: its server does not answer."""
    return (
        f"model {model_id!r} is external (no cmd) and {url} does not answer 200 — start that "
        f"server, or check models.{model_id}.proxy"
    )


def port_taken(model_id: str, port: int) -> str:
    """Why a healthy answer was not this model's: a process that was there first answered."""
    return (
        f"model {model_id!r}: another process was already listening on port {port} and "
        "answered the health check, not this model's server — stop that process or give the "
        "model another port"
    )
