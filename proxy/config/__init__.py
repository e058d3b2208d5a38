"""The config layer: read llama-swap's config.yaml (and --config-dir) into an immutable Config.

check_config(path, config_dir, environ) -> CheckResult   # one pass: errors AND warnings
load_config(path, config_dir, environ) -> LoadedConfig   # raises ConfigError with every issue
effective_json(config, show_secrets=False) -> dict        # what --print-config prints
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from swapgate.proxy.config.build import build_config
from swapgate.proxy.config.issues import Collector, LineMap
from swapgate.proxy.config.model import Config
from swapgate.proxy.config.printer import effective_json, mask_secret
from swapgate.proxy.config.sources import load_sources
from swapgate.proxy.errors import ConfigError, Issue

__all__ = [
    "CheckResult",
    "Config",
    "ConfigError",
    "LoadedConfig",
    "check_config",
    "effective_json",
    "load_config",
    "mask_secret",
]


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A valid config and the warnings found while reading it (unknown keys, clamped values)."""

    config: Config
    warnings: list[Issue]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Everything one pass over the config found, each list in document order.

    `config` is None when there are errors. `lines` maps every YAML path to its (line, file),
    for checks made later (the PATH check of `--check`).
    """

    source: str
    config: Config | None
    errors: list[Issue]
    warnings: list[Issue]
    lines: LineMap = field(default_factory=dict)


def check_config(
    config_path: str | None,
    config_dir: str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    kept_ports: Mapping[str, int] | None = None,
) -> CheckResult:
    """Read, merge, expand and check the config, collecting every error and warning.

    Only a source that cannot be read or parsed stops the walk; an unset `${env.NAME}` is
    reported and read as empty, and nothing that follows from it is reported again.
    `kept_ports` (a reload) keeps each model's previous port (see `diff.kept_ports`).
    """
    source = Path(config_path).name if config_path else (config_dir or "config")
    out = Collector(default_file=source)
    doc = load_sources(config_path, config_dir, os.environ if environ is None else environ, out)
    out.lines = doc.lines
    config = None if out.broken else build_config(doc.data, source, out, kept_ports)
    errors = out.sorted_errors()
    if config is None and not errors:  # pragma: no cover - broken always records an error
        errors = [Issue("", "the config could not be read", None, source)]
    return CheckResult(source, None if errors else config, errors, out.sorted_warnings(), doc.lines)


def load_config(
    config_path: str | None, config_dir: str | None = None, environ: Mapping[str, str] | None = None
) -> LoadedConfig:
    """Read, merge, expand and check the config; raise ConfigError listing every problem."""
    result = check_config(config_path, config_dir, environ)
    if result.config is None:
        raise ConfigError(result.errors, result.source)
    return LoadedConfig(result.config, result.warnings)
