"""The client-side limits: top-level `maxBufferedRequestBytes` and the `connections` section.

    maxBufferedRequestBytes: 268435456  # request body bytes held at once, all requests
    connections:
      limit: 8192            # client connections at once (default: 8192, fewer open files)
      headerTimeout: 30      # seconds for a request head; also the idle keep-alive timeout
      bodyIdleTimeout: 30    # seconds without a body byte -> 408 (0 = no bound)
      bodyTimeout: 300       # seconds for the whole body -> 408 (0 = no bound)
      keepAlive: true        # HTTP/1 keep-alive

swapgate keys, not in llama-swap. Pure: only the config layer's readers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from swapgate.proxy.config.issues import Collector, Path
from swapgate.proxy.config.issues import describe as describe_value
from swapgate.proxy.config.model import (
    DEFAULT_BODY_IDLE_TIMEOUT_S,
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_MAX_BUFFERED_REQUEST_BYTES,
    Connections,
)
from swapgate.proxy.config.validate import read_bool, read_int, read_map, warn_unknown

SECTION: Path = ("connections",)
KEYS = ("limit", "headerTimeout", "bodyIdleTimeout", "bodyTimeout", "keepAlive")
BUFFERED_KEY = "maxBufferedRequestBytes"
# Granian takes the header timeout in whole milliseconds.
MIN_HEADER_TIMEOUT_S = 0.001


def read_connections(data: Mapping[str, object], out: Collector) -> Connections:
    """The `connections` section of the (macro-expanded) top level."""
    section = read_map(out, SECTION, data.get("connections"))
    warn_unknown(out, SECTION, section, KEYS)
    raw_limit = section.get("limit")
    limit = None if raw_limit is None else read_int(out, (*SECTION, "limit"), raw_limit, 0, 1)
    return Connections(
        limit=limit or None,
        header_timeout_s=read_seconds(
            out,
            (*SECTION, "headerTimeout"),
            section.get("headerTimeout"),
            DEFAULT_HEADER_TIMEOUT_S,
            allow_zero=False,
        ),
        body_idle_timeout_s=read_seconds(
            out,
            (*SECTION, "bodyIdleTimeout"),
            section.get("bodyIdleTimeout"),
            DEFAULT_BODY_IDLE_TIMEOUT_S,
        ),
        body_timeout_s=read_seconds(
            out, (*SECTION, "bodyTimeout"), section.get("bodyTimeout"), DEFAULT_BODY_TIMEOUT_S
        ),
        keep_alive=read_bool(out, (*SECTION, "keepAlive"), section.get("keepAlive"), True),
    )


def read_buffered_bytes(data: Mapping[str, object], max_request_bytes: int, out: Collector) -> int:
    """`maxBufferedRequestBytes`: at least `maxRequestBytes`, so one request at the size limit
    is always accepted while nothing else is held."""
    path: Path = (BUFFERED_KEY,)
    raw = data.get(BUFFERED_KEY)
    default = max(DEFAULT_MAX_BUFFERED_REQUEST_BYTES, max_request_bytes)
    value = read_int(out, path, raw, default, 1, "bytes")
    if value < max_request_bytes:
        out.error(
            path,
            f"must be >= maxRequestBytes ({max_request_bytes} bytes), got {value} — "
            "a body at the size limit could never be accepted; raise it or lower maxRequestBytes",
        )
        return default
    return value


def read_seconds(
    out: Collector, path: Path, raw: object, default: float, *, allow_zero: bool = True
) -> float:
    """A duration in seconds (integer or decimal); 0 only where it means "no bound"."""
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        out.error(path, f"expected number of seconds, got {describe_value(raw)}")
        return default
    value = float(raw)
    least = 0.0 if allow_zero else MIN_HEADER_TIMEOUT_S
    if not math.isfinite(value) or value < least:
        bound = "0 seconds (0 = no bound)" if allow_zero else f"{least} seconds"
        out.error(path, f"must be >= {bound}, got {raw}")
        return default
    return value
