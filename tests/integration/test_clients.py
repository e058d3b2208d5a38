"""Official OpenAI and Anthropic clients, model listing and logs through a real swapgate."""

from __future__ import annotations

import concurrent.futures
import http.client

import anthropic
import openai
import pytest

from tests.support.gateway import fake_cmd, start_swapgate
from tests.support.procs import LOCALHOST

pytestmark = pytest.mark.integration

CONFIG = f"""
includeAliasesInList: true
models:
  alpha:
    cmd: {fake_cmd("alpha", say="alpha", tokens=5)}
    name: Alpha
    description: the first letter
    aliases: [a]
    metadata:
      family: greek
      size_b: 7
  hidden:
    cmd: {fake_cmd("hidden")}
    unlisted: true
"""


def test_openai_client_streaming_and_not() -> None:
    """The official openai client works unchanged, with and without streaming."""
    with start_swapgate(CONFIG) as gate:
        client = openai.OpenAI(base_url=gate.url + "/v1", api_key="unused", max_retries=0)
        reply = client.chat.completions.create(
            model="alpha", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content == " alpha" * 5
        stream = client.chat.completions.create(
            model="a", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert text == " alpha" * 5
        embedding = client.embeddings.create(model="alpha", input="hello")
        assert len(embedding.data[0].embedding) > 0
        models = sorted(m.id for m in client.models.list())
        assert models == ["a", "alpha"]
        client.close()


def test_anthropic_client_messages() -> None:
    """The official anthropic client works against /v1/messages, streaming and not."""
    with start_swapgate(CONFIG) as gate:
        client = anthropic.Anthropic(base_url=gate.url, api_key="unused", max_retries=0)
        message = client.messages.create(
            model="alpha", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content[0].type == "text"
        assert "alpha" in message.content[0].text
        with client.messages.stream(
            model="alpha", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            assert "alpha" in "".join(stream.text_stream)
        client.close()


def test_models_list_shows_names_metadata_and_hides_unlisted() -> None:
    """GET /v1/models: OpenAI list with name/description/meta; unlisted models are hidden."""
    with start_swapgate(CONFIG) as gate:
        status, _, body = gate.get("/v1/models")
        assert status == 200
        assert body["object"] == "list"
        by_id = {record["id"]: record for record in body["data"]}
        assert sorted(by_id) == ["a", "alpha"]
        alpha = by_id["alpha"]
        assert (alpha["object"], alpha["name"], alpha["description"]) == (
            "model",
            "Alpha",
            "the first letter",
        )
        assert alpha["meta"] == {"llamaswap": {"family": "greek", "size_b": 7}}
        # Unlisted models still answer when asked for by name.
        assert gate.chat("hidden")[0] == 200


def test_logs_show_model_output_and_stream_live() -> None:
    """GET /logs holds the model's output; /logs/stream/{model} streams new lines live."""
    with start_swapgate(CONFIG) as gate:
        conn = http.client.HTTPConnection(LOCALHOST, gate.port, timeout=10)
        conn.request("GET", "/logs/stream/alpha?no-history")
        # Headers go out with the first line, so start the model while we wait for it.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            chat = pool.submit(gate.chat, "alpha")
            response = conn.getresponse()
            assert response.status == 200
            line = response.readline().decode()
            assert chat.result()[0] == 200
        assert "fake upstream alpha listening" in line
        conn.close()
        status, _, text = gate.get("/logs")
        assert status == 200
        assert "[alpha]" in text
        assert "[proxy]" in text


def test_cors_preflight_and_upstream_slash_redirect() -> None:
    """With `cors.allowOrigins: ["*"]` (llama-swap's open CORS) OPTIONS gets a 204 allowing
    any origin and echoing only well-formed header names; /upstream/{model} redirects to its
    trailing-slash form (308 for POST keeps the body)."""
    with start_swapgate("cors:\n  allowOrigins: ['*']\n" + CONFIG) as gate:
        conn = http.client.HTTPConnection(LOCALHOST, gate.port, timeout=10)
        conn.request(
            "OPTIONS",
            "/v1/chat/completions",
            headers={
                "Origin": "http://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-foo, bad header",
            },
        )
        response = conn.getresponse()
        response.read()
        assert response.status == 204
        assert response.getheader("access-control-allow-origin") == "*"
        assert response.getheader("access-control-allow-headers") == "content-type, x-foo"
        for method, status in (("GET", 301), ("POST", 308)):
            conn.request(method, "/upstream/alpha?x=1", body=b"{}" if method == "POST" else None)
            response = conn.getresponse()
            response.read()
            assert response.status == status
            assert response.getheader("location") == "/upstream/alpha/?x=1"
        conn.close()
        assert gate.running() == {}  # neither started the model
