"""Request filters: stripParams, setParams, setParamsByID, and when the body is re-serialised."""

from __future__ import annotations

import hashlib
from types import MappingProxyType

import orjson
import pytest

from swapgate.proxy.config.model import ModelSpec
from swapgate.proxy.web.extract import parse_inference_body
from swapgate.proxy.web.filters import filtered, upstream_body
from tests.support.gateway import fake_cmd, start_swapgate

JSON = b"application/json"


def spec(**kw: object) -> ModelSpec:
    return ModelSpec(id="m", cmd="srv", proxy="http://127.0.0.1:1", **kw)  # type: ignore[arg-type]


def test_no_filters_change_nothing() -> None:
    """Without filters the body is not rebuilt: filtered() says None."""
    assert filtered(spec(), "m", {"model": "m", "temperature": 1}) is None


def test_strip_then_set_then_by_id() -> None:
    """Strip first, then setParams, then the requested name's setParamsByID (which wins)."""
    model = spec(
        strip_params=("top_k",),
        set_params=MappingProxyType({"temperature": 0.2, "top_p": 0.9}),
        params_by_id=MappingProxyType({"m-nothink": MappingProxyType({"temperature": 0.7})}),
    )
    body = {"model": "m-nothink", "top_k": 40, "temperature": 1.5, "messages": []}
    assert filtered(model, "m-nothink", body) == {
        "model": "m-nothink",
        "temperature": 0.7,
        "messages": [],
        "top_p": 0.9,
    }
    assert filtered(model, "m", body) == {
        "model": "m-nothink",
        "temperature": 0.2,
        "messages": [],
        "top_p": 0.9,
    }


def test_a_filter_that_changes_nothing_keeps_the_bytes() -> None:
    """setParams equal to what the client sent: the client's exact bytes go upstream."""
    raw = b'{"model": "m",   "temperature": 0.2}'
    body = parse_inference_body(raw, JSON)
    model = spec(set_params=MappingProxyType({"temperature": 0.2}))
    assert upstream_body(model, body, JSON, "m") is raw


def test_changed_body_carries_the_upstream_name() -> None:
    """When a filter changes the body, the upstream name is set in the same serialisation."""
    body = parse_inference_body(b'{"model":"alias","top_k":1}', JSON)
    model = spec(strip_params=("top_k",))
    assert orjson.loads(upstream_body(model, body, JSON, "real")) == {"model": "real"}


@pytest.mark.integration
def test_filters_reach_the_server() -> None:
    """Through a real swapgate, the server receives the filtered body (echo checks its hash)."""
    config = f"""
models:
  m:
    cmd: {fake_cmd("m")}
    aliases: [m-cold]
    filters:
      stripParams: "top_k, seed"
      setParams: {{temperature: 0.2}}
      setParamsByID:
        m-hot: {{temperature: 1.1}}
"""
    with start_swapgate(config) as gate:
        sent = {"model": "m-hot", "query": "q", "top_k": 5, "seed": 1, "temperature": 0.5}
        status, _, echo = gate.post("/v1/rerank", sent)
        assert status == 200, echo
        expected = orjson.dumps({"model": "m-hot", "query": "q", "temperature": 1.1})
        assert echo["body_sha256"] == hashlib.sha256(expected).hexdigest()
