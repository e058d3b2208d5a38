"""RequestRecord builders for the activity tests."""

from __future__ import annotations

from typing import Any

from swapgate.proxy.activity.record import RequestRecord


def record(id: int, **fields: Any) -> RequestRecord:  # noqa: A002 (the record's own name)
    values: dict[str, Any] = {
        "id": id,
        "time": 1_800_000_000.0 + id,
        "method": "POST",
        "path": "/v1/chat/completions",
        "endpoint": "/v1/chat/completions",
        "model": "alpha",
        "backend": "alpha",
        "route": "",
        "arm": "",
        "key": "",
        "status": 200,
        "ttft_s": 0.1,
        "duration_s": 1.0,
        "bytes": 100,
        "stream": True,
        "complete": True,
    }
    values.update(fields)
    return RequestRecord(**values)
