"""RequestRecord: what one inference request was and how it went. Stdlib only."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRecord:
    """One finished inference request (or `/upstream/...` request).

    Times are seconds; token counts and speeds are None where the backend did not report
    them (OpenAI and Anthropic `usage`, llama-server `timings`) and they cannot be derived.
    `model` is the name the client asked for, `backend` the model id that served it (empty
    when none did), `route` and `arm` the rule and split variant that routed it (empty when
    no rule did), `key` the name of the API key used (empty without keys).
    """

    id: int  # increasing within one process; the SQLite store keeps its own row ids
    time: float  # unix time the request arrived
    method: str
    path: str  # as requested (an `/upstream/...` path in full)
    endpoint: str  # the inference path, or "/upstream" for every `/upstream/...` request
    model: str
    backend: str
    route: str
    arm: str
    key: str
    status: int  # 499 when the client left before an answer
    ttft_s: float | None  # arrival to the first answer text sent (else the first body bytes)
    duration_s: float  # arrival to the last body bytes
    bytes: int  # response body bytes sent
    stream: bool  # the answer was an event stream
    complete: bool  # False when the response was cut short (upstream failed, client left)
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    generated_tokens: int | None = None
    prefill_tokens_per_s: float | None = None
    decode_tokens_per_s: float | None = None
