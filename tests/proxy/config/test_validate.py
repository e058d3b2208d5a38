"""Checks on values: every problem reported at once, at its path, with its line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swapgate.proxy.config import LoadedConfig, load_config
from swapgate.proxy.config.build import build_config
from swapgate.proxy.config.issues import Collector, fmt_path
from swapgate.proxy.errors import ConfigError, Issue

GLOBAL_NUMBERS = ("globalTTL", "startPort", "unloadTimeout", "maxRequestBytes", "shutdownTimeout")
MODEL_NUMBERS = ("ttl", "unloadTimeout", "concurrencyLimit", "maxConnections")


def test_path_grammar() -> None:
    """Plain keys join with dots, indices use brackets, other keys are JSON-quoted."""
    assert fmt_path(("models", "qwen2.5:7b", "aliases", 0)) == 'models["qwen2.5:7b"].aliases[0]'


def test_every_problem_is_reported(tmp_path: Path, issues_of: Callable[..., list[Issue]]) -> None:
    """Several bad fields give several issues, in document order, with lines."""
    text = (
        "globalTTL: -1\nmodels:\n  m:\n    cmd: x --port ${PORT}\n    ttl: abc\n    unlisted: yes\n"
    )
    rendered = [i.render() for i in issues_of(tmp_path, text)]
    assert rendered == [
        "config.yaml:1: globalTTL: must be >= 0 seconds, got -1",
        'config.yaml:5: models.m.ttl: expected integer, got string "abc"',
        'config.yaml:6: models.m.unlisted: expected bool, got string "yes" — use true or false',
    ]


def test_duplicate_alias_names_both_models(
    tmp_path: Path, issues_of: Callable[..., list[Issue]]
) -> None:
    """An alias used by two models is an error naming both places."""
    text = "models:\n  a:\n    cmd: a --port ${PORT}\n    aliases: [gpt-4]\n  b:\n    cmd: b --port ${PORT}\n    aliases: [gpt-4]\n"
    (issue,) = issues_of(tmp_path, text)
    assert issue.path == 'models.b.aliases[0] "gpt-4"'
    assert issue.message == "already used by models.a.aliases[0]"


def test_proxy_default_needs_port_in_cmd(
    tmp_path: Path, issues_of: Callable[..., list[Issue]]
) -> None:
    """Without `proxy`, cmd must use ${PORT} (the default proxy does)."""
    (issue,) = issues_of(tmp_path, "models:\n  m:\n    cmd: run\n")
    assert issue.path == "models.m.proxy"


def test_unknown_key_is_a_warning_with_hint(
    tmp_path: Path, load_text: Callable[..., LoadedConfig]
) -> None:
    """A misspelt key loads with a did-you-mean warning."""
    loaded = load_text(tmp_path, "models:\n  llama3:\n    cmd: x --port ${PORT}\n    ttll: 5\n")
    assert [w.render() for w in loaded.warnings] == [
        'config.yaml:4: models.llama3.ttll: unknown key (did you mean "ttl"?); ignored'
    ]


def test_health_check_timeout_is_clamped_with_warning(
    tmp_path: Path, load_text: Callable[..., LoadedConfig]
) -> None:
    """Values below 15 s become 15 s, and a warning says so."""
    loaded = load_text(tmp_path, "healthCheckTimeout: 5\n")
    assert loaded.config.health_check_timeout_s == 15
    assert loaded.warnings[0].path == "healthCheckTimeout"


def test_group_member_in_two_groups(tmp_path: Path, issues_of: Callable[..., list[Issue]]) -> None:
    """A model may belong to one group only."""
    text = "models:\n  a:\n    cmd: a --port ${PORT}\ngroups:\n  g1:\n    members: [a]\n  g2:\n    members: [a]\n"
    (issue,) = issues_of(tmp_path, text)
    assert issue.path == "groups.g2.members[0]"


def test_ports_follow_sorted_ids_and_ttl_inherits(
    tmp_path: Path, load_text: Callable[..., LoadedConfig]
) -> None:
    """Ports go in sorted id order to models using ${PORT}; ttl inherits globalTTL."""
    text = "globalTTL: 30\nmodels:\n  b:\n    cmd: b --port ${PORT}\n  a:\n    cmd: a --port ${PORT}\n  c:\n    cmd: c\n    proxy: http://h:1\n"
    models = load_text(tmp_path, text).config.models
    assert [models[m].port for m in "abc"] == [5800, 5801, None]
    assert models["a"].ttl_s == 30


def _valid_config(n_models: int) -> dict[str, object]:
    models = {
        f"m{i}": {
            "cmd": f"srv{i} --port ${{PORT}}",
            "ttl": 1,
            "unloadTimeout": 2,
            "concurrencyLimit": 3,
            "maxConnections": 4,
        }
        for i in range(n_models)
    }
    return {
        "globalTTL": 5,
        "startPort": 6000,
        "unloadTimeout": 7,
        "maxRequestBytes": 1024,
        "shutdownTimeout": 9,
        "models": models,
    }


@given(
    n_models=st.integers(min_value=1, max_value=4),
    pick=st.integers(min_value=0, max_value=100),
    negative=st.integers(min_value=-(10**6), max_value=-1),
)
def test_one_negative_number_gives_one_issue_at_its_path(
    n_models: int, pick: int, negative: int
) -> None:
    """For a valid config, making one numeric field negative yields exactly one issue there."""
    data = _valid_config(n_models)
    fields = [(key,) for key in GLOBAL_NUMBERS] + [
        ("models", f"m{i}", key) for i in range(n_models) for key in MODEL_NUMBERS
    ]
    target = fields[pick % len(fields)]
    data = json.loads(json.dumps(data))
    holder = data
    for part in target[:-1]:
        holder = holder[part]
    holder[target[-1]] = negative
    out = Collector()
    build_config(data, "config.yaml", out)
    assert [i.path for i in out.errors] == [fmt_path(target)]


def test_valid_generated_config_has_no_issues() -> None:
    """The generator's base config is itself valid."""
    out = Collector()
    build_config(_valid_config(2), "config.yaml", out)
    assert out.errors == []


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A config path that does not exist is reported, not raised as OSError."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "nope.yaml"), None, {})
