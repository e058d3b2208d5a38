"""GPU memory from NVML (nvidia-ml-py), degrading to "unavailable" where there is no GPU.

Read on demand by admin endpoints only; never on the request path. The probe owns NVML's
init/shutdown. Feeds VRAM-aware scheduling later; today GET /api/gpu and /running show it.
"""

from __future__ import annotations

import logging
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
    processes = tuple(
        GpuProcess(int(p.pid), int(p.usedGpuMemory or 0) // _MIB)
        for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
    )
    return GpuDevice(
        index=index,
        name=name.decode() if isinstance(name, bytes) else str(name),
        total_mib=int(memory.total) // _MIB,
        used_mib=int(memory.used) // _MIB,
        free_mib=int(memory.free) // _MIB,
        processes=processes,
    )
