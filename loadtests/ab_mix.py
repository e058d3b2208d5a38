"""An A/B split measured from the client side: every request names the routed model
(``SWAPGATE_MODEL``, default ``chat``) and swapgate's route picks the arm.

Stats are named per arm from the ``x-swapgate-route`` response header (``chat stream
chat-ab/variant-a``, and a ``TTFT`` row for each), so the run shows both the split that
swapgate made and each arm's latency. Against ``examples/ab.yaml``:

    swapgate --config examples/ab.yaml &
    locust -f loadtests/ab_mix.py --headless -u 16 -r 16 -t 30s --host http://127.0.0.1:8080
"""

from __future__ import annotations

from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

from swapgate.loadtests.common import stream_chat
from swapgate.loadtests.settings import model


class ABMixUser(FastHttpUser):
    """Streams chat completions for the routed model name, back to back."""

    wait_time = constant(0)

    @task
    def chat_stream(self) -> None:
        """One streamed completion; counted under the arm that answered it."""
        stream_chat(self.client, model("chat"), "chat stream", per_arm=True)
