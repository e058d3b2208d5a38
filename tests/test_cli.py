"""The --listen parser."""

from __future__ import annotations

import pytest
from proxy.cli import parse_listen


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("localhost:1", ("localhost", 1)),
        ("example.org:65535", ("example.org", 65535)),
        (":9000", ("127.0.0.1", 9000)),
        ("[::1]:8080", ("::1", 8080)),
        ("[::]:5800", ("::", 5800)),
    ],
)
def test_valid_listen_addresses(value: str, expected: tuple[str, int]) -> None:
    """HOST:PORT, :PORT (loopback) and bracketed IPv6 parse to (host, port)."""
    assert parse_listen(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "8080",
        "localhost",
        "localhost:",
        "localhost:http",
        "localhost:-1",
        "localhost:0",
        "localhost:65536",
        "localhost:80 ",
        "localhost:8o",
        "[::1]",
    ],
)
def test_invalid_listen_addresses_raise(value: str) -> None:
    """Anything without a port in 1..65535 raises ValueError quoting the input."""
    with pytest.raises(ValueError, match="expected HOST:PORT") as caught:
        parse_listen(value)
    assert repr(value) in str(caught.value)
