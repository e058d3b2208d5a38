"""Startup notes where a llama-server command and swapgate's limits disagree."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.proxy.config.conftest import LoadText


def warnings_for(tmp_path: Path, load_text: LoadText, model: str) -> list[str]:
    text = "models:\n  m:\n" + model
    return [w.render() for w in load_text(tmp_path, text).warnings]


def test_more_idle_connections_than_http_threads_warns(tmp_path: Path, load_text: LoadText) -> None:
    """maxConnections above --threads-http would let idle connections hold every thread."""
    model = "    cmd: llama-server --port ${PORT} --threads-http 2\n"
    (warning,) = warnings_for(tmp_path, load_text, model)
    assert "models.m.maxConnections: 4 idle connections would hold every one" in warning
    assert "--threads-http 2" in warning


def test_concurrency_limit_above_slots_warns(tmp_path: Path, load_text: LoadText) -> None:
    """A concurrencyLimit above -np admits requests that only queue inside the server."""
    model = "    cmd: llama-server --port ${PORT} -np=2 --threads-http 8\n    concurrencyLimit: 6\n"
    (warning,) = warnings_for(tmp_path, load_text, model)
    assert "models.m.concurrencyLimit: admits 6 requests but the server decodes -np 2" in warning


@pytest.mark.parametrize(
    "model",
    [
        "    cmd: llama-server --port ${PORT}\n",  # nothing stated: nothing to compare
        "    cmd: llama-server --port ${PORT} --threads-http 8 -np 4\n    concurrencyLimit: 4\n",
        "    cmd: llama-server --port ${PORT} --threads-http 2\n    maxConnections: 2\n",
    ],
)
def test_agreeing_or_unstated_values_say_nothing(
    tmp_path: Path, load_text: LoadText, model: str
) -> None:
    """No note when the values agree or the command does not state them."""
    assert warnings_for(tmp_path, load_text, model) == []
