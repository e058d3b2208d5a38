"""GpuProbe reads real NVML where a GPU exists and degrades to a clear reason where not."""

from __future__ import annotations

import os

import pytest

from swapgate.proxy.gpu import GpuProbe
from tests.support.gateway import fake_cmd, start_swapgate


def test_probe_reports_devices_or_why_not() -> None:
    """With NVML: sane per-device memory; without: no devices, no pids and a reason."""
    probe = GpuProbe()
    try:
        devices = probe.devices()
        if probe.available:
            assert devices
            for device in devices:
                assert device.total_mib > 0
                assert 0 <= device.used_mib <= device.total_mib
                assert device.name
        else:
            assert devices == []
            assert probe.used_mib_by_pid() == {}
            assert probe.reason is not None
            assert "NVML" in probe.reason
    finally:
        probe.close()
    assert probe.devices() == []  # closed probes answer, they do not raise


def test_total_and_per_pid_memory_or_none() -> None:
    """total_mib sums the devices (None without NVML); pids holding no GPU memory give None."""
    probe = GpuProbe()
    try:
        if probe.available:
            assert probe.total_mib() == sum(d.total_mib for d in probe.devices())
            holders = probe.used_mib_by_pid()
            busy = [pid for pid, mib in holders.items() if mib > 0]
            if busy:
                assert probe.used_mib_by_pids(busy) == sum(holders[pid] for pid in busy)
        else:
            assert probe.total_mib() is None
            assert probe.used_mib_by_pids([os.getpid(), 1]) is None
        assert probe.used_mib_by_pids([]) is None
        assert probe.used_mib_by_pids([2**22 + 12345]) is None  # above any pid_max
    finally:
        probe.close()
    assert probe.total_mib() is None  # closed probes answer None, they do not raise
    assert probe.used_mib_by_pids([os.getpid()]) is None


@pytest.mark.integration
def test_gpu_endpoint_answers_on_any_machine() -> None:
    """GET /api/gpu is 200 everywhere and says whether NVML is available."""
    config = f"models:\n  alpha:\n    cmd: {fake_cmd('alpha')}\n"
    with start_swapgate(config) as gate:
        status, _, body = gate.get("/api/gpu")
        assert status == 200
        assert isinstance(body["available"], bool)
        assert isinstance(body["devices"], list)
        if not body["available"]:
            assert body["devices"] == []
            assert "NVML" in body["reason"]
