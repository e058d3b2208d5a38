"""docs/grafana-dashboard.json reads only series swapgate exports, shows every one of them,
and every panel is importable (a datasource from the import input, at least one query)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from swapgate.proxy.config.model import Config, ModelSpec
from swapgate.proxy.lifecycle.pool import BackendPool
from swapgate.proxy.metrics import GatewayMetrics
from tests.support.procs import REPO_ROOT

DASHBOARD = REPO_ROOT / "docs" / "grafana-dashboard.json"
NAME = re.compile(r"swapgate_[a-z_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


def load() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def panels(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that shows data (rows hold none), also those inside collapsed rows."""
    for panel in document["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def exported() -> frozenset[str]:
    config = Config(models={"a": ModelSpec(id="a", cmd="srv --port ${PORT}", proxy="http://x")})
    return GatewayMetrics(BackendPool(config, on_output=lambda _source, _line: None)).metric_names()


def used(document: dict[str, Any], names: frozenset[str]) -> set[str]:
    """Metric names in every query (histogram suffixes stripped where the base is one)."""
    queries = [t["expr"] for p in panels(document) for t in p["targets"]]
    queries += [v["query"]["query"] for v in document["templating"]["list"]]
    found = set()
    for name in (m for query in queries for m in NAME.findall(query)):
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name.removesuffix(suffix) in names:
                name = name.removesuffix(suffix)
        found.add(name)
    return found


def test_the_dashboard_reads_exactly_the_exported_series() -> None:
    names = exported()
    found = used(load(), names)
    assert found - names == set(), "queries name series swapgate does not export"
    assert names - found == set(), "exported series no panel shows"


def test_every_panel_has_the_import_datasource_and_a_query() -> None:
    document = load()
    assert [i["name"] for i in document["__inputs"]] == ["DS_PROMETHEUS"]
    assert document["schemaVersion"] >= 36
    shown = list(panels(document))
    assert len(shown) >= 10
    for panel in shown:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]
    for variable in document["templating"]["list"]:
        assert variable["datasource"] == DATASOURCE


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    document = load()
    ids = [p["id"] for p in document["panels"]]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in document["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
