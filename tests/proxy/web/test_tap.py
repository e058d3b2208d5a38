"""RouteTap: token counting from usage or SSE events, TTFT, and model-name rewriting."""

from __future__ import annotations

from swapgate.proxy.rewrite import ModelNameRewriter
from swapgate.proxy.routestats import RouteStats
from swapgate.proxy.web.tap import RouteTap

SSE = (
    b'data: {"model":"served","choices":[{"delta":{"role":"assistant","content":""}}]}\n\n'
    b'data: {"model":"served","choices":[{"delta":{"content":" a"}}]}\n\n'
    b'data: {"model":"served","choices":[{"delta":{"content":" b"}}]}\n\n'
)


def arms(stats: RouteStats) -> dict[str, object]:
    snapshot = stats.snapshot()
    routes = snapshot["routes"]
    assert isinstance(routes, dict)
    rule = routes["ab"]
    assert isinstance(rule, dict)
    result = rule["arms"]
    assert isinstance(result, dict)
    return result


def test_sse_text_events_count_as_tokens_without_usage() -> None:
    """Without usage, SSE text events still yield a tokens/s figure for the arm."""
    stats = RouteStats()
    tap = RouteTap(stats, "ab", "a", None)
    assert tap.chunk(SSE) == SSE
    tap.done(200)
    arm = arms(stats)["a"]
    assert isinstance(arm, dict)
    assert arm["requests"] == 1
    assert arm["output_tokens_per_s"] is not None


def test_usage_wins_over_counting_and_errors_are_recorded() -> None:
    """A usage block's completion_tokens replaces the count; a 502 is counted as an error."""
    stats = RouteStats()
    tap = RouteTap(stats, "ab", "b", None)
    tap.chunk(b'{"choices":[{"text":"x"}],"usage":{"completion_tokens":7}}')
    tap.done(502)
    arm = arms(stats)["b"]
    assert isinstance(arm, dict)
    assert arm["errors"] == {"502": 1}


def test_rewriter_runs_on_every_chunk() -> None:
    """With a rewriter, the served name becomes the asked one in what the client gets."""
    tap = RouteTap(RouteStats(), "ab", "a", ModelNameRewriter("served", "asked"))
    out = tap.chunk(SSE) + tap.finish()
    assert b'"model":"asked"' in out
    assert b'"model":"served"' not in out
