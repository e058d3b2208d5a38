"""Anthropic Messages API endpoints: ``/v1/messages`` (JSON and SSE) and ``count_tokens``.

The SSE sequence is the one Anthropic documents and its client parses: ``message_start``,
``content_block_start``, ``ping``, ``content_block_delta``..., ``content_block_stop``,
``message_delta``, ``message_stop``.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from swapgate.bench.fake_upstream.context import (
    Context,
    json_response,
    prompt_tokens,
    read_json_object,
    request_model,
)
from swapgate.bench.fake_upstream.pacing import stream_tokens, wait_for_completion


def _event(name: str, data: object) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


_BLOCK_START = _event(
    "content_block_start",
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
)
_PING = _event("ping", {"type": "ping"})
_BLOCK_STOP = _event("content_block_stop", {"type": "content_block_stop", "index": 0})
_MESSAGE_STOP = _event("message_stop", {"type": "message_stop"})


class AnthropicHandlers:
    """Request handlers for the Anthropic Messages API surface of one fake upstream."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        delta = {"type": "text_delta", "text": " " + ctx.opts.say}
        self._token = _event(
            "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        )

    def routes(self) -> list[web.RouteDef]:
        """The routes this class serves."""
        return [
            web.post("/v1/messages", self.messages),
            web.post("/v1/messages/count_tokens", self.count_tokens),
        ]

    async def count_tokens(self, request: web.Request) -> web.Response:
        """``POST /v1/messages/count_tokens``."""
        body = await read_json_object(request)
        return json_response({"input_tokens": prompt_tokens(body)})

    async def messages(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/messages``, JSON or SSE."""
        body = await read_json_object(request)
        model = request_model(body, self.ctx.opts.model)
        count, truncated = self.ctx.token_budget(body)
        stop_reason = "max_tokens" if truncated else "end_turn"
        input_tokens = prompt_tokens(body)
        message: dict[str, object] = {
            "id": self.ctx.new_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 0},
        }
        if body.get("stream") is True:
            first = _event("message_start", {"type": "message_start", "message": message})
            first += _BLOCK_START + _PING
            end = {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": count},
            }
            tail = _BLOCK_STOP + _event("message_delta", end) + _MESSAGE_STOP
            return await stream_tokens(
                self.ctx, request, first=first, token=self._token, count=count, tail=lambda: tail
            )
        await wait_for_completion(self.ctx, count)
        message["content"] = [{"type": "text", "text": (" " + self.ctx.opts.say) * count}]
        message["stop_reason"] = stop_reason
        message["usage"] = {"input_tokens": input_tokens, "output_tokens": count}
        return json_response(message)
