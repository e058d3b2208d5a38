"""The README's config snippets and the shipped example configs load; the demo really serves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from swapgate.proxy.config import load_config
from tests.support.gateway import start_swapgate
from tests.support.procs import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
YAML_BLOCKS = re.findall(r"```yaml\n(.*?)```", README, re.DOTALL)
MODELS_FOR_SNIPPETS = """
models:
  gpt-4: {cmd: "server --port ${PORT}"}
  llama3-70b: {cmd: "server --port ${PORT}"}
  chat: {cmd: "server --port ${PORT}"}
  variant-a: {cmd: "server --port ${PORT}"}
  variant-b: {cmd: "server --port ${PORT}"}
  embedder: {cmd: "server --port ${PORT}"}
"""


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=[f"block{i}" for i in range(len(YAML_BLOCKS))])
def test_readme_yaml_blocks_load(block: str, tmp_path: Path) -> None:
    """Every YAML block in README.md is a valid config (snippets get stand-in models)."""
    text = block if "\nmodels:" in "\n" + block else block + MODELS_FOR_SNIPPETS
    path = tmp_path / "config.yaml"
    path.write_text(text)
    loaded = load_config(str(path))
    assert loaded.config.models


@pytest.mark.parametrize(
    "example", sorted((REPO_ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name
)
def test_example_configs_load_without_warnings(example: Path) -> None:
    """The shipped examples load cleanly: no errors and no warnings."""
    loaded = load_config(str(example))
    assert loaded.config.models
    assert loaded.warnings == []


@pytest.mark.integration
def test_demo_config_serves_both_models() -> None:
    """README's first command: the demo answers as alpha, then swaps to bravo."""
    with start_swapgate((REPO_ROOT / "examples" / "demo.yaml").read_text()) as gate:
        status, _, body = gate.chat("alpha")
        assert status == 200, body
        assert "alpha" in body["choices"][0]["message"]["content"]
        status, _, body = gate.chat("bravo")
        assert status == 200, body
        assert "bravo" in body["choices"][0]["message"]["content"]
        assert list(gate.running()) == ["bravo"]
