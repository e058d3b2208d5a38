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
            f"   {i}: 0100007F:{port:04X} 0100007F:D431 {state} 00000000:00000000 "
            f"00:00000000 00000000     0        0 {100 + i} 1 0000000000000000 20 4 30 10 -1"
        )
    path = tmp_path / "tcp"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_lists_established_connections_on_the_port(tmp_path: Path) -> None:
    path = table(tmp_path, (8080, "01"), (8080, "01"), (8080, "0A"), (18080, "01"), (8080, "06"))
    assert established(8080, (path,)) == [100, 101]


def test_no_proc_tables_means_unknown(tmp_path: Path) -> None:
    assert established(8080, (str(tmp_path / "missing"),)) is None


def test_counts_real_sockets() -> None:
    with socket.socket() as server:
        server.bind((LOCALHOST, 0))
        server.listen()
        port = server.getsockname()[1]
        clients = [socket.create_connection((LOCALHOST, port)) for _ in range(3)]
        try:
            found = established(port)
            assert found is not None
            assert len(found) == 3
        finally:
            for client in clients:
                client.close()


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    headers = [(b"connection", b"keep-alive"), (b"x", b"1")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})


async def _answer(
    relief: ConnectionRelief, client: object = ("127.0.0.1", 5)
) -> list[tuple[bytes, bytes]]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    await relief({"type": "http", "client": client}, receive, send)
    headers: list[tuple[bytes, bytes]] = sent[0]["headers"]
    return headers


def test_responses_close_their_connection_only_near_the_cap() -> None:
    pressure = ConnectionPressure(port=1, limit=100)
    assert pressure.high == 90
    relief = ConnectionRelief(_app, pressure)
    assert asyncio.run(_answer(relief)) == [(b"connection", b"keep-alive"), (b"x", b"1")]
    pressure.near = True
    assert asyncio.run(_answer(relief)) == [(b"x", b"1"), (b"connection", b"close")]


def test_requests_in_flight_are_counted_per_client_address() -> None:
    pressure = ConnectionPressure(port=1, limit=100)
    seen: list[dict[tuple[object, ...], int]] = []
    release = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(dict(pressure.busy))
        await release.wait()
        if scope["client"][1] == "6":
            failed = "the answer failed"
            raise RuntimeError(failed)

    async def serve(client: object) -> None:
        async def receive() -> Message:
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            pass

        await ConnectionRelief(app, pressure)({"type": "http", "client": client}, receive, send)

    async def scenario() -> None:
        clients = [("127.0.0.1", "5"), ("127.0.0.1", "5"), ("127.0.0.1", "6"), None]  # as Granian
        tasks = [asyncio.create_task(serve(client)) for client in clients]
        await asyncio.sleep(0.01)
        assert pressure.busy == {("127.0.0.1", "5"): 2, ("127.0.0.1", "6"): 1}
        release.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(scenario())
    assert len(seen) == 4
    assert pressure.busy == {}  # a failed answer is counted out too
