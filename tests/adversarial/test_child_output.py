"""A model that floods its output without a newline still starts at once, and /logs stays bounded."""

from __future__ import annotations

import json
import shlex
import time

import pytest

from tests.support.gateway import fake_cmd, start_swapgate

pytestmark = pytest.mark.integration

FLOOD = 32 * 1024 * 1024
MARK = " … [line cut at 16 KiB]"


def config() -> str:
    flood = f"head -c {FLOOD} /dev/zero | tr '\\0' x; exec " + fake_cmd("flood")
    return f"models:\n  flood:\n    cmd: {json.dumps('sh -c ' + shlex.quote(flood))}\n"


def test_32_mb_without_a_newline_then_start_is_fast_and_logs_stay_bounded() -> None:
    """Printing 32 MB with no newline and then starting the fake takes under 2 s in all,
    and /logs holds the flood as one line cut at 16 KiB."""
    with start_swapgate(config()) as gate:
        started = time.monotonic()
        assert gate.chat("flood")[0] == 200, gate.output()
        took = time.monotonic() - started
        status, _, body = gate.get("/logs")
        assert status == 200
        text = body if isinstance(body, str) else str(body)
    assert took < 2.0
    flood_lines = [line for line in text.splitlines() if line.startswith("[flood] x")]
    assert flood_lines == ["[flood] " + "x" * 16 * 1024 + MARK]
    assert len(text.encode()) < 4 * 1024 * 1024
