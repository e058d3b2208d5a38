"""The client limits: `maxBufferedRequestBytes` and the `connections` section."""

from __future__ import annotations

import json
from pathlib import Path

from swapgate.proxy.config.model import Connections
from swapgate.proxy.config.printer import effective_json
from tests.proxy.config.conftest import IssuesOf, LoadText

ONE = "models:\n  a:\n    cmd: srv --port ${PORT}\n"
MIB = 1024 * 1024


def test_defaults_are_the_documented_ones(tmp_path: Path, load_text: LoadText) -> None:
    """Without the keys: 256 MiB of bodies, 30 s heads and body pauses, 300 s bodies."""
    config = load_text(tmp_path, ONE).config
    assert config.max_buffered_request_bytes == 256 * MIB
    assert config.connections == Connections(
        limit=None,
        header_timeout_s=30.0,
        body_idle_timeout_s=30.0,
        body_timeout_s=300.0,
        keep_alive=True,
    )


def test_every_key_is_read(tmp_path: Path, load_text: LoadText) -> None:
    """Each key reaches the config; decimals are allowed for durations; 0 turns a body bound off."""
    text = (
        "maxRequestBytes: 1000\nmaxBufferedRequestBytes: 5000\n"
        "connections:\n  limit: 300\n  headerTimeout: 1.5\n  bodyIdleTimeout: 0\n"
        "  bodyTimeout: 2\n  keepAlive: false\n" + ONE
    )
    loaded = load_text(tmp_path, text)
    assert loaded.warnings == []
    assert loaded.config.max_buffered_request_bytes == 5000
    assert loaded.config.connections == Connections(
        limit=300,
        header_timeout_s=1.5,
        body_idle_timeout_s=0.0,
        body_timeout_s=2.0,
        keep_alive=False,
    )


def test_a_large_max_request_raises_the_default_budget(tmp_path: Path, load_text: LoadText) -> None:
    """maxRequestBytes above 256 MiB: the default budget follows it, so that request fits."""
    config = load_text(tmp_path, f"maxRequestBytes: {512 * MIB}\n" + ONE).config
    assert config.max_buffered_request_bytes == 512 * MIB


def test_bad_values_are_located_errors(tmp_path: Path, issues_of: IssuesOf) -> None:
    """Every bad value is reported at its line and path, with what it must be."""
    text = (
        "maxRequestBytes: 2000\nmaxBufferedRequestBytes: 1000\n"
        "connections:\n  limit: 0\n  headerTimeout: 0\n  bodyIdleTimeout: -1\n"
        "  bodyTimeout: soon\n  keepAlive: yes\n" + ONE
    )
    rendered = [i.render() for i in issues_of(tmp_path, text)]
    assert rendered == [
        "config.yaml:2: maxBufferedRequestBytes: must be >= maxRequestBytes (2000 bytes), got "
        "1000 — a body at the size limit could never be accepted; raise it or lower "
        "maxRequestBytes",
        "config.yaml:4: connections.limit: must be >= 1, got 0",
        "config.yaml:5: connections.headerTimeout: must be >= 0.001 seconds, got 0",
        "config.yaml:6: connections.bodyIdleTimeout: must be >= 0 seconds (0 = no bound), got -1",
        'config.yaml:7: connections.bodyTimeout: expected number of seconds, got string "soon"',
        'config.yaml:8: connections.keepAlive: expected bool, got string "yes" — use true or false',
    ]


def test_unknown_keys_warn(tmp_path: Path, load_text: LoadText) -> None:
    """A misspelt key in the section is a warning naming the closest known key."""
    loaded = load_text(tmp_path, "connections:\n  headerTimout: 5\n" + ONE)
    assert [w.render() for w in loaded.warnings] == [
        'config.yaml:2: connections.headerTimout: unknown key (did you mean "headerTimeout"?); ignored'
    ]


def test_print_config_shows_the_section(tmp_path: Path, load_text: LoadText) -> None:
    """--print-config shows the effective values; an unset limit is null (the default)."""
    config = load_text(tmp_path, "connections:\n  bodyTimeout: 60\n" + ONE).config
    shown = json.loads(json.dumps(effective_json(config)))
    assert shown["maxBufferedRequestBytes"] == 256 * MIB
    assert shown["connections"] == {
        "limit": None,
        "headerTimeout": 30,
        "bodyIdleTimeout": 30,
        "bodyTimeout": 60,
        "keepAlive": True,
    }
