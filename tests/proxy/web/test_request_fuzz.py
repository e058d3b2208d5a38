"""Request parsing under any input: a model name, or a clear 400, never anything else.

Bodies are arbitrary bytes, JSON documents of any shape (deep nesting, huge and odd numbers,
non-ASCII and control characters in the model name) and multipart forms; content types are
JSON, multipart with or without a boundary, and junk.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swapgate.proxy.errors import BadRequest
from swapgate.proxy.web.extract import parse_inference_body, with_model

CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            b"application/json",
            b"application/json; charset=utf-8",
            b"multipart/form-data; boundary=XyZ",
            b'multipart/form-data; boundary="a b"',
            b"multipart/form-data",
            b"text/plain",
            b"",
        ]
    ),
    st.binary(max_size=40),
)
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
MODEL_NAMES = st.text(min_size=1, max_size=30)  # includes CR, LF, NUL, '/', '..'


def _json_body(model: object, extra: dict[str, object]) -> bytes:
    return orjson.dumps({**extra, "model": model})


def _multipart(model: bytes, boundary: bytes = b"XyZ") -> bytes:
    return (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="a.wav"'
        b"\r\n\r\nRIFF....\r\n--" + boundary + b'\r\nContent-Disposition: form-data; name="model"'
        b"\r\n\r\n" + model + b"\r\n--" + boundary + b"--\r\n"
    )


@given(raw=st.binary(max_size=300), content_type=CONTENT_TYPES)
def test_any_bytes_give_a_model_or_a_bad_request(raw: bytes, content_type: bytes) -> None:
    try:
        outcome = parse_inference_body(raw, content_type).model  # a non-empty name
    except BadRequest as exc:
        outcome = str(exc)  # or a message saying what is wrong
    assert isinstance(outcome, str)
    assert outcome


@given(model=MODEL_NAMES, extra=st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5))
def test_a_json_model_name_survives_any_body_and_any_rename(
    model: str, extra: dict[str, object]
) -> None:
    raw = _json_body(model, extra)
    body = parse_inference_body(raw, b"application/json")
    assert body.model == model
    renamed = parse_inference_body(with_model(body, b"application/json", "upstream/x"), b"")
    assert renamed.model == "upstream/x"
    assert {k: v for k, v in (renamed.parsed or {}).items() if k != "model"} == {
        k: v for k, v in extra.items() if k != "model"
    }


@given(model=st.one_of(JSON_VALUES, st.just("")))
def test_a_model_that_is_not_a_non_empty_string_is_a_bad_request(model: object) -> None:
    if isinstance(model, str) and model:
        return
    with pytest.raises(BadRequest) as caught:
        parse_inference_body(_json_body(model, {}), b"application/json")
    assert caught.value.code == "missing_model"


def test_deep_nesting_is_a_bad_request_not_a_crash() -> None:
    """100,000 levels of arrays: orjson's recursion limit gives a clean 400."""
    raw = b'{"model":"a","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(BadRequest, match="not valid JSON"):
        parse_inference_body(raw, b"application/json")


@given(model=st.binary(min_size=1, max_size=30).filter(lambda b: b"\r\n--" not in b))
def test_a_multipart_model_field_is_found_and_renamed(model: bytes) -> None:
    content_type = b"multipart/form-data; boundary=XyZ"
    if not model.strip():  # a value of only whitespace is empty
        with pytest.raises(BadRequest, match="empty 'model' field"):
            parse_inference_body(_multipart(model), content_type)
        return
    body = parse_inference_body(_multipart(model), content_type)
    assert body.model == model.strip().decode("utf-8", "replace")
    renamed = parse_inference_body(with_model(body, content_type, "up"), content_type)
    assert renamed.model == "up"
