"""MemoryBook: configured, estimated and unknown figures, budgets, and measurement."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from swapgate.bench import tiny_gguf
from swapgate.proxy.config.model import FitConfig, ModelSpec
from swapgate.proxy.lifecycle.memory import MemoryBook, MemorySource


class FakeGpu:
    """NVML's answers, fixed by the test."""

    def __init__(self, total: int | None, used: int | None) -> None:
        self.total, self.used = total, used
        self.asked: list[list[int]] = []

    @property
    def available(self) -> bool:
        return self.total is not None

    def total_mib(self) -> int | None:
        return self.total

    def used_mib_by_pids(self, pids: Collection[int]) -> int | None:
        self.asked.append(sorted(pids))
        return self.used


def spec(model_id: str, cmd: str, vram: int | None = None) -> ModelSpec:
    return ModelSpec(id=model_id, cmd=cmd, proxy="http://127.0.0.1:1", vram_mib=vram)


def test_configured_figure_wins() -> None:
    """vram in the config is the figure, source configured, whatever the command loads."""
    book = MemoryBook({"a": spec("a", "llama-server -m x.gguf", vram=1234)}, None)
    figure = book.figure("a")
    assert (figure.mib, figure.source) == (1234, MemorySource.CONFIGURED)


def test_gguf_command_gets_an_estimate(tmp_path: Path) -> None:
    """A llama-server command with a readable GGUF file is estimated from its header."""
    model = tmp_path / "m.gguf"
    assert tiny_gguf.main([str(model), "--layers", "2", "--hidden", "64", "--heads", "4"]) == 0
    book = MemoryBook({"a": spec("a", f"llama-server -m {model} -c 1024")}, None)
    figure = book.figure("a")
    assert figure.source is MemorySource.ESTIMATED
    assert figure.mib >= 1
    assert "KV cache" in figure.detail


def test_no_figure_is_unknown_and_counts_zero() -> None:
    """A command without a GGUF file has an unknown figure of 0 MiB, listed as such."""
    book = MemoryBook({"a": spec("a", "python -m swapgate.bench.fake_upstream")}, None)
    assert (book.need_mib("a"), book.unknown()) == (0, ["a"])


def test_budget_is_configured_or_nvml_total_less_reserve() -> None:
    """budgetMiB wins; else NVML's total minus reserveMiB; None without either."""
    gpu = FakeGpu(total=80_000, used=None)
    book = MemoryBook({}, gpu)
    assert book.budget_mib(FitConfig(budget_mib=1000)) == 1000
    assert book.budget_mib(FitConfig(reserve_mib=2000)) == 78_000
    assert MemoryBook({}, None).budget_mib(FitConfig()) is None


def test_a_measurement_replaces_the_estimate() -> None:
    """NVML's figure for the server's process group becomes the model's figure."""
    gpu = FakeGpu(total=80_000, used=4321)
    book = MemoryBook({"a": spec("a", "srv", vram=1000)}, gpu)
    figure = book.measure("a", 1)  # pid 1's group: init, always present
    assert figure is not None
    assert (book.need_mib("a"), book.figure("a").source) == (4321, MemorySource.MEASURED)
    assert gpu.asked  # asked about the group's pids


def test_no_measurement_keeps_the_figure() -> None:
    """When NVML cannot tell, the configured figure stays."""
    book = MemoryBook({"a": spec("a", "srv", vram=1000)}, FakeGpu(total=None, used=None))
    assert book.measure("a", 1) is None
    assert book.figure("a").source is MemorySource.CONFIGURED


def test_nothing_is_measured_without_nvml() -> None:
    """Without NVML the pool does not measure at all (no /proc scan after each start)."""
    assert not MemoryBook({}, None).can_measure
    assert not MemoryBook({}, FakeGpu(total=None, used=None)).can_measure
    assert MemoryBook({}, FakeGpu(total=1000, used=None)).can_measure
