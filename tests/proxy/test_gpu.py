"""GpuProbe reads real NVML where a GPU exists and degrades to a clear reason where not."""

from __future__ import annotations

import pytest
from proxy.gpu import GpuProbe
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
