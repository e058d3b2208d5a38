"""OpenAI-compatible endpoints: ``/v1/models``, chat and text completions, embeddings.

Streaming chunks are assembled from byte templates: the per-request prefix (id, created,
model) is encoded once per request and the token chunk is then one constant ``bytes`` object
written ``count`` times, so a long stream costs almost nothing but the writes themselves.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time

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

DONE = b"data: [DONE]\n\n"
EMBEDDING_DIM = 8
_CHOICE_OPEN = b'"choices":[{"index":0,'
_CHUNK_CLOSE = b"}]}\n\n"


class OpenAIHandlers:
    """Request handlers for the OpenAI API surface of one fake upstream."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        piece = orjson.dumps(" " + ctx.opts.say)
        self._chat_token = (
            b'"delta":{"content":' + piece + b'},"logprobs":null,"finish_reason":null'
        )
        self._text_token = b'"text":' + piece + b',"logprobs":null,"finish_reason":null'

    def routes(self) -> list[web.RouteDef]:
        """The routes this class serves."""
        return [
            web.get("/v1/models", self.models),
            web.post("/v1/chat/completions", self.chat),
            web.post("/v1/completions", self.completions),
            web.post("/v1/embeddings", self.embeddings),
        ]

    async def models(self, request: web.Request) -> web.Response:
        """The OpenAI model list: just this fake's ``--model``."""
        entry = {"id": self.ctx.opts.model, "object": "model", "created": 0, "owned_by": "fake"}
        return json_response({"object": "list", "data": [entry]})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/chat/completions``, JSON or SSE."""
        return await self._complete(request, chat=True)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/completions``, JSON or SSE."""
        return await self._complete(request, chat=False)

    async def _complete(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        body = await read_json_object(request)
        model = request_model(body, self.ctx.opts.model)
        count, truncated = self.ctx.token_budget(body)
        finish = "length" if truncated else "stop"
        usage = _usage(prompt_tokens(body), count)
        oid = self.ctx.new_id("chatcmpl" if chat else "cmpl")
        created = int(time.time())
        if body.get("stream") is True:
            kind = "chat.completion.chunk" if chat else "text_completion"
            prefix = _chunk_prefix(oid, kind, created, model)
            include_usage = _wants_usage(body)

            def tail() -> bytes:
                end = b'"delta":{},' if chat else b'"text":"",'
                out = prefix + end + b'"logprobs":null,"finish_reason":"' + finish.encode()
                out += b'"' + _CHUNK_CLOSE
                if include_usage:
                    extra = {"id": oid, "object": kind, "created": created, "model": model}
                    out += b"data: " + orjson.dumps({**extra, "choices": [], "usage": usage})
                    out += b"\n\n"
                return out + DONE

            role = b'"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null'
            token = prefix + (self._chat_token if chat else self._text_token) + _CHUNK_CLOSE
            first = prefix + role + _CHUNK_CLOSE if chat else b""
            return await stream_tokens(
                self.ctx, request, first=first, token=token, count=count, tail=tail
            )
        await wait_for_completion(self.ctx, count)
        text = (" " + self.ctx.opts.say) * count
        choice: dict[str, object] = {"index": 0, "logprobs": None, "finish_reason": finish}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        kind = "chat.completion" if chat else "text_completion"
        return json_response(
            {
                "id": oid,
                "object": kind,
                "created": created,
                "model": model,
                "choices": [choice],
                "usage": usage,
            }
        )

    async def embeddings(self, request: web.Request) -> web.Response:
        """``POST /v1/embeddings``: one deterministic vector per input, float or base64."""
        body = await read_json_object(request)
        raw_inputs = body.get("input", "")
        inputs = raw_inputs if isinstance(raw_inputs, list) else [raw_inputs]
        as_base64 = body.get("encoding_format") == "base64"
        data = [
            {"object": "embedding", "index": i, "embedding": _embed(item, as_base64=as_base64)}
            for i, item in enumerate(inputs)
        ]
        n = prompt_tokens(body)
        return json_response(
            {
                "object": "list",
                "data": data,
                "model": request_model(body, self.ctx.opts.model),
                "usage": {"prompt_tokens": n, "total_tokens": n},
            }
        )


def _chunk_prefix(oid: str, kind: str, created: int, model: str) -> bytes:
    head = orjson.dumps({"id": oid, "object": kind, "created": created, "model": model})
    return b"data: " + head[:-1] + b"," + _CHOICE_OPEN


def _wants_usage(body: dict[str, object]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _embed(item: object, *, as_base64: bool) -> list[float] | str:
    """A unit-free vector in [-1, 1) derived from a hash of the input."""
    digest = hashlib.blake2b(orjson.dumps(item), digest_size=EMBEDDING_DIM).digest()
    vector = [(b - 128) / 128 for b in digest]
    if as_base64:
        return base64.b64encode(struct.pack(f"<{EMBEDDING_DIM}f", *vector)).decode()
    return vector
