"""GET /metrics on a real swapgate: the series its requests, starts and swaps leave, and
who may read them."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway import Swapgate, fake_cmd, start_swapgate
from tests.support.procs import http_json, iter_sse, wait_until

pytestmark = pytest.mark.integration

CHAT = "/v1/chat/completions"
CONFIG = f"""
models:
  alpha:
    cmd: {fake_cmd("alpha", say="alpha", tokens=4)}
  beta:
    cmd: {fake_cmd("beta", say="beta", tokens=3)}
routes:
  - name: ab
    match: {{model: chat}}
    split:
      - {{to: beta, weight: 100}}
      - {{to: alpha, weight: 0}}
"""
Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(gate: Swapgate, headers: dict[str, str] | None = None) -> Series:
    status, head, text = gate.get("/metrics", headers=headers)
    assert status == 200, text
    assert head["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def values(series: Series, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: value for (found, labels), value in series.items() if found == name}


def labels(**pairs: str) -> frozenset[tuple[str, str]]:
    return frozenset(pairs.items())


def counted(gate: Swapgate, total: int) -> Series:
    """The first scrape that shows `total` requests (a record is published once the
    answer's last byte went out, which may be just after the client read it)."""

    def ready() -> Series:
        series = scrape(gate)
        return series if sum(values(series, "swapgate_requests_total").values()) >= total else {}

    return wait_until(ready, timeout=10, interval=0.1, message=f"{total} requests counted")


def test_requests_starts_and_swaps_show_in_the_metrics() -> None:
    """Two plain and one streamed answer from alpha, one routed to beta, one 404: each is
    counted with its labels, timed, and its tokens added up; the pool's gauges match."""
    with start_swapgate(CONFIG) as gate:
        assert gate.chat("alpha")[0] == 200
        assert gate.chat("alpha")[0] == 200
        body = {
            "model": "alpha",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        events = list(iter_sse(gate.url + CHAT, body))
        assert events[-1].data == "[DONE]"
        assert gate.chat("chat")[0] == 200  # the rule sends it to beta
        assert gate.chat("nosuch")[0] == 404
        series = counted(gate, 5)

        assert values(series, "swapgate_requests_total") == {
            labels(model="alpha", route="", arm="", endpoint=CHAT, status="200"): 3,
            labels(model="beta", route="ab", arm="beta", endpoint=CHAT, status="200"): 1,
            labels(model="nosuch", route="", arm="", endpoint=CHAT, status="404"): 1,
        }
        alpha = labels(model="alpha", route="", arm="")
        beta = labels(model="beta", route="ab", arm="beta")
        ttft = values(series, "swapgate_time_to_first_token_seconds_count")
        assert ttft == {alpha: 3, beta: 1}
        assert values(series, "swapgate_request_duration_seconds_count") == {alpha: 3, beta: 1}
        # The first answer waited for alpha to start: its latency is in the sum.
        assert values(series, "swapgate_time_to_first_token_seconds_sum")[alpha] > 0
        generated = values(series, "swapgate_generated_tokens_total")
        assert generated == {alpha: 12, beta: 3}
        prompt = values(series, "swapgate_prompt_tokens_total")
        assert prompt[alpha] > 0
        assert prompt[beta] > 0

        # One model at a time: alpha started cold, then beta replaced it.
        assert values(series, "swapgate_swaps_total") == {
            labels(**{"from": "", "to": "alpha"}): 1,
            labels(**{"from": "alpha", "to": "beta"}): 1,
        }
        assert values(series, "swapgate_swap_duration_seconds_count") == {
            labels(to="alpha"): 1,
            labels(to="beta"): 1,
        }
        assert values(series, "swapgate_model_starts_total") == {
            labels(model="alpha", outcome="ready"): 1,
            labels(model="alpha", outcome="failed"): 0,
            labels(model="beta", outcome="ready"): 1,
            labels(model="beta", outcome="failed"): 0,
        }
        states = values(series, "swapgate_model_state")
        assert {key for key, value in states.items() if value == 1} == {
            labels(model="alpha", state="stopped"),
            labels(model="beta", state="ready"),
        }
        in_flight = values(series, "swapgate_in_flight_requests")
        assert in_flight == {labels(model="alpha"): 0, labels(model="beta"): 0}
        queued = values(series, "swapgate_queued_requests")
        assert queued == {labels(model="alpha"): 0, labels(model="beta"): 0}

        gpu = gate.get("/api/gpu")[2]
        gpu_series = {name for name, _ in series if name.startswith("swapgate_gpu_")}
        if gpu["available"]:
            assert gpu_series == {
                "swapgate_gpu_memory_used_bytes",
                "swapgate_gpu_memory_total_bytes",
            }
        else:
            assert gpu_series == set()

        status, head, _ = http_json("HEAD", gate.url + "/metrics")
        assert status == 200
        assert head["content-type"].startswith("text/plain")


def test_a_reload_and_a_busy_model_show_in_the_gauges_and_counters() -> None:
    """A slow stream holds a lease: in-flight reads 1 while it runs; a reload of an
    unchanged file counts as `unchanged`."""
    config = f"""
models:
  slow:
    cmd: {fake_cmd("slow", tokens=200, token_interval=0.02)}
"""
    with start_swapgate(config) as gate:
        body = {"model": "slow", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        stream = iter_sse(gate.url + CHAT, body)
        next(stream)  # the first event: the model runs and the request holds it
        try:
            busy = values(scrape(gate), "swapgate_in_flight_requests")
            assert busy == {labels(model="slow"): 1}
        finally:
            stream.close()
        status, _, result = gate.post("/api/config/reload")
        assert status == 200, result
        reloads = values(scrape(gate), "swapgate_config_reloads_total")
        assert reloads == {
            labels(outcome="applied"): 0,
            labels(outcome="unchanged"): 1,
            labels(outcome="failed"): 0,
        }
        wait_until(
            lambda: values(scrape(gate), "swapgate_in_flight_requests")[labels(model="slow")] == 0,
            timeout=5,
            message="the left stream's lease released",
        )
        # The client left mid-stream, after its 200: counted once the stream was torn down.
        series = counted(gate, 1)
        assert values(series, "swapgate_requests_total") == {
            labels(model="slow", route="", arm="", endpoint=CHAT, status="200"): 1
        }


def test_with_keys_the_metrics_need_an_admin_key() -> None:
    admin, chat = "sk-admin-0123456789", "sk-chat-0123456789"
    config = f"""
keys:
  - {{key: {admin}, name: ops, scopes: [admin]}}
  - {{key: {chat}, name: chat}}
models:
  alpha:
    cmd: {fake_cmd("alpha")}
"""
    with start_swapgate(config) as gate:
        assert gate.get("/metrics")[0] == 401
        status, _, body = gate.get("/metrics", headers={"Authorization": f"Bearer {chat}"})
        assert status == 403
        assert "'admin' scope" in body["error"]["message"]
        series = scrape(gate, {"Authorization": f"Bearer {admin}"})
        assert values(series, "swapgate_model_state")[labels(model="alpha", state="stopped")] == 1
