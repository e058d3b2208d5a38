"""`--check` and `--print-config` through run_config_command: one pass, --strict, the PATH
check, masked secrets."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from swapgate.proxy.config import check_config, mask_secret
from swapgate.proxy.config.__main__ import program_of, run_config_command, unfound_commands

RunCheck = Callable[..., tuple[int, str, str]]


@pytest.fixture(name="run_check")
def run_check_fixture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> RunCheck:
    """`run_check(yaml_text, *flags)` -> (exit status, stdout, stderr) of `--config F *flags`."""

    def run(text: str, *flags: str) -> tuple[int, str, str]:
        path = tmp_path / "config.yaml"
        path.write_text(text)
        status = run_config_command(["--config", str(path), *flags])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


SERVER = f"{sys.executable} -m http.server ${{PORT}}"  # a program that exists on every machine


def test_errors_and_warnings_come_in_one_pass_in_line_order(run_check: RunCheck) -> None:
    """An error does not hide the warnings: the did-you-mean that explains it is listed too."""
    text = f"models:\n  a:\n    cmdd: srv --port ${{PORT}}\n  b:\n    cmd: {SERVER}\n    ttl: -1\n"
    status, out, err = run_check(text, "--check")
    assert (status, out) == (1, "")
    assert err.splitlines() == [
        "config.yaml: 2 problems, 1 warning",
        "config.yaml:2: models.a.cmd: required — the command that starts this model's server, "
        "or set proxy to use a server that is already running",
        'warning: config.yaml:3: models.a.cmdd: unknown key (did you mean "cmd"?); ignored',
        "config.yaml:6: models.b.ttl: must be >= 0 seconds, got -1",
    ]


def test_unset_env_is_reported_and_the_rest_is_still_checked(run_check: RunCheck) -> None:
    """An unset ${env.X} reads as empty: other problems are found, none that follow from it."""
    text = (
        "models:\n  a:\n    cmd: ${env.SG_UNSET_CMD}\n    ttl: ${env.SG_UNSET_TTL}\n"
        f"  b:\n    cmd: {SERVER}\n    ttl: -2\n    aliases: ['${{env.SG_UNSET_ALIAS}}']\n"
    )
    status, _, err = run_check(text, "--check")
    assert status == 1
    assert err.splitlines() == [
        "config.yaml: 4 problems",
        "config.yaml:3: environment variable 'SG_UNSET_CMD' is not set (${env.SG_UNSET_CMD})",
        "config.yaml:4: environment variable 'SG_UNSET_TTL' is not set (${env.SG_UNSET_TTL})",
        "config.yaml:7: models.b.ttl: must be >= 0 seconds, got -2",
        "config.yaml:8: environment variable 'SG_UNSET_ALIAS' is not set (${env.SG_UNSET_ALIAS})",
    ]


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "models:\n", "models: {}\n"])
def test_no_models_is_a_warning(run_check: RunCheck, text: str) -> None:
    """llama-swap loads a config without models (LSC-007), so it is a warning, not an error."""
    status, out, err = run_check(text, "--check")
    assert (status, out) == (0, "config OK: 0 models, 1 warning\n")
    assert "models: required — at least one model" in err


def test_strict_fails_on_warnings_and_passes_a_clean_config(run_check: RunCheck) -> None:
    """--strict: any warning makes the check fail; a clean config still passes."""
    status, out, err = run_check(
        f"models:\n  a:\n    cmd: {SERVER}\n    ttll: 1\n", "--check", "--strict"
    )
    assert (status, out) == (1, "")
    assert err.splitlines()[0] == "config.yaml: 1 warning (--strict: warnings count as problems)"
    status, out, _ = run_check(f"models:\n  a:\n    cmd: {SERVER}\n", "--check", "--strict")
    assert (status, out) == (0, "config OK: 1 model\n")


def test_strict_print_config_prints_nothing_when_there_are_warnings(run_check: RunCheck) -> None:
    """--print-config --strict exits 1 without JSON when the config has warnings."""
    status, out, _ = run_check(
        "models:\n  a:\n    cmd: s --port ${PORT}\n    ttll: 1\n", "--print-config", "--strict"
    )
    assert (status, out) == (1, "")


def test_check_warns_when_a_program_is_not_on_path(run_check: RunCheck) -> None:
    """--check names a cmd whose program is not found; --print-config does not look."""
    text = "models:\n  a:\n    cmd: sg-no-such-server-xyz --port ${PORT}\n"
    status, _, err = run_check(text, "--check")
    assert status == 0
    assert err == (
        'warning: config.yaml:3: models.a.cmd: "sg-no-such-server-xyz" is not on PATH (checked '
        "when the config is checked; the server may still exist where swapgate runs)\n"
    )
    assert run_check(text, "--print-config")[2] == ""


def test_the_same_missing_program_is_one_warning(run_check: RunCheck) -> None:
    """Several models running the same missing program give one warning with the count."""
    text = "models:\n" + "".join(
        f"  {m}:\n    cmd: sg-no-such-server-xyz --port ${{PORT}}\n" for m in "ab"
    )
    _, out, err = run_check(text, "--check")
    assert out == "config OK: 2 models, 1 warning\n"
    assert err.startswith('warning: config.yaml:3: models.*.cmd: "sg-no-such-server-xyz" is not')
    assert err.endswith("swapgate runs), in 2 models (lines 3, 5)\n")


@pytest.mark.parametrize(
    ("cmd", "program"),
    [
        ("llama-server --port ${PORT}", "llama-server"),
        ("# comment\n/opt/bin/srv \\\n  --port ${PORT}", "/opt/bin/srv"),
        ("env -i HF_HOME=/x vllm serve", "vllm"),
        ("srv 'unclosed", None),
        ("", None),
    ],
)
def test_program_of_a_command(cmd: str, program: str | None) -> None:
    """The program is the first word, after comment lines and an `env` prefix."""
    assert program_of(cmd) == program


def test_path_check_skips_shells_containers_existing_paths_and_external(tmp_path: Path) -> None:
    """Only commands that run a program directly are checked; existing absolute paths pass."""
    models = {
        "bare": "llama-server --port ${PORT}",
        "shell": "bash -c 'exec llama-server --port ${PORT}'",
        "docker": "docker run --rm -p ${PORT}:8080 image",
        "podman": "/usr/bin/podman run image --port ${PORT}",
        "exists": f"{sys.executable} --port ${{PORT}}",
        "missing": "/nonexistent/bin/llama-server --port ${PORT}",
    }
    body = "".join(f"  {name}:\n    cmd: {json.dumps(cmd)}\n" for name, cmd in models.items())
    body += "  remote:\n    proxy: http://127.0.0.1:9\n"
    (tmp_path / "c.yaml").write_text("models:\n" + body)
    result = check_config(str(tmp_path / "c.yaml"), None, {})
    assert result.config is not None
    found = unfound_commands(result.config, result.lines, result.source, which=lambda _: None)
    assert [(issue.path, issue.line) for issue in found] == [
        ("models.bare.cmd", 3),
        ("models.missing.cmd", 13),
    ]
    assert '"/nonexistent/bin/llama-server" is not found' in found[1].message


def test_print_config_masks_api_keys_unless_show_secrets(run_check: RunCheck) -> None:
    """apiKeys and peers' apiKey are masked by default and shown with --show-secrets."""
    text = (
        'apiKeys: ["sk-abcdef1234567f3a", "short"]\npeers:\n  p:\n    proxy: https://x.org\n'
        "    apiKey: key-0123456789\n    models: [m]\nmodels:\n  a:\n    cmd: s --port ${PORT}\n"
    )
    masked = json.loads(run_check(text, "--print-config")[1])
    assert masked["apiKeys"] == ["sk-…7f3a", "***"]
    assert masked["peers"]["p"]["apiKey"] == "key…6789"
    shown = json.loads(run_check(text, "--print-config", "--show-secrets")[1])
    assert shown["apiKeys"] == ["sk-abcdef1234567f3a", "short"]
    assert shown["peers"]["p"]["apiKey"] == "key-0123456789"


@pytest.mark.parametrize(
    ("key", "shown"),
    [("sk-abcdef1234567f3a", "sk-…7f3a"), ("12345678", "***"), ("123456789", "123…6789"), ("", "")],
)
def test_mask_secret(key: str, shown: str) -> None:
    """First 3 and last 4 characters, or *** for keys of 8 characters or fewer."""
    assert mask_secret(key) == shown
