"""`python -m swapgate.proxy.config --config F [--config-dir D] (--print-config | --check) [--strict]
[--show-secrets]`.

`run_config_command(argv)` is the whole command, so the `swapgate` CLI can reuse it:

  --check         one pass over the config: every error and warning, merged in line order,
                  plus a warning for each `cmd` whose program is not found here (PATH check);
                  exit 0 with `config OK: N models`, or 1
  --print-config  the effective config as JSON on stdout (exit 0), or the problems (exit 1)
  --strict        warnings count as problems: exit 1 when there is any (nothing on stdout)
  --show-secrets  print apiKeys and peers' apiKey in clear (masked by default)

The PATH check is the only place the config layer looks at the machine it runs on; it lives
here, in `unfound_commands`, so that loading and validation stay pure.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence

from swapgate.proxy.config import CheckResult, Config, check_config, effective_json
from swapgate.proxy.config.issues import Collector, LineMap, group_model_warnings, in_line_order
from swapgate.proxy.errors import Issue

# Commands run through one of these are not checked: the program is inside them.
WRAPPERS = frozenset(
    {"sh", "bash", "zsh", "dash", "ksh", "fish", "cmd", "cmd.exe", "powershell", "pwsh"}
    | {"docker", "podman"}
)
_NOT_FOUND = "(checked when the config is checked; the server may still exist where swapgate runs)"


def program_of(cmd: str) -> str | None:
    """The program a command line runs (for `env [-i] [VAR=value ...] prog`, prog), or None."""
    lines = [line for line in cmd.splitlines() if not line.lstrip().startswith("#")]
    try:
        words = shlex.split(" ".join(line.rstrip().removesuffix("\\") for line in lines))
    except ValueError:
        return None
    if words and os.path.basename(words[0]) == "env":
        words = words[1:]
        while words and ("=" in words[0] or words[0].startswith("-")):
            words = words[1:]
    return words[0] if words else None


def unfound_commands(
    config: Config,
    lines: LineMap,
    source: str,
    which: Callable[[str], str | None] = shutil.which,
) -> list[Issue]:
    """A warning for each model whose `cmd` runs a program that is not found on this machine.

    Skipped: external models, commands run through a shell, docker or podman, and absolute
    paths that exist.
    """
    out = Collector(lines=lines, default_file=source)
    for model_id, spec in config.models.items():
        program = None if spec.external else program_of(spec.cmd)
        if program is None or os.path.basename(program) in WRAPPERS:
            continue
        if os.path.isabs(program) and os.path.exists(program):
            continue
        if which(program) is None:
            where = "is not on PATH" if os.sep not in program else "is not found"
            out.warn(("models", model_id, "cmd"), f'"{program}" {where} {_NOT_FOUND}')
    return out.warnings


def _parser() -> argparse.ArgumentParser:
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
    parser.add_argument(
        "--strict", action="store_true", help="fail (exit 1) when there are warnings"
    )
    parser.add_argument(
        "--show-secrets", action="store_true", help="print API keys in clear (--print-config)"
    )
    return parser


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _report(result: CheckResult, warnings: list[Issue], failed: bool) -> None:
    """Every issue on stderr in line order; a heading first when the config fails."""
    if failed:
        counts = [_plural(len(result.errors), "problem")] if result.errors else []
        counts += [_plural(len(warnings), "warning")] if warnings else []
        strict = "" if result.errors else " (--strict: warnings count as problems)"
        sys.stderr.write(f"{result.source}: {', '.join(counts)}{strict}\n")
    errors = {id(issue) for issue in result.errors}
    for issue in in_line_order([*result.errors, *warnings]):
        prefix = "" if id(issue) in errors else "warning: "
        sys.stderr.write(f"{prefix}{issue.render()}\n")


def run_config_command(argv: Sequence[str]) -> int:
    """Check the config (--check) or print it (--print-config); 1 on errors, or on warnings
    with --strict."""
    args = _parser().parse_args(list(argv))
    result = check_config(args.config, args.config_dir)
    warnings = list(result.warnings)
    if args.check and result.config is not None:
        found = unfound_commands(result.config, result.lines, result.source)
        warnings = in_line_order(group_model_warnings(in_line_order([*warnings, *found])))
    failed = result.config is None or (args.strict and bool(warnings))
    _report(result, warnings, failed)
    if failed or result.config is None:
        return 1
    if args.print_config:
        shown = effective_json(result.config, show_secrets=args.show_secrets)
        sys.stdout.write(json.dumps(shown, indent=2, sort_keys=True) + "\n")
    else:
        summary = _plural(len(result.config.models), "model")
        extra = f", {_plural(len(warnings), 'warning')}" if warnings else ""
        sys.stdout.write(f"config OK: {summary}{extra}\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_config_command(sys.argv[1:]))
