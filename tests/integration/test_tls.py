"""HTTPS with --tls-cert-file/--tls-key-file: a real swapgate, a self-signed certificate made
by openssl, and clients that verify it."""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gateway import SWAPGATE, fake_cmd
from tests.support.procs import LOCALHOST, free_port, kill_group, spawn, wait_until
from tests.support.tls import CertFiles, self_signed

pytestmark = pytest.mark.integration

CONFIG = f"models:\n  a:\n    cmd: {fake_cmd('a')}\n"


def _https(port: int, cert: Path, method: str, path: str, body: object = None) -> tuple[int, bytes]:
    """One request over TLS that trusts only `cert` and checks the host name."""
    context = ssl.create_default_context(cafile=str(cert))
    conn = http.client.HTTPSConnection(LOCALHOST, port, context=context, timeout=30)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data else {}
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@contextlib.contextmanager
def _serving_tls(folder: Path, files: CertFiles) -> Iterator[tuple[int, Path]]:
    """swapgate with TLS on a free port; yields (port, log path) once /health answers."""
    config, log_path = folder / "config.yaml", folder / "swapgate.log"
    config.write_text(f"startPort: {free_port()}\n" + CONFIG)
    port = free_port()
    argv = [SWAPGATE, "--config", str(config), "--listen", f"{LOCALHOST}:{port}"]
    argv += ["--tls-cert-file", str(files.cert), "--tls-key-file", str(files.key)]
    with log_path.open("wb") as log:
        proc = spawn(argv, stdout=log, stderr=subprocess.STDOUT)
    try:

        def healthy() -> bool:
            if proc.poll() is not None:
                msg = f"swapgate exited with {proc.returncode}:\n{log_path.read_text()}"
                raise RuntimeError(msg)
            try:
                return _https(port, files.cert, "GET", "/health")[0] == 200
            except OSError:
                return False

        wait_until(healthy, 15, message="swapgate /health over https")
        yield port, log_path
    finally:
        kill_group(proc)


def test_swapgate_serves_https_with_the_given_certificate() -> None:
    """/health and a chat answer over TLS, the start-up line says https, and plain HTTP on
    the same port gets no HTTP answer."""
    with tempfile.TemporaryDirectory(prefix="swapgate-tls-") as tmp:
        files = self_signed(Path(tmp))
        with _serving_tls(Path(tmp), files) as (port, log_path):
            body = {"model": "a", "messages": [{"role": "user", "content": "hi"}]}
            status, raw = _https(port, files.cert, "POST", "/v1/chat/completions", body)
            assert status == 200
            assert json.loads(raw)["object"] == "chat.completion"
            assert f"serving 1 models on https://{LOCALHOST}:{port}" in log_path.read_text()
            with pytest.raises((http.client.HTTPException, OSError)):
                _plain_http_get(port)


def _plain_http_get(port: int) -> int:
    conn = http.client.HTTPConnection(LOCALHOST, port, timeout=10)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status
    finally:
        conn.close()


def _refused(*flags: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="swapgate-tls-") as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(CONFIG)
        argv = [SWAPGATE, "--config", str(config), "--listen", f"{LOCALHOST}:{free_port()}"]
        return subprocess.run(
            [*argv, *flags], capture_output=True, text=True, timeout=30, check=False
        )


def test_one_tls_flag_alone_is_refused(tmp_path: Path) -> None:
    """A certificate without a key (or the reverse) exits 2 before serving, naming the flag."""
    files = self_signed(tmp_path)
    result = _refused("--tls-cert-file", str(files.cert))
    assert result.returncode == 2
    assert "--tls-cert-file needs --tls-key-file too" in result.stderr
    result = _refused("--tls-key-file", str(files.key))
    assert result.returncode == 2
    assert "--tls-key-file needs --tls-cert-file too" in result.stderr


def test_unreadable_tls_files_are_refused(tmp_path: Path) -> None:
    """A missing key file, or a key that is not the certificate's, exits 2 with the reason."""
    files, other = self_signed(tmp_path, "a"), self_signed(tmp_path, "b")
    missing = tmp_path / "nope.key"
    result = _refused("--tls-cert-file", str(files.cert), "--tls-key-file", str(missing))
    assert result.returncode == 2
    assert f"--tls-key-file: cannot read {missing}" in result.stderr
    result = _refused("--tls-cert-file", str(files.cert), "--tls-key-file", str(other.key))
    assert result.returncode == 2
    assert "are not a PEM certificate and its private key" in result.stderr
    assert "serving" not in result.stderr
