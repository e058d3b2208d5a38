"""The `swapgate` command: --listen parsing, --check, --print-config and --version."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from swapgate.proxy.cli import parse_listen
from tests.support.gateway import SWAPGATE


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("localhost:1", ("localhost", 1)),
        ("example.org:65535", ("example.org", 65535)),
        (":9000", ("127.0.0.1", 9000)),
        ("[::1]:8080", ("::1", 8080)),
        ("[::]:5800", ("::", 5800)),
    ],
)
def test_valid_listen_addresses(value: str, expected: tuple[str, int]) -> None:
    """HOST:PORT, :PORT (loopback) and bracketed IPv6 parse to (host, port)."""
    assert parse_listen(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "8080",
        "localhost",
        "localhost:",
        "localhost:http",
        "localhost:-1",
        "localhost:0",
        "localhost:65536",
        "localhost:80 ",
        "localhost:8o",
        "[::1]",
    ],
)
def test_invalid_listen_addresses_raise(value: str) -> None:
    """Anything without a port in 1..65535 raises ValueError quoting the input."""
    with pytest.raises(ValueError, match="expected HOST:PORT") as caught:
        parse_listen(value)
    assert repr(value) in str(caught.value)


BAD_CONFIG = """models:
  qwen:
    cmd: server --port ${PORT}
    ttl: -5
  llama:
    cmd: server --port ${PORT}
    aliases: [qwen]
"""


def _swapgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SWAPGATE, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_check_accepts_a_good_config_and_lists_every_problem_of_a_bad_one(tmp_path: Path) -> None:
    """--check exits 0 with a summary, or 1 naming each problem at its file:line and path."""
    good = tmp_path / "good.yaml"
    good.write_text(f"models:\n  qwen:\n    cmd: {sys.executable} -m http.server ${{PORT}}\n")
    result = _swapgate("--config", str(good), "--check")
    assert (result.returncode, result.stdout.strip(), result.stderr) == (
        0,
        "config OK: 1 model",
        "",
    )
    bad = tmp_path / "config.yaml"
    bad.write_text(BAD_CONFIG)
    result = _swapgate("--config", str(bad), "--check")
    assert result.returncode == 1
    assert "config.yaml:4: models.qwen.ttl: must be >= 0 seconds, got -5" in result.stderr
    assert 'models.llama.aliases[0] "qwen": already used by models.qwen' in result.stderr


def test_check_lists_errors_and_warnings_together(tmp_path: Path) -> None:
    """swapgate --check prints the problems and the warnings that explain them, in line order."""
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  qwen:\n    command: server --port ${PORT}\n")
    result = _swapgate("--config", str(config), "--check")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "config.yaml: 1 problem, 1 warning",
        "config.yaml:2: models.qwen.cmd: required — the command that starts this model's "
        "server, or set proxy to use a server that is already running",
        "warning: config.yaml:3: models.qwen.command: unknown key; ignored — use cmd",
    ]


def test_check_warns_about_a_program_not_on_path(tmp_path: Path) -> None:
    """swapgate --check says when a cmd's program is not found here, and still exits 0."""
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  a:\n    cmd: sg-absent-server-xyz --port ${PORT}\n")
    result = _swapgate("--config", str(config), "--check")
    assert (result.returncode, result.stdout) == (0, "config OK: 1 model, 1 warning\n")
    assert 'models.a.cmd: "sg-absent-server-xyz" is not on PATH' in result.stderr


def test_print_config_masks_api_keys(tmp_path: Path) -> None:
    """swapgate --print-config never prints an API key in clear by default."""
    config = tmp_path / "config.yaml"
    config.write_text(
        'apiKeys: ["sk-live-0123456789abcd"]\nmodels:\n  a:\n    cmd: s --port ${PORT}\n'
    )
    result = _swapgate("--config", str(config), "--print-config")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["apiKeys"] == ["sk-…abcd"]
    assert "0123456789" not in result.stdout


def test_print_config_shows_assigned_ports_and_defaults(tmp_path: Path) -> None:
    """--print-config prints llama-swap's key names with ${PORT} assigned from startPort."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "startPort: 9100\nmodels:\n  b:\n    cmd: s --port ${PORT}\n  a:\n    cmd: s --port ${PORT}\n"
    )
    result = _swapgate("--config", str(config), "--print-config")
    assert result.returncode == 0, result.stderr
    effective = json.loads(result.stdout)
    assert effective["models"]["a"]["cmd"] == "s --port 9100"
    assert effective["models"]["b"]["proxy"] == "http://localhost:9101"
    assert effective["healthCheckTimeout"] == 120


def test_version_and_missing_config() -> None:
    """--version prints the version; no --config is a usage error (exit 2)."""
    result = _swapgate("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("swapgate ")
    assert _swapgate().returncode == 2


def test_fit_without_budget_or_gpu_refuses_to_serve(tmp_path: Path) -> None:
    """use: fit with no budgetMiB on a machine NVML sees no GPU on exits 1 and says what to set
    (this test machine has no GPU; on one with a GPU the NVML total is the budget)."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "models:\n  a:\n    cmd: srv --port ${PORT}\nrouting:\n  router:\n    use: fit\n"
    )
    done = subprocess.run(
        [SWAPGATE, "--config", str(config), "--listen", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if "NVML sees no GPU" not in done.stderr:
        pytest.skip("NVML sees a GPU here: the budget comes from it")  # not the case in CI
    assert done.returncode == 1
    assert "set budgetMiB" in done.stderr


def test_help_lists_bench_and_the_config_flags() -> None:
    """--help names the bench subcommand, --strict, --show-secrets and the signals."""
    result = _swapgate("--help")
    assert result.returncode == 0
    for text in ("swapgate bench", "--strict", "--show-secrets", "SIGHUP"):
        assert text in result.stdout


def test_strict_makes_warnings_fail_and_show_secrets_prints_keys(tmp_path: Path) -> None:
    """--check --strict exits 1 on a warning; --print-config --show-secrets prints keys in
    clear; either flag without --check/--print-config is a usage error."""
    config = tmp_path / "config.yaml"
    config.write_text(
        'apiKeys: ["sk-live-0123456789abcd"]\n'
        f"models:\n  a:\n    cmd: {sys.executable} -m http.server ${{PORT}}\n    ttll: 5\n"
    )
    assert _swapgate("--config", str(config), "--check").returncode == 0
    strict = _swapgate("--config", str(config), "--check", "--strict")
    assert strict.returncode == 1
    assert "models.a.ttll" in strict.stderr
    shown = _swapgate("--config", str(config), "--print-config", "--show-secrets")
    assert json.loads(shown.stdout)["apiKeys"] == ["sk-live-0123456789abcd"]
    misuse = _swapgate("--config", str(config), "--strict")
    assert misuse.returncode == 2
    assert "go with --check or --print-config" in misuse.stderr


def test_scripts_dir_is_appended_to_path_once() -> None:
    """swapgate's own scripts folder goes last on PATH (the user's programs win), only once."""
    import sysconfig

    from swapgate.proxy.cli import add_scripts_dir_to_path

    environ = {"PATH": "/usr/bin:/bin"}
    add_scripts_dir_to_path(environ)
    add_scripts_dir_to_path(environ)
    assert environ["PATH"] == f"/usr/bin:/bin:{sysconfig.get_path('scripts')}"
