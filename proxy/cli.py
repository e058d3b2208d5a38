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
import errno
import gc
import ipaddress
import logging
import os
import signal
import socket
import sys
import sysconfig
from collections.abc import MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

import uvloop

from swapgate.proxy import __version__
from swapgate.proxy.config import load_config
from swapgate.proxy.config.__main__ import run_config_command
from swapgate.proxy.config.model import Config, RouterKind
from swapgate.proxy.errors import ConfigError
from swapgate.proxy.loghub import LogHub
from swapgate.proxy.logsink import LogSink, StderrWriter

if TYPE_CHECKING:  # both imported when serving only: --check stays light
    from granian.server.embed import Server

    from swapgate.proxy.web.gateway import Gateway

log = logging.getLogger("swapgate")

DEFAULT_LISTEN = "127.0.0.1:8080"
BACKLOG = 2048
# How long Granian may take to close its connections once the model servers are stopped (a
# client holding /logs/stream or /api/events open keeps it waiting): then swapgate exits.
GRANIAN_STOP_S = 3.0
SIGHUP_MESSAGE = "SIGHUP: config reload is not supported yet; ignoring"
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
exits at once with 128 + the signal number (130, 143); SIGHUP is logged and ignored.
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
    parser.add_argument("--log-level", choices=sorted(_LOG_LEVELS), help="overrides logLevel")
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
    return uvloop.run(serve(loaded.config, listener, level, shown=format_address(host, port)))


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


def format_address(host: str, port: int) -> str:
    """host:port as a user writes it: IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ---- the listening socket ---------------------------------------------------------------


def open_listener(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A TCP socket listening on host:port, bound without SO_REUSEPORT.

    Without SO_REUSEPORT the kernel refuses a second bind (EADDRINUSE) while this socket is
    open, so exactly one process owns the address; binding and listening here, before
    anything is started, leaves no window between a check and the bind. SO_REUSEADDR only
    lets a restart bind over connections of the previous run still in TIME_WAIT.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Granian's own socket
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def listen_error(host: str, port: int, exc: OSError) -> str:
    """What to tell the user when the address cannot be bound."""
    shown = format_address(host, port)
    if exc.errno == errno.EADDRINUSE:
        return f"{shown} is already in use (another swapgate?)"
    if isinstance(exc, socket.gaierror):
        return f"cannot listen on {shown}: cannot resolve {host!r} ({exc.strerror})"
    return f"cannot listen on {shown}: {exc.strerror or exc}"


def exposure_warning(listener: socket.socket, shown: str, config: Config) -> str | None:
    """The warning for a listener reachable beyond this machine with no apiKeys, if any."""
    if config.api_keys:
        return None
    ip = ipaddress.ip_address(listener.getsockname()[0].split("%")[0])
    if ip.is_loopback or (ip.version == 6 and (ip.ipv4_mapped or ip).is_loopback):
        return None
    return (
        f"listening on {shown} without apiKeys: anyone who can reach this port can use and "
        "unload every model — set apiKeys or listen on 127.0.0.1"
    )


def _embedded_server(app: Any, listener: socket.socket, level: int) -> Server:
    """Granian's embedded server, serving on `listener` instead of a socket of its own.

    Granian (2.8, Linux) builds each worker's socket with SO_REUSEPORT and has no option to
    turn that off, but a worker given a SocketHolder listens on that descriptor instead. The
    hand-off overrides Granian's private `_init_shared_socket`; the integration test that
    counts listening sockets catches a Granian that changes it.
    """
    from granian._granian import SocketHolder
    from granian.constants import HTTPModes, Interfaces
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

    return OwnSocketServer(
        app,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        http=HTTPModes.http1,
        backlog=BACKLOG,
        # Granian warns that embedded mode is experimental on every start; only its errors
        # matter to users (its debug output still shows with --log-level debug).
        log_level=LogLevels.error if level > logging.DEBUG else LogLevels.debug,
        log_access=False,
    )


# ---- logging ----------------------------------------------------------------------------


def _setup_logging(hub: LogHub, level: int) -> None:
    root = logging.getLogger("swapgate")
    root.setLevel(level)
    # Formatted once; stderr written from a thread, so a blocked stderr never stalls serving.
    root.handlers[:] = [LogSink(hub, StderrWriter(sys.stderr))]
    root.propagate = False


# ---- serving and stopping ---------------------------------------------------------------


class _Stopper:
    """Turns signals into a bounded stop.

    First SIGINT/SIGTERM: refuse new work, let in-flight requests run for up to
    shutdownTimeout, then stop every model server (which ends the streams still running:
    their upstream connections drop and each SSE stream gets an error event), then stop
    Granian. If Granian has not returned GRANIAN_STOP_S later, exit 0 without it (the model
    servers are already stopped). A second SIGINT/SIGTERM: SIGKILL every model server and
    exit at once with 128 + the signal number. SIGHUP: logged and ignored.
    """

    def __init__(self, gateway: Gateway, server: Server, shutdown_timeout_s: float) -> None:
        self._gateway = gateway
        self._server = server
        self._timeout_s = shutdown_timeout_s
        self._task: asyncio.Task[None] | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Handle SIGINT, SIGTERM and SIGHUP on `loop` from now on."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.on_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, log.warning, SIGHUP_MESSAGE)

    def on_signal(self, sig: signal.Signals) -> None:
        """The first SIGINT/SIGTERM starts the stop; a second one exits now."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._stop())
            return
        log.warning("second %s: killing every model server and exiting now", sig.name)
        self._exit_now(128 + sig.value)

    async def _stop(self) -> None:
        pool = self._gateway.pool
        log.info("stopping: draining in-flight requests (up to %gs)", self._timeout_s)
        await self._gateway.drain(self._timeout_s)
        if pool.in_flight():
            log.warning("ending %d requests: stopping the model servers they use", pool.in_flight())
        # Stopping the servers now, before Granian, is what bounds the stop: Granian's own
        # close waits for every response to end, however long a stream would still run.
        await pool.shutdown(0.0)
        self._server.stop()  # type: ignore[no-untyped-call]
        await asyncio.sleep(GRANIAN_STOP_S)  # cancelled when serve() returns first
        log.warning("connections still open %gs after the models stopped; exiting", GRANIAN_STOP_S)
        self._exit_now(0)

    def _exit_now(self, code: int) -> None:
        self._gateway.pool.kill_all_now()  # os._exit: unwinding would wait for Granian
        logging.shutdown()
        sys.stderr.flush()
        os._exit(code)


async def serve(config: Config, listener: socket.socket, level: int, *, shown: str) -> int:
    """Serve on `listener` until SIGINT/SIGTERM (see _Stopper); returns the exit status."""
    from swapgate.proxy.web.app import build_app

    hub = LogHub()
    _setup_logging(hub, level)
    app, gateway = build_app(config, hub)
    atexit.register(gateway.pool.kill_all_now)  # last resort if we leave by another path
    server = _embedded_server(app, listener, level)
    # The request path allocates little that forms cycles: collect the young generation less
    # often (it costs several percent of CPU under load), and keep startup objects out of it.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)
    _Stopper(gateway, server, config.shutdown_timeout_s).install(asyncio.get_running_loop())
    warning = exposure_warning(listener, shown, config)
    if warning:
        log.warning("%s", warning)
    log.info("swapgate %s serving %d models on http://%s", __version__, len(config.models), shown)
    try:
        await server.serve()
    finally:
        await gateway.stop()
        gateway.pool.kill_all_now()
    return 0
