"""Reloading the config while swapgate serves: real swapgate, real fake upstreams.

Each test edits the config file swapgate was started with and reloads it (API, SIGHUP or
--watch-config), then checks which servers kept running and what the requests got.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.gateway import Swapgate, fake_cmd, start_swapgate
from tests.support.procs import SseParser, iter_sse, pids_alive, wait_until

pytestmark = pytest.mark.integration

STREAM_TOKENS = 12


def models_yaml(models: dict[str, str], *, together: bool = True, extra: str = "") -> str:
    """A config of fake models (id -> the word it says); with `together`, all in one group
    that runs them side by side."""
    lines = ["models:"]
    for model, word in models.items():
        lines += [
            f"  {model}:",
            f"    cmd: {fake_cmd(model, say=word, tokens=STREAM_TOKENS, token_interval=0.05)}",
        ]
    if together:
        members = ", ".join(models)
        lines += [
            "groups:",
            "  all:",
            "    swap: false",
            "    exclusive: false",
            f"    members: [{members}]",
        ]
    return "\n".join(lines) + "\n" + extra


def rewrite(gate: Swapgate, yaml: str) -> None:
    """Replace the config file, keeping the startPort line start_swapgate put first."""
    assert gate.config_path is not None
    start_port = gate.config_path.read_text().splitlines()[0]
    assert start_port.startswith("startPort:")
    gate.config_path.write_text(start_port + "\n" + yaml)


def reload(gate: Swapgate) -> tuple[int, dict[str, Any]]:
    status, _, body = gate.post("/api/config/reload", timeout=30.0)
    return status, body


def said(body: dict[str, Any]) -> str:
    return str(body["choices"][0]["message"]["content"])


def stream(gate: Swapgate, model: str) -> list[str]:
    """A streamed chat, read to the end: every data line."""
    chat = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    return [event.data for event in iter_sse(gate.url + "/v1/chat/completions", chat, timeout=30)]


def tokens_in(events: list[str]) -> int:
    return sum(
        1
        for data in events
        if data != "[DONE]" and json.loads(data)["choices"][0]["delta"].get("content")
    )


Events = list[tuple[str, dict[str, Any]]]


@contextmanager
def events_until(
    gate: Swapgate, done: Callable[[Events], bool], timeout: float = 20.0
) -> Iterator[concurrent.futures.Future[Events]]:
    """Read /api/events (name, payload) in the background until `done(events)` holds; the
    future has them. The reader is subscribed when the block begins."""
    out: Events = []
    parts = urlsplit(gate.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    conn.request("GET", "/api/events")
    response = conn.getresponse()
    assert response.status == 200

    def read() -> Events:
        parser = SseParser()
        try:
            while not (out and done(out)) and (chunk := response.read1(65536)):
                out.extend(
                    (event.event or "", json.loads(event.data))
                    for event in parser.feed(chunk, time.monotonic())
                )
        finally:
            conn.close()
        return out

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(read)
        wait_until(lambda: any(name == "snapshot" for name, _ in out), message="event snapshot")
        yield future


def test_adding_a_model_while_another_streams_leaves_it_running() -> None:
    """A model added (in the middle of the sorted ids) becomes available while a stream on
    another runs to its end; the running server keeps its pid and port, and no model's
    ${PORT} moves."""
    with start_swapgate(models_yaml({"a": "alpha", "c": "charlie"})) as gate:
        assert gate.chat("a")[0] == 200
        before = gate.running()["a"]
        ports = {m: r["port"] for m, r in gate.get("/api/config")[2]["config"]["models"].items()}
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            streaming = pool.submit(stream, gate, "a")
            wait_until(lambda: gate.running()["a"]["inFlight"] == 1, message="a streaming")
            rewrite(gate, models_yaml({"a": "alpha", "b": "bravo", "c": "charlie"}))
            status, result = reload(gate)
            assert status == 200, result
            assert (result["outcome"], result["added"], result["changed"]) == ("applied", ["b"], [])
            assert gate.running()["a"]["inFlight"] == 1  # still streaming through the reload
            assert tokens_in(streaming.result()) == STREAM_TOKENS
        after = gate.running()["a"]
        assert (after["pid"], after["port"], after["state"]) == (
            before["pid"],
            before["port"],
            "ready",
        )
        status, _, body = gate.chat("b")
        assert status == 200, body
        assert "bravo" in said(body)
        assert gate.running()["a"]["pid"] == before["pid"]
        models = gate.get("/api/config")[2]["config"]["models"]
        assert {m: models[m]["port"] for m in ports} == ports
        assert models["b"]["port"] not in ports.values()


def test_changing_one_models_cmd_restarts_only_that_one() -> None:
    """Of two running models, only the one whose cmd changed is restarted (on its port)."""
    with start_swapgate(models_yaml({"a": "alpha", "b": "bravo"})) as gate:
        assert gate.chat("a")[0] == 200
        assert gate.chat("b")[0] == 200
        before = gate.running()
        rewrite(gate, models_yaml({"a": "alpha", "b": "bravo-two"}))
        status, result = reload(gate)
        assert status == 200, result
        assert (result["changed"], result["unchanged"]) == (["b"], ["a"])
        wait_until(lambda: "b" not in gate.running(), message="b stopped")
        assert pids_alive([before["b"]["pid"]]) == []
        status, _, body = gate.chat("b")
        assert status == 200, body
        assert "bravo-two" in said(body)
        running = gate.running()
        assert running["a"]["pid"] == before["a"]["pid"]
        assert running["b"]["pid"] != before["b"]["pid"]
        assert running["b"]["port"] == before["b"]["port"]


def test_removing_a_streaming_model_lets_the_stream_finish_then_stops_it() -> None:
    """A removed model refuses new requests at once (404), finishes its stream, then stops."""
    with start_swapgate(models_yaml({"a": "alpha", "c": "charlie"})) as gate:
        assert gate.chat("a")[0] == 200
        pid = gate.running()["a"]["pid"]
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            streaming = pool.submit(stream, gate, "a")
            wait_until(lambda: gate.running()["a"]["inFlight"] == 1, message="a streaming")
            rewrite(gate, models_yaml({"c": "charlie"}))
            status, result = reload(gate)
            assert (status, result["removed"]) == (200, ["a"]), result
            status, _, body = gate.chat("a")
            assert (status, body["error"]["code"]) == (404, "model_not_found")
            assert tokens_in(streaming.result()) == STREAM_TOKENS
        wait_until(lambda: pids_alive([pid]) == [], message="a's server stopped")
        wait_until(lambda: "a" not in gate.running(), message="a gone from /running")
        assert gate.chat("c")[0] == 200


def test_invalid_edits_keep_the_old_config_and_report_every_problem() -> None:
    """Bad YAML, then two semantic errors: each reload fails with every problem in --check
    format (in the answer, in GET /api/config and on /api/events); the old config serves."""

    def two_failed(events: Events) -> bool:
        return [p["outcome"] for n, p in events if n == "config_reloaded"] == ["failed"] * 2

    with (
        start_swapgate(models_yaml({"a": "alpha"}, together=False)) as gate,
        events_until(gate, two_failed) as seen,
    ):
        assert gate.chat("a")[0] == 200
        pid = gate.running()["a"]["pid"]
        rewrite(gate, "models:\n  a:\n    cmd: [unclosed\n")
        status, result = reload(gate)
        assert (status, result["outcome"]) == (422, "failed"), result
        assert result["problems"][0] == "config.yaml: 1 problem"
        assert any(
            line.startswith("config.yaml:") and line != "config.yaml: 1 problem"
            for line in result["problems"]
        )

        rewrite(
            gate,
            models_yaml({"a": "alpha"}, together=False)
            + "  b:\n    cmd: x --port ${PORT}\n    ttl: -5\n    concurrencyLimit: -1\n",
        )
        status, result = reload(gate)
        assert status == 422, result
        problems = result["problems"]
        assert problems[0] == "config.yaml: 2 problems"
        assert any(":" in p and "models.b.ttl: must be >= 0" in p for p in problems), problems
        assert any("models.b.concurrencyLimit" in p for p in problems), problems
        shown = gate.get("/api/config")[2]
        assert shown["lastReload"]["outcome"] == "failed"
        assert shown["lastReload"]["problems"] == problems
        assert sorted(shown["config"]["models"]) == ["a"]
        status, _, body = gate.chat("a")
        assert status == 200, body
        assert gate.running()["a"]["pid"] == pid
        reloads = [p for n, p in seen.result(timeout=20) if n == "config_reloaded"]
        assert [p["problems"] for p in reloads][1] == problems
        assert "still serving the previous config" in gate.output()


def test_requests_spread_over_a_reload_are_all_answered() -> None:
    """200 requests while a's cmd changes: every one is answered 200 by the old or the new
    server, and every request sent after the reload returned gets the new one."""
    with start_swapgate(models_yaml({"a": "one"}, together=False)) as gate:
        assert gate.chat("a")[0] == 200
        reloaded = threading.Event()
        answers: list[tuple[bool, int, str]] = []

        def ask(i: int) -> None:
            after = reloaded.is_set()
            status, _, body = gate.chat("a", stream=False)
            answers.append((after, status, said(body) if status == 200 else json.dumps(body)))
            if i == 60:
                rewrite(gate, models_yaml({"a": "two"}, together=False))
                assert reload(gate)[0] == 200
                reloaded.set()

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(ask, range(200)))
        assert len(answers) == 200
        assert [a for a in answers if a[1] != 200] == []
        words = {text.split()[0] for _, _, text in answers}
        assert words <= {"one", "two"}, words
        assert "two" in words
        assert all(text.split()[0] == "two" for after, _, text in answers if after)


def test_sighup_and_the_watcher_reload_like_the_api() -> None:
    """With --watch-config an edit is applied on its own; SIGHUP applies the next one."""
    with start_swapgate(
        models_yaml({"a": "alpha"}, together=False), extra_args=["--watch-config"]
    ) as gate:
        rewrite(gate, models_yaml({"a": "alpha", "b": "bravo"}, together=False))
        wait_until(
            lambda: (gate.get("/api/config")[2]["lastReload"] or {}).get("added") == ["b"],
            timeout=10,
            message="the watcher applied the edit",
        )
        last = gate.get("/api/config")[2]["lastReload"]
        assert (last["trigger"], last["outcome"]) == ("watch", "applied")
        assert "bravo" in said(gate.chat("b")[2])

        gate.proc.send_signal(signal.SIGHUP)
        wait_until(
            lambda: gate.get("/api/config")[2]["lastReload"]["trigger"] == "SIGHUP",
            message="SIGHUP reload",
        )
        assert gate.get("/api/config")[2]["lastReload"]["outcome"] == "unchanged"

    with start_swapgate(models_yaml({"a": "alpha", "b": "bravo"}, together=False)) as gate:
        rewrite(gate, models_yaml({"a": "alpha"}, together=False))
        gate.proc.send_signal(signal.SIGHUP)
        wait_until(
            lambda: (gate.get("/api/config")[2]["lastReload"] or {}).get("removed") == ["b"],
            message="SIGHUP applied",
        )
        assert gate.chat("b")[0] == 404
        assert gate.proc.poll() is None  # SIGHUP no longer ends swapgate


def test_rapid_successive_edits_apply_once_in_order() -> None:
    """Five edits in quick succession are one reload, and the last edit is what serves."""
    base = models_yaml({"a": "alpha"}, together=False)
    with start_swapgate(base, extra_args=["--watch-config"]) as gate:
        for i in range(1, 6):
            rewrite(gate, models_yaml({"a": "alpha", "b": f"v{i}"}, together=False))
            time.sleep(0.02)
        wait_until(
            lambda: gate.get("/api/config")[2]["lastReload"] is not None,
            timeout=10,
            message="a reload",
        )
        time.sleep(1.0)  # a second reload would have come by now (the quiet period is 0.3 s)
        assert gate.output().count("config reloaded (watch)") == 1, gate.output()
        status, _, body = gate.chat("b")
        assert status == 200, body
        assert "v5" in said(body)
