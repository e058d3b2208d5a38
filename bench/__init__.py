"""Benchmark harness and the fake OpenAI-compatible upstream it drives."""
