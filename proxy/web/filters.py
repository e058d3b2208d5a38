"""llama-swap's request filters and the model name sent upstream: the body as the model's
server should see it. The JSON is re-serialised only when something in it changed.

Order, as in llama-swap: `stripParams`, then `setParams`, then `setParamsByID` for the name
the client asked for. `model` is never stripped or set by a filter (the config drops it).
"""

from __future__ import annotations

import orjson

from swapgate.proxy.config.model import ModelSpec
from swapgate.proxy.web.extract import InferenceBody, with_model

JSONObject = dict[str, object]


def filtered(spec: ModelSpec, requested: str, parsed: JSONObject) -> JSONObject | None:
    """The body after the model's filters, or None when they change nothing."""
    by_id = spec.params_by_id.get(requested)
    if not (spec.strip_params or spec.set_params or by_id):
        return None
    result = {k: v for k, v in parsed.items() if k not in spec.strip_params}
    result.update(spec.set_params)
    if by_id:
        result.update(by_id)
    return None if result == parsed else result


def upstream_body(
    spec: ModelSpec, body: InferenceBody, content_type: bytes, upstream_name: str
) -> bytes:
    """The bytes to send upstream: the client's own bytes unless a filter or the name changed."""
    changed = None if body.parsed is None else filtered(spec, body.model, body.parsed)
    if changed is not None:
        return orjson.dumps({**changed, "model": upstream_name})
    if upstream_name == body.model:
        return body.raw
    return with_model(body, content_type, upstream_name)
