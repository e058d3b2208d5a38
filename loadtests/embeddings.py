"""Embeddings requests (``SWAPGATE_EMBED_MODEL``, default ``SWAPGATE_MODEL``).

locust -f loadtests/embeddings.py --headless -u 16 -r 16 -t 30s --host http://127.0.0.1:8080
"""

from __future__ import annotations

import json
import os

from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

from swapgate.loadtests.settings import model

INPUTS = ["the quick brown fox", "jumps over", "the lazy dog", "swapgate starts servers on demand"]


class EmbeddingsUser(FastHttpUser):
    """Sends four-input embedding requests back to back."""

    wait_time = constant(0)

    @task
    def embed(self) -> None:
        """One embeddings request."""
        body = json.dumps(
            {"model": os.environ.get("SWAPGATE_EMBED_MODEL", model()), "input": INPUTS}
        )
        headers = {"Content-Type": "application/json"}
        self.client.post("/v1/embeddings", data=body, headers=headers, name="embeddings")
