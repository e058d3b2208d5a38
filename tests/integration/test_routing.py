"""Routing rules through a real swapgate: weighted and sticky splits, header/path rules,
response-model rewriting that keeps SSE incremental, and per-variant statistics."""

from __future__ import annotations

import concurrent.futures
import itertools

import pytest

from tests.support.gateway import fake_cmd, start_swapgate
from tests.support.procs import iter_sse

pytestmark = pytest.mark.integration

CONFIG = f"""
models:
  variant-a:
    cmd: {fake_cmd("variant-a", say="aaa", tokens=3)}
  variant-b:
    cmd: {fake_cmd("variant-b", say="bbb", tokens=3)}
  big:
    cmd: {fake_cmd("big", say="big", tokens=6, token_interval=0.1)}
groups:
  ab:
    swap: false
    members: [variant-a, variant-b]
routes:
  - name: premium
    match:
      model: chat
      headers: {{X-Model-Tier: premium}}
    to: big
    rewriteResponseModel: true
  - name: embeddings
    match: {{path: {{prefix: /v1/embeddings}}}}
    to: variant-b
  - name: chat-ab
    match: {{model: chat}}
    split:
      - {{to: variant-a, weight: 70}}
      - {{to: variant-b, weight: 30}}
    sticky: header:X-User-Id
"""


def test_weighted_split_lands_within_three_points_over_2000_requests() -> None:
    """A 70/30 split without sticky keys sends 70 % +-3 of 2,000 requests to variant-a."""
    with start_swapgate(CONFIG) as gate, concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: gate.chat("chat", max_tokens=1), range(2000)))
        assert all(status == 200 for status, _, _ in results)
        served = [headers["x-swapgate-model"] for _, headers, _ in results]
        share = served.count("variant-a") / len(served)
        assert 0.67 <= share <= 0.73, share
        routes = {headers["x-swapgate-route"] for _, headers, _ in results}
        assert routes == {"chat-ab/variant-a", "chat-ab/variant-b"}
        # Both variants stay up side by side (swap: false group): no swapping per request.
        assert set(gate.running()) == {"variant-a", "variant-b"}


def test_sticky_users_never_switch_arms() -> None:
    """Every user id keeps its variant across repeated requests."""
    with start_swapgate(CONFIG) as gate:
        seen: dict[str, set[str]] = {}
        for user, _ in itertools.product(range(40), range(5)):
            status, headers, _ = gate.chat("chat", headers={"X-User-Id": f"user-{user}"})
            assert status == 200
            seen.setdefault(str(user), set()).add(headers["x-swapgate-model"])
        assert all(len(arms) == 1 for arms in seen.values())
        assert {arm for arms in seen.values() for arm in arms} == {"variant-a", "variant-b"}


def test_header_and_path_rules_route_as_written() -> None:
    """A header rule picks `big`; a path-prefix rule sends embeddings to variant-b."""
    with start_swapgate(CONFIG) as gate:
        status, headers, body = gate.chat("chat", headers={"X-Model-Tier": "premium"})
        assert status == 200
        assert headers["x-swapgate-model"] == "big"
        assert headers["x-swapgate-route"] == "premium"
        assert body["model"] == "chat"  # rewriteResponseModel on this rule
        status, headers, _ = gate.post("/v1/embeddings", {"model": "chat", "input": "x"})
        assert status == 200
        assert headers["x-swapgate-model"] == "variant-b"
        # Plain ids still resolve when no rule matches.
        status, headers, _ = gate.chat("variant-a")
        assert (status, headers["x-swapgate-model"]) == (200, "variant-a")
        assert "x-swapgate-route" not in headers


def test_response_model_rewrite_keeps_sse_incremental() -> None:
    """Every SSE chunk reports the asked-for name, and chunks still arrive 100 ms apart."""
    with start_swapgate(CONFIG) as gate:
        chat = {"model": "chat", "stream": True, "messages": [{"role": "user", "content": "x"}]}
        events = list(
            iter_sse(gate.url + "/v1/chat/completions", chat, headers={"X-Model-Tier": "premium"})
        )
        chunks = [e for e in events if e.data != "[DONE]"]
        assert chunks
        assert all('"model":"chat"' in e.data for e in chunks)
        assert not any('"model":"big"' in e.data for e in chunks)
        content = [e for e in chunks if '"content":" big"' in e.data]
        assert len(content) == 6
        assert content[-1].at - content[0].at > 0.4


def test_route_statistics_per_variant_and_reset() -> None:
    """GET /api/routes counts requests, errors and latencies per rule and arm; reset clears."""
    with start_swapgate(CONFIG) as gate:
        for user in range(30):
            gate.chat("chat", headers={"X-User-Id": f"u{user}"})
        status, _, stats = gate.get("/api/routes")
        assert status == 200
        text = str(stats)
        assert "chat-ab" in text
        assert "variant-a" in text
        assert "variant-b" in text
        status, _, _ = gate.post("/api/routes/reset")
        assert status == 200
        _, _, after = gate.get("/api/routes")
        assert "variant-a" not in str(after.get("routes", after))
