"""swapgate.proxy.web.pressure: counting the listening port's connections, and the
`Connection: close` answers near the cap."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from swapgate.proxy.web.pressure import (
    ConnectionPressure,
    ConnectionRelief,
    Message,
    Receive,
    Scope,
    Send,
    established,
)
from tests.support.procs import LOCALHOST

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"


def table(tmp_path: Path, *rows: tuple[int, str]) -> str:
    lines = [HEADER]
    for i, (port, state) in enumerate(rows):
        lines.append(
            f"   {i}: 0100007F:{port:04X} 0100007F:D431 {state} 00000000:00000000 00:00000000"
        )
    path = tmp_path / "tcp"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_counts_established_connections_on_the_port(tmp_path: Path) -> None:
    path = table(tmp_path, (8080, "01"), (8080, "01"), (8080, "0A"), (18080, "01"), (8080, "06"))
    assert established(8080, (path,)) == 2


def test_no_proc_tables_means_unknown(tmp_path: Path) -> None:
    assert established(8080, (str(tmp_path / "missing"),)) is None


def test_counts_real_sockets() -> None:
    with socket.socket() as server:
        server.bind((LOCALHOST, 0))
        server.listen()
        port = server.getsockname()[1]
        clients = [socket.create_connection((LOCALHOST, port)) for _ in range(3)]
        try:
            assert established(port) == 3
        finally:
            for client in clients:
                client.close()


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    headers = [(b"connection", b"keep-alive"), (b"x", b"1")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})


async def _answer(relief: ConnectionRelief) -> list[tuple[bytes, bytes]]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    await relief({"type": "http"}, receive, send)
    headers: list[tuple[bytes, bytes]] = sent[0]["headers"]
    return headers


def test_responses_close_their_connection_only_near_the_cap() -> None:
    pressure = ConnectionPressure(port=1, limit=100)
    assert pressure.high == 90
    relief = ConnectionRelief(_app, pressure)
    assert asyncio.run(_answer(relief)) == [(b"connection", b"keep-alive"), (b"x", b"1")]
    pressure.near = True
    assert asyncio.run(_answer(relief)) == [(b"x", b"1"), (b"connection", b"close")]
