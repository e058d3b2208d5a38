"""Where a model's server and swapgate disagree about parallelism, when swapgate can see both.

llama-server answers HTTP from `--threads-http` threads and decodes `-np` requests at once;
swapgate keeps up to `maxConnections` idle keep-alive connections per model and admits up to
`concurrencyLimit` requests. Only values written in the command are compared: a server's own
defaults depend on its machine. Pure.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from swapgate.proxy.config.issues import Collector, Path
from swapgate.proxy.config.model import ModelSpec

_THREADS_HTTP = ("--threads-http",)
_PARALLEL = ("-np", "--parallel")


def warn_parallelism(spec: ModelSpec, out: Collector) -> None:
    """Startup notes for one model whose command states its HTTP threads or slots."""
    words = _words(spec.cmd)
    path: Path = ("models", spec.id)
    threads = _int_flag(words, _THREADS_HTTP)
    if threads is not None and spec.max_connections > threads:
        out.warn(
            (*path, "maxConnections"),
            f"{spec.max_connections} idle connections would hold every one of the server's "
            f"--threads-http {threads} threads — set maxConnections to {threads} or less, "
            "or raise --threads-http",
        )
    slots = _int_flag(words, _PARALLEL)
    limit = spec.concurrency_limit
    if slots is not None and slots > 0 and limit > slots:
        out.warn(
            (*path, "concurrencyLimit"),
            f"admits {limit} requests but the server decodes -np {slots} at once; the rest "
            "wait inside the server, where swapgate cannot see or time them",
        )


def _words(cmd: str) -> list[str]:
    try:
        return shlex.split(cmd)
    except ValueError:  # reported where cmd is parsed for starting
        return []


def _int_flag(words: Sequence[str], names: Sequence[str]) -> int | None:
    """The last value given to one of `names` (`-x N` or `-x=N`), if it is an integer."""
    found: int | None = None
    for i, word in enumerate(words):
        name, eq, value = word.partition("=")
        if name not in names:
            continue
        text = value if eq else (words[i + 1] if i + 1 < len(words) else "")
        try:
            found = int(text)
        except ValueError:
            continue
    return found
