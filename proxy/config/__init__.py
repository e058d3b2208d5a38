"""The config layer: read llama-swap's config.yaml (and --config-dir) into an immutable Config.

load_config(path, config_dir, environ) -> LoadedConfig   # raises ConfigError with every issue
effective_json(config) -> dict                            # what --print-config prints
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from proxy.config.build import build_config
from proxy.config.issues import Collector
from proxy.config.model import Config
from proxy.config.printer import effective_json
from proxy.config.sources import load_sources
from proxy.errors import ConfigError, Issue

__all__ = ["Config", "ConfigError", "LoadedConfig", "effective_json", "load_config"]


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A valid config and the warnings found while reading it (unknown keys, clamped values)."""

    config: Config
    warnings: list[Issue]


def load_config(
    config_path: str | None, config_dir: str | None = None, environ: Mapping[str, str] | None = None
) -> LoadedConfig:
    """Read, merge, expand and check the config; raise ConfigError listing every problem."""
    source = Path(config_path).name if config_path else (config_dir or "config")
    out = Collector(default_file=source)
    doc = load_sources(config_path, config_dir, os.environ if environ is None else environ, out)
    out.lines = doc.lines
    config = build_config(doc.data, source, out) if not out.errors else None
    if out.errors or config is None:
        raise ConfigError(out.sorted_errors(), source)
    return LoadedConfig(config, out.warnings)
