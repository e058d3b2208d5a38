"""Typed request filters on ModelSpec, one warning per key swapgate does not act on, and
models without `cmd` (external servers)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from swapgate.proxy.config import LoadedConfig, effective_json
from swapgate.proxy.errors import Issue

LoadText = Callable[..., LoadedConfig]
IssuesOf = Callable[..., list[Issue]]
FILTERS = """models:
  m:
    cmd: srv --port ${PORT}
    aliases: [m-fast]
    filters:
      stripParams: " top_k, model ,temperature,,top_k"
      setParams:
        model: other
        temperature: 0.2
        provider: {data_collection: deny}
      setParamsByID:
        m-hot: {temperature: 1.0, model: x}
        m-cold: {temperature: 0.1}
"""


def test_filters_are_typed_on_the_model(tmp_path: Path, load_text: LoadText) -> None:
    """stripParams becomes sorted unique names; setParams and setParamsByID become mappings."""
    spec = load_text(tmp_path, FILTERS).config.models["m"]
    assert spec.strip_params == ("temperature", "top_k")
    assert dict(spec.set_params) == {"temperature": 0.2, "provider": {"data_collection": "deny"}}
    assert {name: dict(p) for name, p in spec.params_by_id.items()} == {
        "m-hot": {"temperature": 1.0},
        "m-cold": {"temperature": 0.1},
    }


def test_model_is_never_a_filter_and_filters_are_not_warned(
    tmp_path: Path, load_text: LoadText
) -> None:
    """`model` in a filter is dropped with a warning; the filters themselves are not warned."""
    assert [w.render() for w in load_text(tmp_path, FILTERS).warnings] == [
        'config.yaml:6: models.m.filters.stripParams: "model" is never stripped — swapgate '
        "routes on it",
        'config.yaml:8: models.m.filters.setParams.model: "model" is never set — swapgate '
        "routes on it; use useModelName to change the name sent upstream",
        'config.yaml:12: models.m.filters.setParamsByID.m-hot.model: "model" is never set — '
        "swapgate routes on it; use useModelName to change the name sent upstream",
    ]


def test_models_without_filters_have_empty_ones(tmp_path: Path, load_text: LoadText) -> None:
    """No filters: empty tuple and mappings, and --print-config keeps llama-swap's shape."""
    config = load_text(tmp_path, "models:\n  m:\n    cmd: srv --port ${PORT}\n").config
    spec = config.models["m"]
    assert (spec.strip_params, dict(spec.set_params), dict(spec.params_by_id)) == ((), {}, {})
    shown = effective_json(config)["models"]
    assert isinstance(shown, dict)
    assert shown["m"]["filters"] == {"stripParams": "", "setParams": None, "setParamsByID": None}


@pytest.mark.parametrize(
    ("section", "path", "says"),
    [
        (
            "    capabilities: {tools: true}\n",
            "models.m.capabilities",
            "/v1/models does not list it",
        ),
        ("    compat: {ignoreWebsockets: true}\n", "models.m.compat", "WebSocket"),
        ("peers:\n  p:\n    proxy: https://x.org\n    models: [r]\n", "peers", "404"),
        ("profiles:\n  p:\n    description: d\n    pins: {a: m}\n", "profiles", "404"),
        ("selectors:\n  s:\n    strategy: pin\n    targets: [m]\n", "selectors", "404"),
    ],
)
def test_keys_not_acted_on_warn_once_by_name(
    tmp_path: Path, load_text: LoadText, section: str, path: str, says: str
) -> None:
    """Each llama-swap key swapgate keeps but does not act on gives one warning saying so."""
    base = "models:\n  m:\n    cmd: srv --port ${PORT}\n"
    text = base + section if section.startswith("    ") else section + base
    (warning,) = load_text(tmp_path, text).warnings
    assert warning.path == path
    assert warning.message.startswith("not acted on")
    assert says in warning.message


def test_timeouts_that_take_effect_do_not_warn(tmp_path: Path, load_text: LoadText) -> None:
    """connect/responseHeader/idleConn/keepalive are used by the relay: no warning; the two it
    has no setting for say what covers them."""
    base = "models:\n  m:\n    cmd: srv --port ${PORT}\n    timeouts:\n"
    used = base + "      connect: 5\n      responseHeader: 60\n      idleConn: 10\n"
    assert load_text(tmp_path, used).warnings == []
    (warning,) = load_text(tmp_path, base + "      tlsHandshake: 5\n").warnings
    assert warning.path == "models.m.timeouts.tlsHandshake"
    assert "timeouts.connect covers" in warning.message


def test_capabilities_in_many_models_is_one_warning(tmp_path: Path, load_text: LoadText) -> None:
    """The same not-acted-on key in several models is reported once, with the count."""
    text = "models:\n" + "".join(
        f"  {m}:\n    cmd: s --port ${{PORT}}\n    capabilities: {{tools: true}}\n" for m in "abc"
    )
    (warning,) = load_text(tmp_path, text).warnings
    assert warning.path == "models.*.capabilities"
    assert warning.message.startswith("not acted on yet, in 3 models (lines 4, 7, 10); kept")


def test_model_without_cmd_is_external(tmp_path: Path, load_text: LoadText) -> None:
    """With proxy and no cmd the model loads as external: no port, never started or stopped."""
    text = (
        "models:\n  remote:\n    proxy: http://10.0.0.5:8080\n  local:\n    cmd: s --port ${PORT}\n"
    )
    loaded = load_text(tmp_path, text)
    remote, local = loaded.config.models["remote"], loaded.config.models["local"]
    assert (remote.external, remote.cmd, remote.port, remote.proxy) == (
        True,
        "",
        None,
        "http://10.0.0.5:8080",
    )
    assert (local.external, local.port) == (False, 5800)
    assert loaded.warnings == []
    shown = json.loads(json.dumps(effective_json(loaded.config)))
    assert shown["models"]["remote"]["cmd"] == ""


def test_external_model_ignores_cmd_stop(tmp_path: Path, load_text: LoadText) -> None:
    """cmdStop on a model without cmd is ignored with a warning: swapgate never stops it."""
    text = "models:\n  r:\n    proxy: http://h:1\n    cmdStop: kill it\n"
    (warning,) = load_text(tmp_path, text).warnings
    assert warning.render() == (
        "config.yaml:4: models.r.cmdStop: ignored — a model without cmd is never stopped by "
        "swapgate"
    )


@pytest.mark.parametrize(
    ("body", "line"), [("    ttl: 5\n", 2), ("    cmd: ''\n", 3), ("    cmd: |\n      # only\n", 3)]
)
def test_model_without_cmd_or_proxy_is_an_error(
    tmp_path: Path, issues_of: IssuesOf, body: str, line: int
) -> None:
    """Neither cmd nor proxy: cmd is required, and that is the only problem reported."""
    (issue,) = issues_of(tmp_path, "models:\n  x:\n" + body)
    assert issue.render() == (
        f"config.yaml:{line}: models.x.cmd: required — the command that starts this model's server, "
        "or set proxy to use a server that is already running"
    )


def test_port_in_proxy_without_cmd_is_an_error(tmp_path: Path, issues_of: IssuesOf) -> None:
    """${PORT} is only assigned to a model whose cmd uses it, so a cmd-less proxy cannot use it."""
    (issue,) = issues_of(tmp_path, "models:\n  x:\n    proxy: http://localhost:${PORT}\n")
    assert issue.render() == (
        "config.yaml:3: models.x.proxy: uses ${PORT} but there is no cmd — set proxy to the "
        "server's address"
    )


def test_cmd_of_the_wrong_type_is_one_error(tmp_path: Path, issues_of: IssuesOf) -> None:
    """A list as cmd is a type error; no "required" or ${PORT} error follows from it."""
    (issue,) = issues_of(tmp_path, "models:\n  x:\n    cmd: [srv, --port]\n")
    assert issue.render() == "config.yaml:3: models.x.cmd: expected string, got list"
