"""ActivityQuery: the filters and page of `GET /api/activity`, and the summary of a page's
matches. Pure: the ring and the SQLite store both answer it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from swapgate.proxy.activity.record import RequestRecord
from swapgate.proxy.errors import BadRequest

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_CLASSES = {"1xx": (100, 200), "2xx": (200, 300), "3xx": (300, 400), "4xx": (400, 500)}
_CLASSES |= {"5xx": (500, 600), "error": (400, 1000)}
ERROR_STATUS = 400


@dataclass(frozen=True, slots=True)
class ActivityQuery:
    """Which records: all filters must hold. `model` matches the asked name or the backend;
    `status` is a code or a class (`2xx`, `4xx`, `5xx`, `error` for 400 and above); `before`
    pages back (records with a smaller id); newest first, at most `limit`."""

    model: str | None = None
    route: str | None = None
    arm: str | None = None
    status_low: int | None = None
    status_high: int | None = None  # exclusive
    since: float | None = None
    until: float | None = None
    before: int | None = None
    limit: int = DEFAULT_LIMIT

    def matches(self, record: RequestRecord) -> bool:
        if self.model is not None and self.model not in (record.model, record.backend):
            return False
        if self.route is not None and record.route != self.route:
            return False
        if self.arm is not None and record.arm != self.arm:
            return False
        low, high = self.status_low, self.status_high
        if low is not None and high is not None and not low <= record.status < high:
            return False
        if self.since is not None and record.time < self.since:
            return False
        if self.until is not None and record.time > self.until:
            return False
        return self.before is None or record.id < self.before


def parse_query(params: Mapping[str, str], *, max_limit: int = MAX_LIMIT) -> ActivityQuery:
    """The query from URL parameters; a bad value is a 400 that names it."""
    status_low = status_high = None
    status = params.get("status")
    if status:
        if status in _CLASSES:
            status_low, status_high = _CLASSES[status]
        else:
            code = _int(params, "status")
            status_low, status_high = code, code + 1
    limit = _int(params, "limit") if params.get("limit") else DEFAULT_LIMIT
    if not 1 <= limit <= max_limit:
        msg = f"limit must be between 1 and {max_limit}, got {limit}"
        raise BadRequest(msg)
    return ActivityQuery(
        model=params.get("model") or None,
        route=params.get("route") or None,
        arm=params.get("arm") or None,
        status_low=status_low,
        status_high=status_high,
        since=_float(params, "since"),
        until=_float(params, "until"),
        before=_int(params, "before") if params.get("before") else None,
        limit=limit,
    )


def _int(params: Mapping[str, str], name: str) -> int:
    try:
        return int(params[name])
    except ValueError:
        msg = f"{name} must be an integer, got {params[name]!r}"
        raise BadRequest(msg) from None


def _float(params: Mapping[str, str], name: str) -> float | None:
    text = params.get(name)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        msg = f"{name} must be a unix time in seconds, got {text!r}"
        raise BadRequest(msg)
    return value


def summarize(records: Iterable[RequestRecord]) -> dict[str, object]:
    """Totals and medians over `records`: what the dashboard's summary row shows."""
    requests = errors = prompt = cached = generated = 0
    ttfts: list[float] = []
    durations: list[float] = []
    decode: list[float] = []
    prefill: list[float] = []
    for record in records:
        requests += 1
        errors += record.status >= ERROR_STATUS
        prompt += record.prompt_tokens or 0
        cached += record.cached_tokens or 0
        generated += record.generated_tokens or 0
        if record.ttft_s is not None:
            ttfts.append(record.ttft_s)
        durations.append(record.duration_s)
        if record.decode_tokens_per_s is not None:
            decode.append(record.decode_tokens_per_s)
        if record.prefill_tokens_per_s is not None:
            prefill.append(record.prefill_tokens_per_s)
    return {
        "requests": requests,
        "errors": errors,
        "prompt_tokens": prompt,
        "cached_tokens": cached,
        "generated_tokens": generated,
        "ttft_p50_s": _rank(ttfts, 0.5),
        "ttft_p95_s": _rank(ttfts, 0.95),
        "duration_p50_s": _rank(durations, 0.5),
        "duration_p95_s": _rank(durations, 0.95),
        "decode_tokens_per_s": _rank(decode, 0.5),
        "prefill_tokens_per_s": _rank(prefill, 0.5),
    }


def _rank(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile: always an observed value (None when there are none)."""
    if not values:
        return None
    values.sort()
    return values[max(math.ceil(fraction * len(values)) - 1, 0)]
