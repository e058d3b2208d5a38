"""``swapgate bench saturation``: how much load a proxy takes before it is the bottleneck.

Small non-streaming requests against a zero-delay fake upstream, driven by ``wrk`` at each
concurrency, directly, through nginx (a plain keep-alive reverse proxy, one worker) and through
swapgate. The proxy under test runs on core 0; wrk and the upstream on core 1. Reported per
row: requests/s, p50/p99 latency and the proxy's CPU time per request (from /proc/PID/stat).
A last table gives the most SSE chunks/s each path relays. Without wrk or nginx those rows
are skipped with a note; the rest still runs.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import uvloop

from swapgate.bench import htmlreport
from swapgate.bench import stack as st
from swapgate.bench.loadgen import Summary, Workload, run_load
from swapgate.bench.report import RunInfo, Table, fmt, write_json

MODEL = "sat"
# --tokens is the stream length for the chunk test; wrk's requests cap it with max_tokens.
FAKE_ARGS = ("--ttft", "0", "--token-interval", "0", "--tokens", "100000")
STREAM_TOKENS = 5000
WRK_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"sat","messages":[{"role":"user","content":"hi"}],"max_tokens":1}'
"""
NGINX_CONF = """worker_processes 1;
error_log {tmp}/nginx-error.log warn;
pid {tmp}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  upstream fake {{ server {upstream}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://fake;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True, slots=True)
class WrkRow:
    """One wrk run: a target at one concurrency."""

    target: str
    concurrency: int
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    proxy_cpu_us_per_request: float | None


def parse_wrk(output: str) -> tuple[int, float, float, float, int]:
    """(requests, requests/s, p50 ms, p99 ms, errors) from ``wrk --latency`` output."""
    requests = int(_search(r"(\d+) requests in", output))
    rps = float(_search(r"Requests/sec:\s+([\d.]+)", output))
    p50, p99 = (_latency(output, q) for q in ("50", "99"))
    errors = int(_search(r"Non-2xx or 3xx responses:\s+(\d+)", output, "0"))
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket is not None:
        errors += sum(int(g) for g in socket.groups())
    return requests, rps, p50, p99, errors


def _search(pattern: str, text: str, default: str | None = None) -> str:
    match = re.search(pattern, text)
    if match is None:
        if default is not None:
            return default
        msg = f"wrk output has no match for {pattern!r}:\n{text}"
        raise ValueError(msg)
    return match.group(1)


def _latency(output: str, quantile: str) -> float:
    match = re.search(rf"^\s+{quantile}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    return float("nan") if match is None else float(match.group(1)) * _UNITS[match.group(2)]


def proxy_cpu(pids: Sequence[int]) -> float:
    """Total CPU seconds of ``pids`` (a proxy may be several processes, as nginx is)."""
    return sum(st.cpu_seconds(pid) for pid in pids)


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (nginx's workers), from /proc."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


async def run_wrk(
    stack: st.Stack, url: str, concurrency: int, duration_s: float
) -> tuple[int, float, float, float, int]:
    """One wrk run on the load core; blocking, so it runs in a thread."""
    script = stack.tmpdir / "post.lua"
    script.write_text(WRK_LUA)
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration_s:g}s", "--latency", "-s", str(script)]
    cmd.append(url + "/v1/chat/completions")
    if stack.pin_cores:
        cmd = ["taskset", "-c", str(st.LOAD_CORE), *cmd]
    done = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        msg = f"wrk failed ({done.returncode}): {done.stderr.strip()}"
        raise RuntimeError(msg)
    return parse_wrk(done.stdout)


async def measure_row(
    stack: st.Stack, target: str, url: str, pids: Sequence[int], concurrency: int, duration_s: float
) -> WrkRow:
    """Warm up for a second, then run wrk once while sampling the proxy's CPU time."""
    await run_wrk(stack, url, concurrency, 1)
    before = proxy_cpu(pids) if pids else 0.0
    requests, rps, p50, p99, errors = await run_wrk(stack, url, concurrency, duration_s)
    cpu = (proxy_cpu(pids) - before) / max(requests, 1) * 1e6 if pids else None
    return WrkRow(target, concurrency, requests, rps, p50, p99, errors, cpu)


async def start_nginx(stack: st.Stack, upstream: str) -> tuple[subprocess.Popen[bytes], str]:
    """nginx as a plain reverse proxy to ``upstream`` (host:port), one worker, on core 0."""
    port = st.free_port()
    tmp = stack.tmpdir
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, upstream=upstream, port=port))
    cmd = ["nginx", "-g", "daemon off;", "-p", str(tmp), "-c", str(conf)]
    proc = stack.spawn(cmd, core=st.PROXY_CORE)
    url = f"http://{st.LOCALHOST}:{port}"
    await st.wait_ready(url + "/health", proc)
    return proc, url


async def relay_rate(url: str, concurrency: int, duration_s: float) -> Summary:
    """Long zero-interval streams: tokens/s here is SSE chunks relayed per second."""
    workload = Workload(url, MODEL, max_tokens=STREAM_TOKENS)
    await run_load(workload, concurrency, requests=concurrency)
    return Summary.of(await run_load(workload, concurrency, duration_s=duration_s))


async def measure(
    levels: Sequence[int], duration_s: float, *, pin_cores: bool
) -> tuple[list[WrkRow], dict[str, Summary], list[str]]:
    """Every wrk row, the relay rates and notes about what was skipped."""
    notes: list[str] = []
    rows: list[WrkRow] = []
    with st.Stack(pin_cores=pin_cores) as stack:
        cmd = " ".join(st.fake_cmd(MODEL, "${PORT}", *FAKE_ARGS))
        model = {"cmd": cmd, "checkEndpoint": "/health"}  # shipped defaults
        sg, via = stack.start_swapgate({MODEL: model})
        await st.wait_ready(via + "/health", sg)
        await run_load(Workload(via, MODEL, max_tokens=1), 1, requests=1)
        direct, upstream_pid = await st.running_backend(via, MODEL)
        if pin_cores:
            st.pin(upstream_pid, st.LOAD_CORE)
        targets: list[tuple[str, str, list[int]]] = [("direct", direct, [])]
        if shutil.which("nginx") is None:
            notes.append(
                "nginx rows skipped: nginx is not installed (apt-get install -y nginx-light)"
            )
        else:
            ng, ng_url = await start_nginx(stack, direct.removeprefix("http://"))
            targets.append(("nginx", ng_url, [ng.pid, *children(ng.pid)]))
        targets.append(("swapgate", via, [sg.pid]))
        if shutil.which("wrk") is None:
            notes.append("wrk rows skipped: wrk is not installed (apt-get install -y wrk)")
        else:
            for concurrency in levels:
                for name, url, pids in targets:
                    rows.append(await measure_row(stack, name, url, pids, concurrency, duration_s))
        relay = {name: await relay_rate(url, 4, duration_s) for name, url, _ in targets}
    return rows, relay, notes


def results_tables(rows: Sequence[WrkRow], relay: dict[str, Summary]) -> list[Table]:
    """The wrk table (when wrk ran) and the SSE relay table."""
    out: list[Table] = []
    if rows:
        body = [
            [
                f"c={r.concurrency:<3} {r.target}",
                fmt(r.requests_per_s, 0),
                fmt(r.p50_ms, 2),
                fmt(r.p99_ms, 2),
                fmt(r.proxy_cpu_us_per_request),
                str(r.errors),
            ]
            for r in rows
        ]
        headers = [
            "small non-streaming requests (wrk)",
            "req/s",
            "p50 ms",
            "p99 ms",
            "proxy CPU µs/req",
            "errors",
        ]
        out.append(Table(headers, body, "small non-streaming requests, per concurrency"))
    relay_rows = [[name, fmt(s.tokens_per_s, 0), str(s.errors)] for name, s in relay.items()]
    headers = ["SSE relay, 4 streams of 5000 chunks", "chunks/s", "errors"]
    out.append(Table(headers, relay_rows, "SSE relay rate"))
    return out


def render(rows: Sequence[WrkRow], relay: dict[str, Summary], notes: Sequence[str]) -> str:
    """The saturation tables and notes."""
    return "\n\n".join([*(t.text() for t in results_tables(rows, relay)), *notes])


def main(argv: Sequence[str]) -> int:
    """``swapgate bench saturation [--concurrency 16,64] [--duration S] [--json PATH]``."""
    ap = argparse.ArgumentParser(prog="swapgate bench saturation", description=__doc__)
    ap.add_argument("--concurrency", default="16,64", metavar="N,N")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--html", metavar="PATH.html", help="one self-contained HTML report")
    ap.add_argument("--pin", action=argparse.BooleanOptionalAction, default=st.can_pin())
    ns = ap.parse_args(argv)
    levels = [int(c) for c in ns.concurrency.split(",")]
    info = RunInfo(
        "swapgate bench saturation",
        [
            ("concurrency", ", ".join(map(str, levels))),
            ("seconds per wrk run", f"{ns.duration:g}"),
            ("pinned to cores", "yes" if ns.pin else "no"),
        ],
    )
    rows, relay, notes = uvloop.run(measure(levels, ns.duration, pin_cores=ns.pin))
    print(render(rows, relay, notes))
    if ns.html:
        print(htmlreport.write(ns.html, info, results_tables(rows, relay), notes=notes))
    if ns.json:
        data = {
            "wrk": [asdict(r) for r in rows],
            "relay": {k: asdict(v) for k, v in relay.items()},
            "notes": notes,
        }
        write_json(ns.json, data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
