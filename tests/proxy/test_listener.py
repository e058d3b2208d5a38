"""The listener's limits: the open-file limit, the connection cap that fits it, TLS files."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from swapgate.proxy.listener import connection_limit, raise_open_files, tls_problem
from tests.support.tls import self_signed


@pytest.mark.parametrize(
    ("configured", "open_files", "expected"),
    [
        (None, 1_048_576, 8192),  # plenty of descriptors: the default
        (None, 20_000, 8192),
        (None, 4096, 3072),  # a quarter kept spare
        (None, 1024, 768),  # at least 256 kept spare
        (None, 300, 44),
        (100, 1024, 100),  # a configured cap that fits is kept
        (50_000, 1_048_576, 50_000),
    ],
)
def test_connection_limit_fits_the_open_files(
    configured: int | None, open_files: int, expected: int
) -> None:
    """The cap is the configured or default one, within the descriptors left for clients."""
    assert connection_limit(configured, open_files) == (expected, None)


def test_a_cap_beyond_the_open_files_is_lowered_with_a_warning() -> None:
    """connections.limit above what the open files allow is lowered, and the warning says how
    to allow more."""
    limit, warning = connection_limit(10_000, 4096)
    assert limit == 3072
    assert warning == (
        "connections.limit 10000 lowered to 3072: the open-file limit is 4096 — raise it "
        "(ulimit -n, LimitNOFILE= in a systemd unit) to allow more"
    )


def test_raise_open_files_reaches_the_hard_limit() -> None:
    """After the call the soft limit is the hard one (where the hard limit is finite)."""
    files = raise_open_files()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert (files.soft, files.hard) == (soft, hard)
    assert files.before <= files.soft
    if hard != resource.RLIM_INFINITY:
        assert soft == hard


def test_tls_files_come_in_pairs(tmp_path: Path) -> None:
    """One flag without the other is refused, naming the missing one; neither is plain HTTP."""
    files = self_signed(tmp_path)
    assert tls_problem(None, None) is None
    assert tls_problem(str(files.cert), None) == (
        "--tls-cert-file needs --tls-key-file too: give both, or neither to serve plain HTTP"
    )
    assert tls_problem(None, str(files.key)) == (
        "--tls-key-file needs --tls-cert-file too: give both, or neither to serve plain HTTP"
    )


def test_good_tls_files_pass(tmp_path: Path) -> None:
    """A certificate and its own key are accepted."""
    files = self_signed(tmp_path)
    assert tls_problem(str(files.cert), str(files.key)) is None


def test_unreadable_or_mismatched_files_are_refused(tmp_path: Path) -> None:
    """A missing file is named with its flag; a key of another certificate is refused."""
    files, other = self_signed(tmp_path, "a"), self_signed(tmp_path, "b")
    missing = tmp_path / "missing.key"
    assert tls_problem(str(files.cert), str(missing)) == (
        f"--tls-key-file: cannot read {missing}: No such file or directory"
    )
    problem = tls_problem(str(files.cert), str(other.key))
    assert problem is not None
    assert problem.startswith(
        f"--tls-cert-file {files.cert} and --tls-key-file {other.key} are not"
    )
