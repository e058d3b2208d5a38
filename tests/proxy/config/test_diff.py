"""diff(), kept ports and restart-only settings: pure, on configs loaded by the real loader."""

from __future__ import annotations

from pathlib import Path

from swapgate.proxy.config import Config, check_config
from swapgate.proxy.config.diff import ConfigDelta, diff, kept_ports, restart_only_changes
from tests.proxy.config.conftest import LoadText

BASE = """
startPort: 7000
models:
  a:
    cmd: server-a --port ${PORT}
    aliases: [first]
    ttl: 60
  c:
    cmd: server-c --port ${PORT}
    env: ["MODE=fast", "ME=${PORT}"]
  ext:
    proxy: http://10.0.0.9:8080
"""


def reloaded(tmp_path: Path, old: Config, text: str) -> Config:
    """`text` loaded as a reload of `old` would load it (ports kept)."""
    path = tmp_path / "next.yaml"
    path.write_text(text)
    result = check_config(str(path), None, {}, kept_ports=kept_ports(old))
    assert result.errors == []
    assert result.config is not None
    return result.config


def test_the_same_config_changes_nothing(tmp_path: Path, load_text: LoadText) -> None:
    """Loading the same text again: every model unchanged."""
    old = load_text(tmp_path, BASE).config
    assert diff(old, reloaded(tmp_path, old, BASE)) == ConfigDelta(unchanged=("a", "c", "ext"))


def test_a_model_added_in_the_middle_shifts_no_port(tmp_path: Path, load_text: LoadText) -> None:
    """b sorts between a and c: a and c keep 7000 and 7001 (and c's env keeps its ${PORT}),
    b takes the next free port, and nobody counts as changed."""
    old = load_text(tmp_path, BASE).config
    text = BASE + "  b:\n    cmd: server-b --port ${PORT}\n"
    new = reloaded(tmp_path, old, text)
    assert {m: s.port for m, s in new.models.items()} == {
        "a": 7000,
        "b": 7002,
        "c": 7001,
        "ext": None,
    }
    assert dict(new.models["c"].env)["ME"] == "7001"
    assert diff(old, new) == ConfigDelta(unchanged=("a", "c", "ext"), added=("b",))
    fresh = check_config(str(tmp_path / "next.yaml"), None, {}).config  # a restart renumbers
    assert fresh is not None
    assert fresh.models["c"].port == 7002


def test_live_settings_are_not_changes(tmp_path: Path, load_text: LoadText) -> None:
    """Aliases, ttl, names, filters, limits: applied without a restart."""
    old = load_text(tmp_path, BASE).config
    text = BASE.replace("aliases: [first]", "aliases: [one, two]").replace("ttl: 60", "ttl: 5")
    text = text.replace(
        "  c:\n",
        "  c:\n    name: C\n    concurrencyLimit: 3\n    filters:\n      stripParams: top_k\n",
    )
    assert diff(old, reloaded(tmp_path, old, text)).changed == ()


def test_run_settings_are_changes(tmp_path: Path, load_text: LoadText) -> None:
    """cmd, env and proxy decide how a server runs or is reached: each is a change; a model
    left out is removed."""
    old = load_text(tmp_path, BASE).config
    text = (
        BASE.replace("server-a --port", "server-a --ctx 8192 --port")
        .replace("MODE=fast", "MODE=slow")
        .replace("10.0.0.9", "10.0.0.10")
    )
    assert diff(old, reloaded(tmp_path, old, text)).changed == ("a", "c", "ext")
    smaller = BASE.split("  ext:")[0]
    assert diff(old, reloaded(tmp_path, old, smaller)) == ConfigDelta(
        unchanged=("a", "c"), removed=("ext",)
    )


def test_settings_read_at_startup_are_reported(tmp_path: Path, load_text: LoadText) -> None:
    """connections, allowedHosts and logLevel only change with a restart: they are named."""
    old = load_text(tmp_path, BASE).config
    text = "logLevel: debug\nallowedHosts: [gpu.lan]\nconnections:\n  limit: 100\n" + BASE
    assert restart_only_changes(old, reloaded(tmp_path, old, text)) == [
        "connections",
        "allowedHosts/cors",
        "logLevel",
    ]


def test_summary_names_what_moves() -> None:
    """The log line of a reload."""
    delta = ConfigDelta(unchanged=("a",), changed=("b",), added=("c", "d"))
    assert delta.summary() == "2 added (c, d), 1 changed (b)"
    assert ConfigDelta(unchanged=("a",)).summary() == "no model changed"
