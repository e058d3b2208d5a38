"""MemoryBook: each model's GPU memory figure in MiB and where it came from.

A figure is configured (`vram:`), estimated from the GGUF file the command loads (vram.py), or
measured through NVML once the server is ready; a measurement replaces the estimate for later
decisions. The NVML reader is lent by the owner (`GpuMemory`) and is only ever called off the
event loop (`measure` runs in a thread). Imports no web code.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from swapgate.proxy.config.model import FitConfig, ModelSpec
from swapgate.proxy.lifecycle.child import split_command
from swapgate.proxy.lifecycle.vram import estimate_from_argv, process_group_pids

log = logging.getLogger("swapgate.memory")


class MemorySource(enum.StrEnum):
    """Where a memory figure came from."""

    CONFIGURED = "configured"
    ESTIMATED = "estimated"
    MEASURED = "measured"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Figure:
    """A model's memory figure."""

    mib: int
    source: MemorySource
    detail: str = ""


class GpuMemory(Protocol):
    """What NVML can tell (proxy/gpu.py's GpuProbe)."""

    @property
    def available(self) -> bool: ...
    def total_mib(self) -> int | None: ...
    def used_mib_by_pids(self, pids: Collection[int]) -> int | None: ...


class MemoryBook:
    """Figures for every model of one config; updated by measurements."""

    def __init__(self, models: Mapping[str, ModelSpec], gpu: GpuMemory | None) -> None:
        self._gpu = gpu
        self._figures = {model_id: _initial(spec) for model_id, spec in models.items()}

    def need_mib(self, model: str) -> int:
        figure = self._figures.get(model)
        return 0 if figure is None else figure.mib

    def figure(self, model: str) -> Figure:
        return self._figures.get(model, Figure(0, MemorySource.UNKNOWN))

    def unknown(self) -> list[str]:
        return sorted(m for m, f in self._figures.items() if f.source is MemorySource.UNKNOWN)

    def budget_mib(self, fit: FitConfig) -> int | None:
        """The configured budget, else the visible GPUs' total less `reserveMiB`."""
        if fit.budget_mib is not None:
            return fit.budget_mib
        total = None if self._gpu is None else self._gpu.total_mib()
        return None if total is None else max(0, total - fit.reserve_mib)

    @property
    def can_measure(self) -> bool:
        """False without NVML: then nothing is measured (not even /proc is scanned)."""
        return self._gpu is not None and self._gpu.available

    def reloaded(self, models: Mapping[str, ModelSpec], kept: Collection[str]) -> MemoryBook:
        """The book for a reloaded config: a model whose server keeps running (`kept`) keeps
        its measured figure unless the config now sets `vram`."""
        book = MemoryBook(models, self._gpu)
        for model in kept:
            figure = self._figures.get(model)
            measured = figure is not None and figure.source is MemorySource.MEASURED
            if measured and figure is not None and models[model].vram_mib is None:
                book._figures[model] = figure
        return book

    def measure(self, model: str, pgid: int) -> Figure | None:
        """Blocking (run it in a thread): NVML's figure for the model's process group, kept
        when it is one; None when NVML cannot tell."""
        if self._gpu is None:
            return None
        used = self._gpu.used_mib_by_pids(process_group_pids(pgid))
        if used is None:
            return None
        figure = Figure(used, MemorySource.MEASURED, "NVML, processes of the server's group")
        self._figures[model] = figure
        return figure


def _initial(spec: ModelSpec) -> Figure:
    if spec.vram_mib is not None:
        return Figure(spec.vram_mib, MemorySource.CONFIGURED, "vram in the config")
    try:
        estimate = estimate_from_argv(split_command(spec.cmd))
    except ValueError:  # an unparsable cmd fails at start, with its own message
        estimate = None
    if estimate is None:
        return Figure(0, MemorySource.UNKNOWN, "no vram set and no GGUF file found in cmd")
    return Figure(estimate.mib, MemorySource.ESTIMATED, estimate.detail)
