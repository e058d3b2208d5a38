"""``swapgate bench memory``: swapgate's resident memory idle and over many requests.

Starts swapgate (core 0) with a zero-delay fake upstream, reads VmRSS from /proc before any
request, after a warm-up, and after every checkpoint of small non-streaming requests (sent by
this package's load generator on core 1). Flat means the last checkpoints do not grow.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import uvloop

from swapgate.bench import stack as st
from swapgate.bench.loadgen import Workload, run_load
from swapgate.bench.report import table, write_json

MODEL = "mem"
WARMUP = 2_000


def rss_mib(pid: int) -> float:
    """Resident set size of `pid` in MiB, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    msg = f"no VmRSS for pid {pid}"
    raise RuntimeError(msg)


async def measure(
    total: int, checkpoints: int, concurrency: int, *, pin_cores: bool
) -> list[tuple[str, float]]:
    """(label, RSS MiB) samples: idle, after warm-up, then after each checkpoint."""
    samples: list[tuple[str, float]] = []
    with st.Stack(pin_cores=pin_cores) as stack:
        cmd = " ".join(st.fake_cmd(MODEL, "${PORT}", "--ttft", "0", "--tokens", "1", "--quiet"))
        sg, via = stack.start_swapgate({MODEL: {"cmd": cmd}})  # shipped defaults
        await st.wait_ready(via + "/health", sg)
        samples.append(("idle, no request yet", rss_mib(sg.pid)))
        workload = Workload(via, MODEL, stream=False, max_tokens=1)
        await run_load(workload, concurrency, requests=WARMUP)
        _, upstream_pid = await st.running_backend(via, MODEL)
        if pin_cores:
            st.pin(upstream_pid, st.LOAD_CORE)
        samples.append((f"after {WARMUP:,} warm-up requests", rss_mib(sg.pid)))
        step = total // checkpoints
        for index in range(1, checkpoints + 1):
            result = await run_load(workload, concurrency, requests=step)
            if result.errors:
                msg = f"requests failed:\n{stack.log_tail(sg)}"
                raise RuntimeError(msg)
            samples.append((f"after {WARMUP + index * step:,} requests", rss_mib(sg.pid)))
    return samples


def main(argv: Sequence[str]) -> int:
    """``swapgate bench memory [--requests N] [--checkpoints K] [--json PATH]``."""
    ap = argparse.ArgumentParser(prog="swapgate bench memory", description=__doc__)
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--checkpoints", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--pin", action=argparse.BooleanOptionalAction, default=st.can_pin())
    ns = ap.parse_args(argv)
    samples = uvloop.run(measure(ns.requests, ns.checkpoints, ns.concurrency, pin_cores=ns.pin))
    print(table(["swapgate resident memory", "RSS MiB"], [[k, f"{v:.1f}"] for k, v in samples]))
    first_checkpoint = samples[2][1] if len(samples) > 2 else samples[-1][1]
    growth = samples[-1][1] - first_checkpoint
    print(f"growth from the first checkpoint to the last: {growth:+.1f} MiB")
    if ns.json:
        write_json(ns.json, {"samples": samples, "growth_mib": growth})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
