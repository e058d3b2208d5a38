"""The `swapgate` command: validate or print a config, or serve it with Granian (one process).

Granian runs embedded in this process, so the app, the backend pool and every child live in
one process: SIGKILL of swapgate takes the children with it (PR_SET_PDEATHSIG), which a
separate Granian worker process would not. The only Granian importer.

swapgate opens the listening socket itself, without SO_REUSEPORT, and hands its descriptor
to Granian: Granian's own sockets always set SO_REUSEPORT, which lets a second swapgate bind
the same port and have the kernel split requests between the two.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import gc
import logging
import os
import socket
import sys
import sysconfig
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvloop

from swapgate.proxy import __version__
from swapgate.proxy.config import load_config
from swapgate.proxy.config.__main__ import run_config_command
from swapgate.proxy.config.model import Config, RouterKind
from swapgate.proxy.config.watch import ConfigSources
from swapgate.proxy.errors import ConfigError
from swapgate.proxy.listener import (
    BACKLOG,
    ClientLimits,
    Tls,
    client_limits,
    exposure_warning,
    format_address,
    listen_error,
    open_listener,
    tls_problem,
)
from swapgate.proxy.loghub import LogHub
from swapgate.proxy.logsink import setup_logging
from swapgate.proxy.stopper import Stopper

if TYPE_CHECKING:  # both imported when serving only: --check stays light
    from granian.server.embed import Server


log = logging.getLogger("swapgate")

DEFAULT_LISTEN = "127.0.0.1:8080"
_GC_THRESHOLDS = (50_000, 20, 20)
_LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
_EPILOG = """\
subcommands:
  swapgate bench ...   benchmark harness: direct versus through swapgate, swap, saturation,
                       compare, gate and memory runs (swapgate bench --help)

signals: SIGINT/SIGTERM drain for up to shutdownTimeout seconds, then end what still runs,
stop every model server and exit 0; a second SIGINT/SIGTERM kills the model servers and
exits at once with 128 + the signal number (130, 143); SIGHUP reloads the config (as
POST /api/config/reload and --watch-config do).
"""


def build_parser() -> argparse.ArgumentParser:
    """The options of `swapgate` (`swapgate bench` has its own, see swapgate.bench)."""
    parser = argparse.ArgumentParser(
        prog="swapgate",
        description="Model-swapping gateway for local LLM servers (reads llama-swap configs). "
        "`swapgate bench` runs the benchmarks.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="PATH", help="YAML config file (llama-swap format)")
    parser.add_argument("--config-dir", metavar="DIR", help="folder of YAML files merged in")
    parser.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"address to serve on (default {DEFAULT_LISTEN}; 0.0.0.0:PORT exposes it)",
    )
    parser.add_argument(
        "--tls-cert-file", metavar="PATH", help="serve HTTPS with this PEM certificate (chain)"
    )
    parser.add_argument(
        "--tls-key-file", metavar="PATH", help="the PEM private key of --tls-cert-file"
    )
    parser.add_argument("--log-level", choices=sorted(_LOG_LEVELS), help="overrides logLevel")
    parser.add_argument(
        "--watch-config",
        action="store_true",
        help="reload the config when --config or a file of --config-dir changes",
    )
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    parser.add_argument(
        "--print-config", action="store_true", help="print the effective config as JSON"
    )
    parser.add_argument(
        "--strict", action="store_true", help="with --check/--print-config: warnings fail (exit 1)"
    )
    parser.add_argument(
        "--show-secrets",
        action="store_true",
        help="with --print-config: print apiKeys in clear (masked by default)",
    )
    parser.add_argument(
        "--no-access-log",
        action="store_true",
        help="do not log a line per request (logger swapgate.access)",
    )
    parser.add_argument("--version", action="version", version=f"swapgate {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `swapgate ARGV`: check, print, serve or benchmark; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    add_scripts_dir_to_path(os.environ)
    if argv[:1] == ["bench"]:
        # The harness is a separate program: the product never imports it.
        os.execv(sys.executable, [sys.executable, "-m", "swapgate.bench", *argv[1:]])  # noqa: S606
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config is None and args.config_dir is None:
        print("swapgate: --config PATH is required (see --help)", file=sys.stderr)
        return 2
    if args.print_config or args.check:
        return run_config_command(_config_argv(args))
    if args.strict or args.show_secrets:
        parser.error("--strict and --show-secrets go with --check or --print-config")
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
    tls = tls_problem(args.tls_cert_file, args.tls_key_file)
    if tls:
        print(f"swapgate: {tls}", file=sys.stderr)
        return 2
    problem = placement_problem(loaded.config)
    if problem:
        print(f"swapgate: {problem}", file=sys.stderr)
        return 1
    try:
        listener = open_listener(host, port)
    except OSError as exc:
        print(f"error: {listen_error(host, port, exc)}", file=sys.stderr)
        return 1
    level = _LOG_LEVELS.get(args.log_level or loaded.config.log_level, logging.INFO)
    if args.no_access_log:
        from swapgate.proxy.web.access import disable as disable_access_log

        disable_access_log()
    tls_files = Tls(args.tls_cert_file, args.tls_key_file) if args.tls_cert_file else None
    shown = format_address(host, port)
    sources = ConfigSources(args.config, args.config_dir, watch=args.watch_config)
    return uvloop.run(
        serve(loaded.config, listener, level, shown=shown, tls=tls_files, sources=sources)
    )


def add_scripts_dir_to_path(environ: MutableMapping[str, str]) -> None:
    """Append the folder swapgate's console scripts are installed in to PATH, if missing.

    Model commands then find the programs installed alongside swapgate
    (`swapgate-fake-upstream`, the llama-server wheel's `llama-server-vulkan`) without an
    activated virtual environment. Appended, not prepended: a program found on the user's
    PATH still wins. It also reaches `--check`'s PATH check, so the two agree.
    """
    scripts = sysconfig.get_path("scripts")
    parts = [part for part in environ.get("PATH", os.defpath).split(os.pathsep) if part]
    if scripts and scripts not in parts:
        environ["PATH"] = os.pathsep.join([*parts, scripts])


def placement_problem(config: Config) -> str | None:
    """Why the configured placement policy cannot run on this machine, if it cannot."""
    scheduling = config.scheduling
    if scheduling.router is not RouterKind.FIT or scheduling.fit.budget_mib is not None:
        return None
    from swapgate.proxy.gpu import GpuProbe

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
    if args.strict:
        argv.append("--strict")
    if args.show_secrets:
        argv.append("--show-secrets")
    return argv


def parse_listen(value: str) -> tuple[str, int]:
    """'HOST:PORT' (or ':PORT', or '[::1]:PORT') -> (host, port)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        msg = f"expected HOST:PORT, got {value!r}"
        raise ValueError(msg)
    return host.strip("[]") or "127.0.0.1", int(port_text)


# ---- Granian ------------------------------------------------------------------------------


def _embedded_server(app: Any, listener: socket.socket, level: int, limits: ClientLimits) -> Server:
    """Granian's embedded server, serving on `listener` instead of a socket of its own.

    Granian (2.8, Linux) builds each worker's socket with SO_REUSEPORT and has no option to
    turn that off, but a worker given a SocketHolder listens on that descriptor instead. The
    hand-off overrides Granian's private `_init_shared_socket`; the integration test that
    counts listening sockets catches a Granian that changes it.
    """
    from granian._granian import SocketHolder
    from granian.constants import HTTPModes, Interfaces, SSLProtocols
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server.embed import Server

    host, port = listener.getsockname()[:2]

    class OwnSocketServer(Server):
        """Server whose workers listen on the socket swapgate opened."""

        def _init_shared_socket(self) -> None:
            fd = listener.detach()  # from here on Granian's listener owns the descriptor
            self._ssp = None
            # Granian's stub leaves out SocketHolder(fd, uds, backlog) and types these None.
            self._shd = SocketHolder(fd, False, BACKLOG)  # type: ignore[call-arg,assignment]
            self._sfd = fd  # type: ignore[assignment]

    tls = limits.tls
    return OwnSocketServer(
        app,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        http=HTTPModes.http1,
        backlog=BACKLOG,
        # Granian's backpressure is the number of connections it holds at once (one worker);
        # by default it is the backlog, 2048 at most, which idle keep-alives can fill.
        backpressure=limits.max_connections,
        http1_settings=HTTP1Settings(
            # hyper starts this on connect and again after each response: it bounds a slow
            # request head and an idle keep-alive connection alike.
            header_read_timeout=max(1, round(limits.connections.header_timeout_s * 1000)),
            keep_alive=limits.connections.keep_alive,
            max_buffer_size=HTTP1Settings.max_buffer_size,
            pipeline_flush=False,
        ),
        ssl_cert=Path(tls.cert) if tls else None,
        ssl_key=Path(tls.key) if tls else None,
        ssl_protocol_min=SSLProtocols.tls12,  # TLS 1.2 clients still exist; both are safe
        # Granian warns that embedded mode is experimental on every start; only its errors
        # matter to users (its debug output still shows with --log-level debug).
        log_level=LogLevels.error if level > logging.DEBUG else LogLevels.debug,
        log_access=False,
    )


# ---- serving and stopping ---------------------------------------------------------------


async def serve(
    config: Config,
    listener: socket.socket,
    level: int,
    *,
    shown: str,
    tls: Tls | None = None,
    sources: ConfigSources | None = None,
) -> int:
    """Serve on `listener` until SIGINT/SIGTERM (see stopper.py); returns the exit status."""
    from swapgate.proxy.web.app import build_app
    from swapgate.proxy.web.bodybudget import BodyBudget
    from swapgate.proxy.web.bodyscope import BodyScope
    from swapgate.proxy.web.pressure import ConnectionPressure, ConnectionRelief

    hub = LogHub()
    setup_logging(hub, level)
    app, gateway = build_app(config, hub, listen=shown, bound=listener.getsockname()[0])
    atexit.register(gateway.pool.kill_all_now)  # last resort if we leave by another path
    if sources is not None:
        gateway.enable_reload(sources)
    limits = client_limits(config, tls)
    pressure = ConnectionPressure(listener.getsockname()[1], limits.max_connections)
    budgeted = BodyScope(
        ConnectionRelief(app, pressure), BodyBudget(config.max_buffered_request_bytes)
    )
    server = _embedded_server(budgeted, listener, level, limits)
    # The request path allocates little that forms cycles: collect the young generation less
    # often (it costs several percent of CPU under load), and keep startup objects out of it.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)
    Stopper(gateway, server, config.shutdown_timeout_s).install(asyncio.get_running_loop())
    warning = exposure_warning(listener, shown, config)
    if warning:
        log.warning("%s", warning)
    log.info(
        "swapgate %s serving %d models on %s://%s (at most %d client connections)",
        __version__,
        len(config.models),
        "https" if tls else "http",
        shown,
        limits.max_connections,
    )
    pressure.start()
    try:
        await server.serve()
    finally:
        await pressure.stop()
        await gateway.stop()
        gateway.pool.kill_all_now()
    return 0
