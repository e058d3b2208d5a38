"""swapgate.proxy.activity.usage: figures from OpenAI, Anthropic and llama-server answers."""

from __future__ import annotations

import orjson

from swapgate.proxy.activity.usage import NO_USAGE, Usage, UsageScanner


def scan(*chunks: bytes) -> Usage:
    scanner = UsageScanner()
    for chunk in chunks:
        scanner.feed(chunk)
    return scanner.usage()


def sse(payload: object) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def test_an_answer_without_figures_has_none() -> None:
    assert scan(sse({"choices": [{"delta": {"content": "hi"}}]}), b"data: [DONE]\n\n") == NO_USAGE


def test_openai_usage_with_cached_tokens() -> None:
    body = orjson.dumps(
        {
            "choices": [{"message": {"content": "x"}}],
            "usage": {
                "prompt_tokens": 120,
                "completion_tokens": 7,
                "prompt_tokens_details": {"cached_tokens": 100},
            },
        }
    )
    assert scan(body) == Usage(prompt_tokens=120, cached_tokens=100, generated_tokens=7)


def test_llama_server_timings_give_speeds_and_fill_in_counts() -> None:
    final = sse(
        {
            "choices": [],
            "timings": {
                "cache_n": 30,
                "prompt_n": 12,
                "prompt_per_second": 812.5,
                "predicted_n": 64,
                "predicted_per_second": 41.25,
            },
        }
    )
    assert scan(sse({"choices": [{"delta": {"content": "a"}}]}), final) == Usage(
        prompt_tokens=42,
        cached_tokens=30,
        generated_tokens=64,
        prefill_tokens_per_s=812.5,
        decode_tokens_per_s=41.25,
    )


def test_usage_wins_over_timings_for_counts() -> None:
    final = sse(
        {
            "usage": {"prompt_tokens": 50, "completion_tokens": 9},
            "timings": {"prompt_n": 5, "cache_n": 45, "predicted_n": 9, "predicted_per_second": 30},
        }
    )
    usage = scan(final)
    assert (usage.prompt_tokens, usage.cached_tokens, usage.generated_tokens) == (50, 45, 9)
    assert usage.decode_tokens_per_s == 30


def test_anthropic_stream_counts_from_start_and_delta() -> None:
    start = b"event: message_start\n" + sse(
        {
            "type": "message_start",
            "message": {"usage": {"input_tokens": 10, "cache_read_input_tokens": 90}},
        }
    )
    delta = b"event: message_delta\n" + sse(
        {"type": "message_delta", "usage": {"output_tokens": 33}}
    )
    assert scan(start, sse({"type": "content_block_delta"}), delta) == Usage(
        prompt_tokens=100, cached_tokens=90, generated_tokens=33
    )


def test_quoted_words_in_the_text_are_not_figures() -> None:
    text = sse({"choices": [{"delta": {"content": 'the "usage" field: "prompt_tokens": 5'}}]})
    assert scan(text) == NO_USAGE


def test_a_huge_chunk_keeps_only_a_slice() -> None:
    body = b"x" * 1_000_000 + orjson.dumps({"usage": {"completion_tokens": 3}})
    scanner = UsageScanner()
    scanner.feed(body)
    assert scanner.usage().generated_tokens == 3
    assert sum(len(piece) for piece in scanner._slices) < 5000


def test_many_usage_chunks_keep_the_first_and_the_latest() -> None:
    chunks = [sse({"usage": {"completion_tokens": n}}) for n in range(1, 50)]
    assert scan(*chunks).generated_tokens == 49


def test_the_first_token_is_the_first_event_with_text() -> None:
    scanner = UsageScanner()
    scanner.feed(sse({"choices": [{"delta": {"role": "assistant", "content": ""}}]}))
    scanner.feed(
        sse({"id": "swapgate-loading", "choices": [{"delta": {"reasoning_content": "…"}}]})
    )
    assert scanner.first_token_at is None
    scanner.feed(sse({"choices": [{"delta": {"content": "Hel"}}]}))
    assert scanner.first_token_at is not None


def test_anthropic_text_deltas_count_as_tokens() -> None:
    scanner = UsageScanner()
    scanner.feed(b"event: message_start\n" + sse({"message": {"content": []}}))
    assert scanner.first_token_at is None
    scanner.feed(
        sse({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hi"}})
    )
    assert scanner.first_token_at is not None
