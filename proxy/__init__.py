"""swapgate: a model-swapping gateway for local LLM servers."""

__version__ = "0.1.0"
