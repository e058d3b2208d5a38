"""Streaming chat completions; each request also reports its time to first token as ``TTFT``.

locust -f loadtests/chat_stream.py --headless -u 32 -r 32 -t 30s --host http://127.0.0.1:8080
"""

from __future__ import annotations

from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

from swapgate.loadtests.common import stream_chat
from swapgate.loadtests.settings import model


class ChatStreamUser(FastHttpUser):
    """Sends streaming chat completions back to back."""

    wait_time = constant(0)

    @task
    def chat_stream(self) -> None:
        """One streamed completion."""
        stream_chat(self.client, model(), "chat stream")
