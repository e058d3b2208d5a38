"""End to end against real llama.cpp llama-server processes with tiny generated models."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.gateway import start_swapgate
from tests.support.procs import iter_sse, pids_alive

pytestmark = [pytest.mark.integration, pytest.mark.llama]

LLAMA_SERVER = shutil.which("llama-server-vulkan") or str(
    Path(sys.executable).parent / "llama-server-vulkan"
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny GGUF models: one only ever says 'alpha', the other 'bravo'."""
    folder = tmp_path_factory.mktemp("gguf")
    paths = {}
    for word in ("alpha", "bravo"):
        paths[word] = folder / f"{word}.gguf"
        subprocess.run(
            [sys.executable, "-m", "swapgate.bench.tiny_gguf", str(paths[word]), "--say", word],
            check=True,
            capture_output=True,
        )
    return paths


def config_for(models: dict[str, Path]) -> str:
    lines = ["healthCheckTimeout: 60", "models:"]
    for word, path in models.items():
        lines += [
            f"  {word}:",
            f"    cmd: {LLAMA_SERVER} -m {path} --host 127.0.0.1 --port ${{PORT}} -a {word} -c 1024 -np 1 -t 1",
        ]
    return "\n".join(lines) + "\n"


def test_swap_between_real_llama_servers(models: dict[str, Path]) -> None:
    """alpha -> bravo -> alpha, streaming and not: right answers, one server alive at a time."""
    with start_swapgate(config_for(models)) as gate:
        pids: list[int] = []
        for word in ("alpha", "bravo", "alpha"):
            status, _, body = gate.chat(word, max_tokens=4)
            assert status == 200, body
            assert word in body["choices"][0]["message"]["content"]
            chat = {
                "model": word,
                "max_tokens": 4,
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            }
            events = list(iter_sse(gate.url + "/v1/chat/completions", chat, timeout=30))
            assert events[-1].data == "[DONE]"
            assert word in "".join(e.data for e in events)
            running = gate.running()
            assert list(running) == [word]
            pids.append(running[word]["pid"])
            assert pids_alive(pids[:-1]) == []  # the previous server is gone
        assert gate.terminate() == 0
        assert pids_alive(pids) == []
