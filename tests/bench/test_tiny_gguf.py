"""The tiny GGUF generator: reproducible output, and a model real llama.cpp answers from."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from swapgate.bench import tiny_gguf
from tests.support.procs import child_env, free_port, http_json, kill_group, spawn, wait_until

# sha256 of `--say alpha` output with the default shape and seed; any change to the bytes
# written (weights, metadata order, alignment) shows up here.
ALPHA_SHA256 = "e9e33ebe5ea6743c301549334ae87585ec2fdf83448a404f7172ddd267042104"


def _generate(path: Path, *args: str) -> bytes:
    assert tiny_gguf.main([str(path), *args]) == 0
    return path.read_bytes()


def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    """Two runs with the same arguments write the same bytes; another --say or seed differs."""
    first = _generate(tmp_path / "a.gguf", "--say", "alpha")
    second = _generate(tmp_path / "b.gguf", "--say", "alpha")
    assert first == second
    assert hashlib.sha256(first).hexdigest() == ALPHA_SHA256
    assert first[:4] == b"GGUF"
    assert _generate(tmp_path / "c.gguf", "--say", "beta") != first
    assert _generate(tmp_path / "d.gguf", "--say", "alpha", "--seed", "1") != first


def test_cli_writes_the_same_file_as_main(tmp_path: Path) -> None:
    """`python -m swapgate.bench.tiny_gguf OUT --say WORD` is the same generator as main()."""
    out = tmp_path / "cli.gguf"
    done = subprocess.run(
        [sys.executable, "-m", "swapgate.bench.tiny_gguf", str(out), "--say", "alpha"],
        capture_output=True,
        text=True,
        check=True,
        env=child_env(),
    )
    assert "says '\u2581alpha'" in done.stdout
    assert hashlib.sha256(out.read_bytes()).hexdigest() == ALPHA_SHA256


def test_bad_shape_and_unknown_say_token_exit_with_a_message(tmp_path: Path) -> None:
    """Invalid arguments stop the CLI with a message instead of writing a broken file."""
    with pytest.raises(SystemExit, match="divisible"):
        tiny_gguf.main([str(tmp_path / "x.gguf"), "--hidden", "63"])
    with pytest.raises(SystemExit, match="no such token"):
        tiny_gguf.main([str(tmp_path / "x.gguf"), "--say", "<nope>"])
    assert not (tmp_path / "x.gguf").exists()


def _llama_server() -> str:
    found = shutil.which("llama-server-vulkan") or shutil.which(
        "llama-server-vulkan", path=str(Path(sys.executable).parent)
    )
    if found is None:
        pytest.skip("llama-server-vulkan is not installed")
    return found


@pytest.mark.integration
@pytest.mark.llama
def test_llama_server_answers_with_the_say_word(tmp_path: Path) -> None:
    """A real llama-server loads a `--say alpha` model and answers "alpha"."""
    model = tmp_path / "alpha.gguf"
    _generate(model, "--say", "alpha")
    port = free_port()
    argv = [_llama_server(), "-m", str(model), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["-a", "alpha", "-c", "1024", "-np", "1", "-t", "1"]
    log = tmp_path / "llama-server.log"
    with log.open("wb") as out:
        proc = spawn(argv, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert proc.poll() is None, log.read_text(errors="replace")
            try:
                return http_json("GET", url + "/health", timeout=1)[0] == 200
            except OSError:
                return False

        wait_until(healthy, timeout=60, message="llama-server /health 200")
        body = {"model": "alpha", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        status, _, answer = http_json("POST", url + "/v1/chat/completions", body, timeout=60)
    finally:
        kill_group(proc)
    assert status == 200, answer
    assert "alpha" in answer["choices"][0]["message"]["content"]
