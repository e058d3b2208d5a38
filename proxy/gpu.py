"""GPU memory from NVML (nvidia-ml-py), degrading to "unavailable" where there is no GPU.

Read on demand by admin endpoints only; never on the request path. The probe owns NVML's
init/shutdown. Feeds VRAM-aware scheduling later; today GET /api/gpu and /running show it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field

import pynvml

log = logging.getLogger("swapgate.gpu")

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """One process holding memory on a GPU."""

    pid: int
    used_mib: int


@dataclass(frozen=True, slots=True)
class GpuDevice:
    """One GPU's memory, as NVML reports it."""

    index: int
    name: str
    total_mib: int
    used_mib: int
    free_mib: int
    processes: tuple[GpuProcess, ...] = field(default=())


class GpuProbe:
    """Lazily initialised NVML; `devices()` is empty and `reason` says why without a GPU."""

    def __init__(self) -> None:
        self._ready = False
        self.reason: str | None = None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            self.reason = f"NVML unavailable: {exc}"
            log.debug("%s", self.reason)
        else:
            self._ready = True

    @property
    def available(self) -> bool:
        return self._ready

    def devices(self) -> list[GpuDevice]:
        """Every GPU's memory and the processes using it (an empty list without NVML)."""
        if not self._ready:
            return []
        try:
            return [_device(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except pynvml.NVMLError as exc:
            log.warning("NVML query failed: %s", exc)
            return []

    def used_mib_by_pid(self) -> dict[int, int]:
        """pid -> MiB of GPU memory, summed over devices."""
        used: dict[int, int] = {}
        for device in self.devices():
            for process in device.processes:
                used[process.pid] = used.get(process.pid, 0) + process.used_mib
        return used

    def used_mib_by_pids(self, pids: Collection[int]) -> int | None:
        """MiB held by these pids over all GPUs; None without NVML or if none of them holds any.

        None, not 0, also where NVML lists a pid without a figure (it says "not available",
        read as 0): a process on a GPU holds at least its context, so 0 means "unknown". NVML
        reports host pids: inside a container with its own pid namespace none of them matches.
        """
        wanted = set(pids)
        return sum(mib for pid, mib in self.used_mib_by_pid().items() if pid in wanted) or None

    def total_mib(self) -> int | None:
        """Total memory of all visible GPUs, or None without NVML."""
        devices = self.devices()
        return sum(device.total_mib for device in devices) if devices else None

    def close(self) -> None:
        if self._ready:
            self._ready = False
            try:
                pynvml.nvmlShutdown()
            except pynvml.NVMLError as exc:
                log.debug("nvmlShutdown: %s", exc)


def _device(index: int) -> GpuDevice:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    name = pynvml.nvmlDeviceGetName(handle)
    used: dict[int, int] = {}
    for p in (*pynvml.nvmlDeviceGetComputeRunningProcesses(handle), *_graphics_processes(handle)):
        # A process using both APIs is listed twice with the same figure: count it once.
        used[int(p.pid)] = max(used.get(int(p.pid), 0), int(p.usedGpuMemory or 0) // _MIB)
    processes = tuple(GpuProcess(pid, mib) for pid, mib in used.items())
    return GpuDevice(
        index=index,
        name=name.decode() if isinstance(name, bytes) else str(name),
        total_mib=int(memory.total) // _MIB,
        used_mib=int(memory.used) // _MIB,
        free_mib=int(memory.free) // _MIB,
        processes=processes,
    )


def _graphics_processes(handle: object) -> list[object]:
    """Vulkan clients (llama-server-vulkan) are graphics processes to NVML, not compute ones."""
    try:
        return list(pynvml.nvmlDeviceGetGraphicsRunningProcesses(handle))
    except pynvml.NVMLError as exc:  # not supported on some compute-only boards
        log.debug("graphics processes: %s", exc)
        return []
