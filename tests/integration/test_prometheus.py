"""A real Prometheus scrapes a real swapgate: the series arrive with their labels and
values, the dashboard's queries are valid PromQL over them, and promtool's linter finds
nothing to say about the exposition."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.gateway import Swapgate, fake_cmd, start_swapgate
from tests.support.procs import (
    LOCALHOST,
    REPO_ROOT,
    free_port,
    http_json,
    iter_sse,
    kill_group,
    spawn,
    wait_until,
)

pytestmark = pytest.mark.integration

PROMETHEUS = "/usr/bin/prometheus"
INSTALL = "install it: apt-get install prometheus"
CONFIG = f"""
models:
  alpha:
    cmd: {fake_cmd("alpha", tokens=4)}
  beta:
    cmd: {fake_cmd("beta", tokens=2)}
"""
# Grafana's variables, as a dashboard over the last hour would fill them in.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$model": ".*"}
ANSWERED = 4  # requests below that answer 200 (one more is a 404)


@dataclass(frozen=True, slots=True)
class Prometheus:
    url: str
    log: Path

    def query(self, expr: str) -> list[dict[str, Any]]:
        status, _, body = http_json("GET", f"{self.url}/api/v1/query?query={quote(expr)}")
        assert status == 200, f"{expr}: {body}"
        assert body["status"] == "success", f"{expr}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The value of a query with one result, None while it has none."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


@contextlib.contextmanager
def run_prometheus(target_port: int, tmp: Path, key: str | None = None) -> Iterator[Prometheus]:
    """Prometheus scraping 127.0.0.1:`target_port`/metrics every second (sending `key` as a
    bearer token, read from a file as README's example does), until the block ends."""
    if shutil.which(PROMETHEUS) is None:
        pytest.fail(f"{PROMETHEUS} is missing; {INSTALL}")
    authorization = ""
    if key is not None:
        (tmp / "swapgate.key").write_text(key + "\n")
        authorization = f"""
    authorization:
      credentials_file: {tmp / "swapgate.key"}"""
    config = tmp / "prometheus.yml"
    config.write_text(
        f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: swapgate{authorization}
    static_configs:
      - targets: ["{LOCALHOST}:{target_port}"]
"""
    )
    port = free_port()
    log = tmp / "prometheus.log"
    argv = [
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address={LOCALHOST}:{port}",
    ]
    with log.open("wb") as out:
        proc = spawn(argv, stdout=out, stderr=subprocess.STDOUT)
    prometheus = Prometheus(f"http://{LOCALHOST}:{port}", log)
    try:
        wait_until(lambda: _ready(proc, prometheus), timeout=30, message="prometheus /-/ready")
        yield prometheus
    finally:
        kill_group(proc)


def _ready(proc: subprocess.Popen[bytes], prometheus: Prometheus) -> bool:
    if proc.poll() is not None:
        msg = f"prometheus exited with {proc.returncode}:\n{prometheus.log.read_text()}"
        raise RuntimeError(msg)
    try:
        return http_json("GET", prometheus.url + "/-/ready", timeout=1.0)[0] == 200
    except OSError:
        return False


def make_requests(gate: Swapgate) -> None:
    """Three answers from alpha (one streamed), one from beta, one 404."""
    assert gate.chat("alpha")[0] == 200
    assert gate.chat("alpha")[0] == 200
    body = {"model": "alpha", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    assert list(iter_sse(gate.url + "/v1/chat/completions", body))[-1].data == "[DONE]"
    assert gate.chat("beta")[0] == 200
    assert gate.chat("nosuch")[0] == 404


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Swapgate, Prometheus]]:
    with start_swapgate(CONFIG) as gate:
        make_requests(gate)
        with run_prometheus(gate.port, tmp_path_factory.mktemp("prometheus")) as prometheus:
            yield gate, prometheus


def test_prometheus_scrapes_the_request_series(scraped: tuple[Swapgate, Prometheus]) -> None:
    _, prometheus = scraped

    def all_counted() -> bool:
        return prometheus.value("sum(swapgate_requests_total)") == ANSWERED + 1

    wait_until(all_counted, timeout=30, interval=0.5, message="the requests in Prometheus")
    (target,) = http_json("GET", prometheus.url + "/api/v1/targets")[2]["data"]["activeTargets"]
    assert target["health"] == "up", target["lastError"]
    found = {
        (s["metric"]["model"], s["metric"]["status"], s["metric"]["endpoint"]): float(s["value"][1])
        for s in prometheus.query("swapgate_requests_total")
    }
    assert found == {
        ("alpha", "200", "/v1/chat/completions"): 3,
        ("beta", "200", "/v1/chat/completions"): 1,
        ("nosuch", "404", "/v1/chat/completions"): 1,
    }
    counts = {
        s["metric"]["model"]: float(s["value"][1])
        for s in prometheus.query("swapgate_time_to_first_token_seconds_count")
    }
    assert counts == {"alpha": 3, "beta": 1}
    median = prometheus.value(
        "histogram_quantile(0.5, sum by (le) (swapgate_time_to_first_token_seconds_bucket))"
    )
    assert median is not None
    assert 0 < median <= 600
    # The stream asked for no usage, so only the two plain answers from alpha report any.
    assert prometheus.value("sum(swapgate_generated_tokens_total)") == 2 * 4 + 2
    assert prometheus.value('swapgate_model_state{model="beta", state="ready"}') == 1
    assert prometheus.value("sum(swapgate_swaps_total)") == 2


def test_every_dashboard_query_is_valid_over_the_scraped_series(
    scraped: tuple[Swapgate, Prometheus],
) -> None:
    """Grafana's variables filled in, each query runs; the gauges already have data."""
    _, prometheus = scraped
    wait_until(
        lambda: prometheus.query("swapgate_model_state"), timeout=30, message="a first scrape"
    )
    dashboard = json.loads((REPO_ROOT / "docs" / "grafana-dashboard.json").read_text())
    queries = [
        target["expr"]
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]
    assert queries
    for query in queries:
        for variable, value in GRAFANA_VARIABLES.items():
            query = query.replace(variable, value)
        prometheus.query(query)  # a PromQL error fails the assertion in query()
    assert prometheus.query("sum by (model) (swapgate_queued_requests)")
    assert prometheus.query("sum by (model) (swapgate_in_flight_requests)")


def test_promtool_finds_nothing_to_lint(scraped: tuple[Swapgate, Prometheus]) -> None:
    gate, _ = scraped
    promtool = shutil.which("promtool") or pytest.fail(f"promtool is missing; {INSTALL}")
    status, _, text = gate.get("/metrics")
    assert status == 200
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout + lint.stderr == ""


def test_prometheus_scrapes_with_an_admin_key(tmp_path: Path) -> None:
    """With keys configured, a scrape config holding an admin-scoped key gets the series."""
    key = "sk-metrics-0123456789"
    config = f"""
keys:
  - {{key: {key}, name: prometheus, scopes: [admin]}}
models:
  alpha:
    cmd: {fake_cmd("alpha")}
"""
    with start_swapgate(config) as gate, run_prometheus(gate.port, tmp_path, key) as prometheus:
        wait_until(
            lambda: prometheus.value('swapgate_model_state{model="alpha", state="stopped"}') == 1,
            timeout=30,
            interval=0.5,
            message="a keyed scrape",
        )
        assert prometheus.value('up{job="swapgate"}') == 1
