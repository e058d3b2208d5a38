"""Command-line options of the fake upstream, parsed into one frozen dataclass."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Options:
    """Everything that shapes the fake's behaviour; times are in seconds."""

    port: int = 0
    host: str = "127.0.0.1"
    model: str = "fake-model"
    say: str = "tok"
    startup_delay: float = 0.0
    ttft: float = 0.0
    tokens: int = 8
    token_interval: float = 0.0
    fail_health: bool = False
    exit_after: int | None = None
    exit_on_start: int | None = None
    ignore_sigterm: bool = False
    quiet: bool = False


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        msg = f"must be >= 0, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        msg = f"must be >= 0, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m swapgate.bench.fake_upstream",
        description="Fake OpenAI/Anthropic-compatible inference server for tests and benchmarks.",
    )
    ap.add_argument("--port", type=_non_negative_int, default=0, help="0 picks a free port")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--model", default="fake-model", help="name in /v1/models and x-fake-model")
    ap.add_argument("--say", default="tok", help="the word every generated token carries")
    ap.add_argument(
        "--startup-delay",
        type=_non_negative_float,
        default=0.0,
        help="seconds during which /health (and every API path) answers 503 Loading model",
    )
    ap.add_argument("--ttft", type=_non_negative_float, default=0.0, help="time to first token")
    ap.add_argument("--tokens", type=_non_negative_int, default=8, help="tokens per completion")
    ap.add_argument("--token-interval", type=_non_negative_float, default=0.0)
    ap.add_argument("--fail-health", action="store_true", help="/health always answers 503")
    ap.add_argument(
        "--exit-after",
        type=_non_negative_int,
        default=None,
        help="exit with status 3 after this many generated tokens (a mid-stream crash)",
    )
    ap.add_argument(
        "--exit-on-start",
        type=int,
        default=None,
        metavar="CODE",
        help="print a fatal error and exit with CODE before binding",
    )
    ap.add_argument("--ignore-sigterm", action="store_true", help="only SIGKILL stops it")
    ap.add_argument("--quiet", action="store_true", help="do not log each request to stdout")
    return ap


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Parse ``argv`` (default: ``sys.argv[1:]``) into :class:`Options`."""
    ns = _parser().parse_args(argv)
    return Options(
        port=ns.port,
        host=ns.host,
        model=ns.model,
        say=ns.say,
        startup_delay=ns.startup_delay,
        ttft=ns.ttft,
        tokens=ns.tokens,
        token_interval=ns.token_interval,
        fail_health=ns.fail_health,
        exit_after=ns.exit_after,
        exit_on_start=ns.exit_on_start,
        ignore_sigterm=ns.ignore_sigterm,
        quiet=ns.quiet,
    )
