"""swapgate: a model-swapping gateway for local LLM servers.

The code lives in the repository's top-level folders (proxy/, router/, bench/, loadtests/);
this package maps them under one import name, so `swapgate.proxy` cannot collide with other
distributions' top-level modules (proxy.py installs `proxy`, for one).
"""
