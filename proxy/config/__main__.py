"""`python -m proxy.config --config F [--config-dir D] (--print-config | --check)`.

`run_config_command(argv)` is the whole command, so the `swapgate` CLI can reuse it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from proxy.config import effective_json, load_config
from proxy.errors import ConfigError


def run_config_command(argv: Sequence[str]) -> int:
    """Load the config and print it (--print-config) or a summary (--check); 1 on ConfigError."""
    parser = argparse.ArgumentParser(prog="swapgate", description="Check or print a config.")
    parser.add_argument("--config", help="path to config.yaml")
    parser.add_argument("--config-dir", help="folder of extra YAML files merged into the config")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--print-config", action="store_true", help="print the effective config as JSON"
    )
    mode.add_argument(
        "--check", action="store_true", help="check the config and say how many models"
    )
    args = parser.parse_args(list(argv))
    try:
        loaded = load_config(args.config, args.config_dir)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    for issue in loaded.warnings:
        sys.stderr.write(f"warning: {issue.render()}\n")
    if args.print_config:
        sys.stdout.write(json.dumps(effective_json(loaded.config), indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(f"config OK: {len(loaded.config.models)} models\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_config_command(sys.argv[1:]))
