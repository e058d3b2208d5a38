"""The memory benchmark's RSS reader."""

from __future__ import annotations

import os

import pytest

from swapgate.bench.memory import rss_mib


def test_rss_of_this_process_is_plausible() -> None:
    """VmRSS of the test process is read from /proc in MiB."""
    assert 5 < rss_mib(os.getpid()) < 4096


def test_rss_of_a_missing_process_raises() -> None:
    """A pid without /proc entry is an error, not a zero."""
    with pytest.raises(OSError, match="No such file"):
        rss_mib(2**22 + 12345)
