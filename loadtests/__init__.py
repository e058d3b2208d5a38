"""Locust load tests against a running swapgate (or any OpenAI-compatible URL)."""
