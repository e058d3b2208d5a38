"""Fixtures shared by the config tests: load a YAML text through the real loader."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from swapgate.proxy.config import LoadedConfig, load_config
from swapgate.proxy.errors import ConfigError, Issue


def _load_text(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> LoadedConfig:
    """Write `text` as config.yaml and load it."""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(str(path), None, environ or {})


def _issues_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[Issue]:
    """The issues of a config that must fail to load."""
    try:
        _load_text(tmp_path, text, environ)
    except ConfigError as exc:
        return exc.issues
    message = "config loaded but was expected to fail"
    raise AssertionError(message)


LoadText = Callable[[Path, str], LoadedConfig]
IssuesOf = Callable[[Path, str], list[Issue]]


@pytest.fixture(name="load_text")
def load_text_fixture() -> Callable[..., LoadedConfig]:
    """`load_text(tmp_path, yaml_text, environ=None)` -> LoadedConfig."""
    return _load_text


@pytest.fixture(name="issues_of")
def issues_of_fixture() -> Callable[..., list[Issue]]:
    """`issues_of(tmp_path, yaml_text, environ=None)` -> the issues of a failing config."""
    return _issues_of
