"""The method table behind 405 answers (pure)."""

from __future__ import annotations

from swapgate.proxy.web.methods import MethodTable, not_allowed_response


def table() -> MethodTable:
    methods = MethodTable()
    methods.add(("GET", "HEAD", "OPTIONS"), "/running")
    methods.add(("POST", "OPTIONS"), "/v1/messages")
    methods.add(("GET", "HEAD"), "/v1/models/*")
    return methods


def test_known_paths_list_their_methods_without_options() -> None:
    """Exact and `/*` paths give their methods (case-blind); OPTIONS is not listed."""
    methods = table()
    assert methods.allowed("/running") == ("GET", "HEAD")
    assert methods.allowed("/RUNNING") == ("GET", "HEAD")
    assert methods.allowed("/v1/models/org/model") == ("GET", "HEAD")
    assert methods.allowed("/nothing") == ()


def test_not_allowed_is_405_with_allow_or_none_for_unknown_paths() -> None:
    """A known path gets a 405 carrying Allow; an unknown one gets None (a 404)."""
    methods = table()
    assert methods.not_allowed("DELETE", "/nothing") is None
    exc = methods.not_allowed("DELETE", "/running")
    assert exc is not None
    assert exc.allow == ("GET", "HEAD")
    response = not_allowed_response(exc, "/running")
    assert response.status == 405
    assert response.get_first_header(b"allow") == b"GET, HEAD"


def test_anthropic_paths_answer_in_anthropic_shape() -> None:
    """GET /v1/messages: 405 with Anthropic's envelope."""
    exc = table().not_allowed("GET", "/v1/messages")
    assert exc is not None
    response = not_allowed_response(exc, "/v1/messages")
    assert response.content is not None
    assert response.content.body is not None
    assert response.content.body.startswith(b'{"type":"error"')
