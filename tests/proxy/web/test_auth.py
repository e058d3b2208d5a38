"""auth.py: which key a request carries, what it grants, and which scope each endpoint needs."""

from __future__ import annotations

import base64

import pytest
from blacksheep import Request

from swapgate.proxy.config.keys import ALL_SCOPES, KeyScope, KeySpec
from swapgate.proxy.config.model import Config
from swapgate.proxy.errors import Forbidden, Unauthorized
from swapgate.proxy.web.access import KEY_NAME_KEY
from swapgate.proxy.web.auth import Keyring, required_scope
from swapgate.proxy.web.inference import INFERENCE_PATHS
from tests.support.specs import fake_spec

CONFIG = Config(
    api_keys=("sk-full-access",),
    keys=(
        KeySpec(name="alice", key="sk-alice-key"),
        KeySpec(name="ops", key="sk-ops-key", scopes=frozenset({KeyScope.ADMIN, KeyScope.LOGS})),
        KeySpec(name="one", key="sk-one-key", models=("a*",), max_concurrent=1),
    ),
    models={"alpha": fake_spec("alpha"), "bravo": fake_spec("bravo")},
)


def request(path: str, *headers: tuple[bytes, bytes], method: str = "GET") -> Request:
    """A request as BlackSheep hands it to a handler (headers, and the scope's path)."""
    made = Request(method, path.encode(), list(headers))
    made.scope = {"type": "http", "method": method, "path": path, "headers": list(headers)}  # type: ignore[typeddict-item]  # the fields read
    return made


def test_every_way_of_sending_a_key_is_read() -> None:
    """Bearer, x-api-key and the Basic password all carry a key; apiKeys grant every scope."""
    keyring = Keyring(CONFIG)
    basic = b"Basic " + base64.b64encode(b"user:sk-alice-key")
    assert (
        keyring.identify(request("/v1/models", (b"authorization", b"Bearer sk-ops-key"))).name
        == "ops"
    )
    assert keyring.identify(request("/v1/models", (b"x-api-key", b"sk-one-key"))).name == "one"
    assert keyring.identify(request("/v1/models", (b"authorization", basic))).name == "alice"
    full = keyring.identify(request("/v1/models", (b"x-api-key", b"sk-full-access")))
    assert (full.name, full.scopes, full.models, full.limits) == (
        "apiKeys[0]",
        ALL_SCOPES,
        None,
        None,
    )


@pytest.mark.parametrize(
    "headers",
    [(), ((b"authorization", b"Bearer sk-nope"),), ((b"authorization", b"Token sk-alice-key"),),
     ((b"authorization", b"Basic !!!"),), ((b"x-api-key", b"sk-alice-ke"),)],
)  # fmt: skip
def test_missing_or_wrong_keys_are_unauthorized(headers: tuple[tuple[bytes, bytes], ...]) -> None:
    """No key, a wrong one, an unknown scheme, bad Basic, or a prefix of a key: 401, and the
    message never echoes what was sent."""
    with pytest.raises(Unauthorized) as caught:
        Keyring(CONFIG).identify(request("/v1/models", *headers))
    assert not any(value.decode() in caught.value.message for _, value in headers)


def test_admit_checks_the_scope_and_notes_the_name() -> None:
    """A key without the endpoint's scope is 403 naming the scope; the name goes on the request
    (never the key) and grant_of finds the grant again."""
    keyring = Keyring(CONFIG)
    unload = request("/api/models/unload", (b"x-api-key", b"sk-alice-key"), method="POST")
    with pytest.raises(Forbidden) as caught:
        keyring.admit(unload, KeyScope.ADMIN)
    assert "'admin' scope" in caught.value.message
    assert "sk-alice-key" not in caught.value.message
    assert unload.scope[KEY_NAME_KEY] == "alice"  # type: ignore[literal-required]  # swapgate's own scope key
    chat = request("/v1/chat/completions", (b"x-api-key", b"sk-one-key"), method="POST")
    grant = keyring.admit(chat, KeyScope.INFERENCE)
    assert keyring.grant_of(chat) is grant
    assert grant.models is not None
    assert (grant.models.allows("alpha"), grant.models.allows("bravo")) == (True, False)
    assert grant.limits is not None
    assert keyring.grant_of(request("/health")) is None


def test_no_keys_means_an_empty_keyring() -> None:
    """Without apiKeys and keys the keyring is falsy: the gateway then checks nothing."""
    assert not Keyring(Config())
    assert Keyring(Config(api_keys=("sk-x",)))


@pytest.mark.parametrize(
    "path", [*INFERENCE_PATHS, "/upstream/alpha/x", "/v1/models", "/v1/models/org/m"]
)
def test_inference_endpoints_need_inference(path: str) -> None:
    """The inference POST paths, /upstream/* and GET /v1/models* need `inference`."""
    assert required_scope(path) is KeyScope.INFERENCE


@pytest.mark.parametrize(
    ("path", "scope"),
    [
        ("/running", KeyScope.ADMIN),
        ("/api/models/unload", KeyScope.ADMIN),
        ("/api/models/unload/alpha", KeyScope.ADMIN),
        ("/api/models/load/alpha", KeyScope.ADMIN),
        ("/api/routes", KeyScope.ADMIN),
        ("/api/routes/reset", KeyScope.ADMIN),
        ("/api/gpu", KeyScope.ADMIN),
        ("/api/events", KeyScope.ADMIN),
        ("/unload", KeyScope.ADMIN),
        ("/logs", KeyScope.LOGS),
        ("/logs/stream", KeyScope.LOGS),
        ("/logs/stream/alpha", KeyScope.LOGS),
        ("/logsx", KeyScope.INFERENCE),
    ],
)
def test_management_endpoints_need_admin_or_logs(path: str, scope: KeyScope) -> None:
    """The scope map of the README: admin for management, logs for the log endpoints."""
    assert required_scope(path) is scope
