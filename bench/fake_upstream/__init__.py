"""A fast fake OpenAI/Anthropic-compatible inference server for tests and benchmarks.

Run it as ``python -m swapgate.bench.fake_upstream --port P [flags]`` (see ``options.py``). It behaves
like a llama.cpp ``llama-server`` as seen from a proxy: it binds at once, answers ``/health``
with 503 while "loading", serves chat/completions/embeddings/messages as JSON or SSE at a
configurable pace, can crash mid-stream or ignore SIGTERM, echoes any other request, and
counts requests, connections and streams at ``/debug/stats``.

This package imports nothing from ``proxy`` or ``router``.
"""

from swapgate.bench.fake_upstream.options import Options, parse_args
from swapgate.bench.fake_upstream.server import build_app, main

__all__ = ["Options", "build_app", "main", "parse_args"]
