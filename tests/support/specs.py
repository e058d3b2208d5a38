"""ModelSpecs served by the fake upstream, and a runner for async test bodies."""

from __future__ import annotations

import asyncio
import shlex
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from swapgate.proxy.config.model import ModelSpec
from tests.support.procs import REPO_ROOT, free_port_block

T = TypeVar("T")
FAKE = f"{shlex.quote(sys.executable)} -m swapgate.bench.fake_upstream --port ${{PORT}}"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one async test body on a fresh event loop."""
    return asyncio.run(coro)


def fake_spec(model_id: str = "a", flags: str = "", **kw: Any) -> ModelSpec:
    """A model served by bench.fake_upstream on a fresh preferred port."""
    kw.setdefault("unload_timeout_s", 5.0)
    kw.setdefault("port", free_port_block(1))
    return ModelSpec(
        id=model_id,
        cmd=f"{FAKE} --model {model_id} {flags}",
        proxy="http://127.0.0.1:${PORT}",
        env=(("PYTHONPATH", str(REPO_ROOT)),),
        **kw,
    )
