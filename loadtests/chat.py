"""Non-streaming chat completions.

locust -f loadtests/chat.py --headless -u 32 -r 32 -t 30s --host http://127.0.0.1:8080
"""

from __future__ import annotations

from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

from swapgate.loadtests.settings import CHAT_PATH, chat_body, model


class ChatUser(FastHttpUser):
    """Sends JSON chat completions back to back."""

    wait_time = constant(0)

    @task
    def chat(self) -> None:
        """One completion."""
        headers = {"Content-Type": "application/json"}
        self.client.post(
            CHAT_PATH, data=chat_body(model(), stream=False), headers=headers, name="chat"
        )
