"""`allowedHosts` and `cors.allowOrigins`: read, normalised, and wrong values located."""

from __future__ import annotations

from pathlib import Path

import pytest

from swapgate.proxy.config.printer import effective_json
from swapgate.proxy.config.security import host_entry, origin_entry
from tests.proxy.config.conftest import IssuesOf, LoadText

MODEL = "models:\n  a:\n    cmd: srv --port ${PORT}\n"


def test_defaults_allow_no_other_hosts_and_no_origins(tmp_path: Path, load_text: LoadText) -> None:
    """Without the keys: nothing beyond loopback and the listen address, no CORS origins."""
    loaded = load_text(tmp_path, MODEL)
    assert loaded.config.browser.allowed_hosts == ()
    assert loaded.config.browser.allow_origins == ()
    assert loaded.warnings == []


def test_entries_are_read_normalised_and_printed(tmp_path: Path, load_text: LoadText) -> None:
    """Names and origins are lower-cased, default ports dropped; --print-config shows both."""
    text = (
        "allowedHosts: [Gateway.LAN., .Example.com, '::1']\n"
        "cors:\n  allowOrigins: ['HTTP://LocalHost:3000', 'https://app.example.com:443']\n" + MODEL
    )
    loaded = load_text(tmp_path, text)
    browser = loaded.config.browser
    assert browser.allowed_hosts == ("gateway.lan", ".example.com", "[::1]")
    assert browser.allow_origins == ("http://localhost:3000", "https://app.example.com")
    assert loaded.warnings == []
    shown = effective_json(loaded.config)
    assert shown["allowedHosts"] == ["gateway.lan", ".example.com", "[::1]"]
    assert shown["cors"] == {"allowOrigins": ["http://localhost:3000", "https://app.example.com"]}


def test_star_alone_is_kept_and_star_with_others_warns(tmp_path: Path, load_text: LoadText) -> None:
    """`"*"` disables the check; next to other entries it makes them redundant (a warning)."""
    loaded = load_text(
        tmp_path, "allowedHosts: ['*', a.lan]\ncors: {allowOrigins: ['*']}\n" + MODEL
    )
    assert loaded.config.browser.allowed_hosts == ("*",)
    assert loaded.config.browser.allow_origins == ("*",)
    assert [w.render() for w in loaded.warnings] == [
        'config.yaml:1: allowedHosts: "*" allows any value; the other entries are redundant'
    ]


def test_wrong_types_and_values_are_located_errors(tmp_path: Path, issues_of: IssuesOf) -> None:
    """A non-list, a non-string entry, a host with a port and an origin with a path are
    reported at their paths with the fix."""
    text = (
        "allowedHosts:\n  - 8080\n  - 'gw.lan:8080'\n"
        "cors:\n  allowOrigins:\n    - http://localhost:3000/\n    - localhost\n" + MODEL
    )
    rendered = [i.render() for i in issues_of(tmp_path, text)]
    assert rendered[0] == "config.yaml:2: allowedHosts[0]: expected string, got integer 8080"
    assert rendered[1].startswith(
        'config.yaml:3: allowedHosts[1]: not a valid entry, got string "gw.lan:8080" — write '
        "a host name or address without scheme or port"
    )
    assert rendered[2].startswith(
        'config.yaml:6: cors.allowOrigins[0]: not a valid entry, got string "http://localhost:3000/"'
        " — write scheme://host[:port]"
    )
    assert rendered[3].startswith("config.yaml:7: cors.allowOrigins[1]: not a valid entry, got")
    assert len(rendered) == 4


def test_a_section_of_the_wrong_shape_is_an_error(tmp_path: Path, issues_of: IssuesOf) -> None:
    """`cors` must be a mapping and `allowOrigins` a list."""
    rendered = [i.render() for i in issues_of(tmp_path, "cors: [x]\nallowedHosts: a.lan\n" + MODEL)]
    assert rendered == [
        "config.yaml:1: cors: expected mapping, got list",
        'config.yaml:2: allowedHosts: expected list of strings, got string "a.lan"',
    ]


def test_unknown_cors_key_warns(tmp_path: Path, load_text: LoadText) -> None:
    """A misspelt key under cors is a located warning with a suggestion."""
    loaded = load_text(tmp_path, "cors:\n  allowOrigin: ['*']\n" + MODEL)
    assert loaded.config.browser.allow_origins == ()
    assert [w.path for w in loaded.warnings] == ["cors.allowOrigin"]
    assert "allowOrigins" in loaded.warnings[0].message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("localhost", "localhost"),
        ("Host.Example.", "host.example"),
        (".lan", ".lan"),
        ("10.0.0.7", "10.0.0.7"),
        ("[0:0::1]", "[::1]"),
        ("fe80::1", "[fe80::1]"),
        ("*", "*"),
        ("gw.lan:80", None),
        ("http://gw.lan", None),
        ("bad host", None),
        (".[::1]", None),
        ("", None),
    ],
)
def test_host_entry(raw: str, expected: str | None) -> None:
    """allowedHosts entries: names and addresses as browsers write them in Host, or None."""
    assert host_entry(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://localhost:3000", "http://localhost:3000"),
        ("https://A.example:443", "https://a.example"),
        ("http://a.example:80", "http://a.example"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("chrome-extension://abcdef", "chrome-extension://abcdef"),
        ("http://a.example:0", None),
        ("http://a.example:99999", None),
        ("http://a.example/path", None),
        ("a.example", None),
        ("null", None),
    ],
)
def test_origin_entry(raw: str, expected: str | None) -> None:
    """cors.allowOrigins entries: scheme://host[:port] as browsers send Origin, or None."""
    assert origin_entry(raw) == expected
