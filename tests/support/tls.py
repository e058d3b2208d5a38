"""A self-signed certificate for 127.0.0.1/localhost, made with the `openssl` command."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CertFiles:
    """A PEM certificate and its unencrypted private key."""

    cert: Path
    key: Path


def self_signed(folder: Path, name: str = "server") -> CertFiles:
    """A fresh RSA key and a certificate valid for localhost and 127.0.0.1, in `folder`."""
    openssl = shutil.which("openssl")
    if openssl is None:
        msg = "the TLS tests need the openssl command (apt-get install openssl)"
        raise RuntimeError(msg)
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return CertFiles(cert, key)
