"""swapgate.proxy.web.access: one access line per request, nothing per chunk, off with disable()."""

from __future__ import annotations

import asyncio
import logging
import logging.config
import re
from dataclasses import dataclass

import pytest

from swapgate.proxy.web.access import (
    ACCESS_LOGGER,
    AccessLog,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    disable,
    note_key,
    note_model,
)

LINE = re.compile(
    r"(?P<method>\S+) (?P<path>\S+) key=(?P<key>\S+) model=(?P<model>\S+) backend=(?P<backend>\S+) "
    r"route=(?P<route>\S+) status=(?P<status>\S+) ttfb_ms=(?P<ttfb>\S+) "
    r"duration_ms=(?P<duration>\S+) bytes=(?P<bytes>\d+)(?P<incomplete> incomplete)?$"
)


@pytest.fixture
def access_log(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    """Access lines captured at INFO; disable() is undone afterwards."""
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    monkeypatch.setattr("swapgate.proxy.web.access._enabled", True)
    return caplog


@dataclass
class Holder:
    """Stands in for the BlackSheep Request: it holds the scope."""

    scope: Scope


def http_scope(path: str = "/v1/chat/completions") -> Scope:
    return {"type": "http", "method": "POST", "path": path}


async def no_receive() -> Message:
    return {"type": "http.disconnect"}


def streaming_app(chunks: list[bytes], *, fail: bool = False, delay: float = 0.01) -> ASGIApp:
    """An ASGI app that notes a model and streams `chunks` (raising after them if `fail`)."""

    async def app(scope: Scope, _receive: Receive, send: Send) -> None:
        note_model(Holder(scope), "chat")
        headers = [(b"x-swapgate-model", b"variant-a"), (b"x-swapgate-route", b"ab/variant-a")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for chunk in chunks:
            await asyncio.sleep(delay)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if fail:
            msg = "upstream died"
            raise RuntimeError(msg)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def run(app: AccessLog, scope: Scope) -> list[Message]:
    """Call the middleware once; the messages the server would have received."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, no_receive, send))
    return sent


def test_one_line_per_request_with_every_field(access_log: pytest.LogCaptureFixture) -> None:
    """A stream gets one line, when it ends: model, backend, route, status, times, bytes."""
    sent = run(AccessLog(streaming_app([b"data: 1\n\n", b"data: 22\n\n"])), http_scope())
    assert len(sent) == 4
    (record,) = access_log.records
    assert record.name == ACCESS_LOGGER
    assert record.levelno == logging.INFO
    fields = LINE.fullmatch(record.getMessage())
    assert fields is not None, record.getMessage()
    assert fields["method"] == "POST"
    assert fields["path"] == "/v1/chat/completions"
    assert (fields["model"], fields["backend"], fields["route"]) == (
        "chat",
        "variant-a",
        "ab/variant-a",
    )
    assert (fields["status"], fields["bytes"], fields["incomplete"]) == ("200", "19", None)
    assert fields["key"] == "-"
    assert 5 <= float(fields["ttfb"]) <= float(fields["duration"])
    assert float(fields["duration"]) >= 15


def test_the_key_name_is_logged(access_log: pytest.LogCaptureFixture) -> None:
    """note_key puts the API key's name on the line."""
    inner = streaming_app([b"x"])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        note_key(Holder(scope), "alice")
        await inner(scope, receive, send)

    run(AccessLog(app), http_scope())
    fields = LINE.fullmatch(access_log.records[0].getMessage())
    assert fields is not None
    assert fields["key"] == "alice"


def test_aborted_response_is_logged_as_incomplete(access_log: pytest.LogCaptureFixture) -> None:
    """An app that raises mid-body still gets its line, marked incomplete; the error goes on."""
    with pytest.raises(RuntimeError):
        run(AccessLog(streaming_app([b"abc"], fail=True)), http_scope())
    (record,) = access_log.records
    fields = LINE.fullmatch(record.getMessage())
    assert fields is not None
    assert (fields["bytes"], fields["incomplete"]) == ("3", " incomplete")


def test_plain_requests_show_dashes(access_log: pytest.LogCaptureFixture) -> None:
    """Without a noted model or swapgate headers the fields are `-`; odd paths are quoted."""

    async def app(_scope: Scope, _receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"nope"})

    run(AccessLog(app), {"type": "http", "method": "GET", "path": "/a b\nc"})
    message = access_log.records[0].getMessage()
    assert message.startswith('GET "/a b\\nc" key=- model=- backend=- route=- status=404 ')
    assert message.endswith(" bytes=4")
    assert "\n" not in message


def test_disabled_log_passes_send_through_untouched(access_log: pytest.LogCaptureFixture) -> None:
    """After disable() the app gets the server's own send and nothing is logged."""
    seen: list[Send] = []

    async def app(_scope: Scope, _receive: Receive, send: Send) -> None:
        seen.append(send)

    async def server_send(_message: Message) -> None:
        pass

    disable()
    asyncio.run(AccessLog(app)(http_scope(), no_receive, server_send))
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})  # as Granian
    asyncio.run(AccessLog(app)(http_scope(), no_receive, server_send))
    assert seen == [server_send, server_send]
    assert access_log.records == []


def test_log_level_above_info_turns_it_off(access_log: pytest.LogCaptureFixture) -> None:
    """With the swapgate logger at WARNING the app again gets the server's own send."""
    seen: list[Send] = []

    async def app(_scope: Scope, _receive: Receive, send: Send) -> None:
        seen.append(send)

    async def server_send(_message: Message) -> None:
        pass

    access_log.set_level(logging.WARNING, logger=ACCESS_LOGGER)
    asyncio.run(AccessLog(app)(http_scope(), no_receive, server_send))
    assert seen == [server_send]


def test_lifespan_is_not_logged(access_log: pytest.LogCaptureFixture) -> None:
    """Only HTTP requests get lines; lifespan messages pass straight through."""
    calls: list[str] = []

    async def app(scope: Scope, _receive: Receive, _send: Send) -> None:
        calls.append(scope["type"])

    run(AccessLog(app), {"type": "lifespan"})
    assert calls == ["lifespan"]
    assert access_log.records == []
