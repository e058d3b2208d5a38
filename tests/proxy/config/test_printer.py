"""--print-config: llama-swap's names and shapes, ports assigned, and the CLI entry point."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from swapgate.proxy.config import LoadedConfig, effective_json
from swapgate.proxy.config.__main__ import run_config_command

CONFIG = "macros:\n  srv: server\nmodels:\n  m:\n    cmd: ${srv} --port ${PORT}\n    aliases: [a1]\n    metadata:\n      port: ${PORT}\n"


def test_effective_json_expands_port(
    tmp_path: Path, load_text: Callable[..., LoadedConfig]
) -> None:
    """cmd and proxy show the assigned port; metadata keeps the int type."""
    model = effective_json(load_text(tmp_path, CONFIG).config)["models"]
    assert isinstance(model, dict)
    assert model["m"]["cmd"] == "server --port 5800"
    assert model["m"]["proxy"] == "http://localhost:5800"
    assert model["m"]["metadata"] == {"port": 5800}
    assert model["m"]["aliases"] == ["a1"]


def test_spec_keeps_port_placeholder(
    tmp_path: Path, load_text: Callable[..., LoadedConfig]
) -> None:
    """ModelSpec keeps ${PORT} so the runtime can move the server; with_port renders it."""
    spec = load_text(tmp_path, CONFIG).config.models["m"]
    assert spec.cmd == "server --port ${PORT}"
    assert spec.with_port(7000) == ("server --port 7000", "http://localhost:7000")


def test_print_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--print-config prints JSON and exits 0."""
    (tmp_path / "c.yaml").write_text(CONFIG)
    assert run_config_command(["--config", str(tmp_path / "c.yaml"), "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["startPort"] == 5800


def test_check_command_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--check exits 1 and prints every problem on an invalid config."""
    (tmp_path / "c.yaml").write_text("globalTTL: -1\nstartPort: 0\n")
    assert run_config_command(["--config", str(tmp_path / "c.yaml"), "--check"]) == 1
    err = capsys.readouterr().err
    assert "c.yaml: 2 problems" in err
    assert "c.yaml:2: startPort: must be >= 1, got 0" in err
