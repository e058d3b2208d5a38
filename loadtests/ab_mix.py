"""A weighted A/B mix of streaming chat across models: ``SWAPGATE_AB_MODELS=a:70,b:30``.

Each request picks its model by weight, so the mix also exercises swapping when the models
do not fit side by side. Stats are named per model (``chat stream a``, ``TTFT`` too).

    SWAPGATE_AB_MODELS=alpha:70,bravo:30 locust -f loadtests/ab_mix.py --headless \
        -u 16 -r 16 -t 30s --host http://127.0.0.1:8080
"""

from __future__ import annotations

import random

from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

from loadtests.common import stream_chat
from loadtests.settings import ab_models


class ABMixUser(FastHttpUser):
    """Streams chat completions from a weighted random choice of models."""

    wait_time = constant(0)

    def on_start(self) -> None:
        """Read the mix once per user; a bad SWAPGATE_AB_MODELS fails at start-up."""
        pairs = ab_models()
        self.models = [name for name, _ in pairs]
        self.weights = [weight for _, weight in pairs]

    @task
    def chat_stream(self) -> None:
        """One streamed completion from a model drawn by weight."""
        chosen = random.choices(self.models, weights=self.weights)[0]
        stream_chat(self.client, chosen, f"chat stream {chosen}")
