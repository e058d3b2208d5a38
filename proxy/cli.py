"""The `swapgate` command: validate or print a config, or serve it with Granian (one process).

Granian runs embedded in this process, so the app, the backend pool and every child live in
one process: SIGKILL of swapgate takes the children with it (PR_SET_PDEATHSIG), which a
separate Granian worker process would not. The only Granian importer.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import gc
import logging
import signal
import sys
from collections.abc import Sequence

import uvloop

from proxy import __version__
from proxy.config import load_config
from proxy.config.__main__ import run_config_command
from proxy.config.model import Config, RouterKind
from proxy.errors import ConfigError
from proxy.loghub import PROXY_SOURCE, LogHub

log = logging.getLogger("swapgate")

DEFAULT_LISTEN = "127.0.0.1:8080"
_GC_THRESHOLDS = (50_000, 20, 20)
_LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swapgate",
        description="Model-swapping gateway for local LLM servers (reads llama-swap configs).",
    )
    parser.add_argument("--config", metavar="PATH", help="YAML config file (llama-swap format)")
    parser.add_argument("--config-dir", metavar="DIR", help="folder of YAML files merged in")
    parser.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"address to serve on (default {DEFAULT_LISTEN}; 0.0.0.0:PORT exposes it)",
    )
    parser.add_argument("--log-level", choices=sorted(_LOG_LEVELS), help="overrides logLevel")
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    parser.add_argument(
        "--print-config", action="store_true", help="print the effective config as JSON"
    )
    parser.add_argument("--version", action="version", version=f"swapgate {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        from bench.__main__ import main as bench_main

        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.config is None and args.config_dir is None:
        print("swapgate: --config PATH is required (see --help)", file=sys.stderr)
        return 2
    if args.print_config or args.check:
        return run_config_command(_config_argv(args))
    try:
        loaded = load_config(args.config, args.config_dir)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    for warning in loaded.warnings:
        print("warning: " + warning.render(), file=sys.stderr)
    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        print(f"swapgate: --listen: {exc}", file=sys.stderr)
        return 2
    problem = placement_problem(loaded.config)
    if problem:
        print(f"swapgate: {problem}", file=sys.stderr)
        return 1
    level = args.log_level or loaded.config.log_level
    uvloop.run(serve(loaded.config, host, port, _LOG_LEVELS.get(level, logging.INFO)))
    return 0


def placement_problem(config: Config) -> str | None:
    """Why the configured placement policy cannot run on this machine, if it cannot."""
    scheduling = config.scheduling
    if scheduling.router is not RouterKind.FIT or scheduling.fit.budget_mib is not None:
        return None
    from proxy.gpu import GpuProbe

    probe = GpuProbe()
    try:
        total = probe.total_mib()
    finally:
        probe.close()
    if total is not None:
        return None
    return (
        "routing.router.use is fit but routing.router.settings.fit.budgetMiB is not set and "
        f"NVML sees no GPU ({probe.reason or 'no device'}) — set budgetMiB to the memory the "
        "models may share, in MiB"
    )


def _config_argv(args: argparse.Namespace) -> list[str]:
    argv = ["--print-config" if args.print_config else "--check"]
    if args.config:
        argv += ["--config", args.config]
    if args.config_dir:
        argv += ["--config-dir", args.config_dir]
    return argv


def parse_listen(value: str) -> tuple[str, int]:
    """'HOST:PORT' (or ':PORT', or '[::1]:PORT') -> (host, port)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        msg = f"expected HOST:PORT, got {value!r}"
        raise ValueError(msg)
    return host.strip("[]") or "127.0.0.1", int(port_text)


class _HubHandler(logging.Handler):
    """Copies swapgate's own log records into the log hub (GET /logs)."""

    def __init__(self, hub: LogHub) -> None:
        super().__init__()
        self._hub = hub

    def emit(self, record: logging.LogRecord) -> None:
        self._hub.write(PROXY_SOURCE, self.format(record))


def _setup_logging(hub: LogHub, level: int) -> None:
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    stderr = logging.StreamHandler(sys.stderr)
    hub_handler = _HubHandler(hub)
    for handler in (stderr, hub_handler):
        handler.setFormatter(formatter)
    root = logging.getLogger("swapgate")
    root.setLevel(level)
    root.handlers[:] = [stderr, hub_handler]
    root.propagate = False


async def serve(config: Config, host: str, port: int, level: int) -> None:
    """Serve until SIGINT/SIGTERM: then refuse new work, drain, stop every child, return."""
    from granian.constants import HTTPModes, Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    from proxy.web.app import build_app

    hub = LogHub()
    _setup_logging(hub, level)
    app, gateway = build_app(config, hub)
    atexit.register(gateway.pool.kill_all_now)  # last resort if we leave by another path
    server = Server(
        app,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        http=HTTPModes.http1,
        backlog=2048,
        # Granian warns that embedded mode is experimental on every start; only its errors
        # matter to users (its debug output still shows with --log-level debug).
        log_level=LogLevels.error if level > logging.DEBUG else LogLevels.debug,
        log_access=False,
    )
    # The request path allocates little that forms cycles: collect the young generation less
    # often (it costs several percent of CPU under load), and keep startup objects out of it.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    async def stop_gracefully() -> None:
        log.info("stopping: draining in-flight requests (up to %.0fs)", config.shutdown_timeout_s)
        await gateway.drain(config.shutdown_timeout_s)
        server.stop()  # type: ignore[no-untyped-call]

    def on_signal() -> None:
        if stopping:  # a second signal: stop now
            server.stop()  # type: ignore[no-untyped-call]
            return
        stopping.append(loop.create_task(stop_gracefully()))

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    log.info(
        "swapgate %s serving %d models on http://%s:%d", __version__, len(config.models), host, port
    )
    try:
        await server.serve()
    finally:
        await gateway.stop()
        gateway.pool.kill_all_now()
