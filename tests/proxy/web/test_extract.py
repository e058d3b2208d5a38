"""Finding and replacing the model name in JSON and multipart request bodies (pure)."""

from __future__ import annotations

import orjson
import pytest

from swapgate.proxy.errors import BadRequest
from swapgate.proxy.web.extract import parse_inference_body, with_model

JSON = b"application/json"
BOUNDARY = "----swapgateBoundary7MA4YWxkTrZu0gW"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}".encode()
# Bytes a real upload may hold: CR/LF pairs, NULs, invalid UTF-8, a dash run.
BINARY = b"\x89PNG\r\n\x1a\n\x00\xff\xfe--\r\n\r\nmodel\r\n" + bytes(range(256))


def field(name: str, value: bytes, extra_headers: tuple[str, ...] = ()) -> bytes:
    """One form-data part (without the boundary line)."""
    head = [f'Content-Disposition: form-data; name="{name}"', *extra_headers]
    return "\r\n".join(head).encode() + b"\r\n\r\n" + value


def file_part(name: str, filename: str, value: bytes) -> bytes:
    """One file part with a binary content type."""
    return (
        f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + value


def form(*parts: bytes) -> bytes:
    """A complete multipart/form-data body from parts."""
    sep = f"--{BOUNDARY}\r\n".encode()
    body = b"".join(sep + part + b"\r\n" for part in parts)
    return body + f"--{BOUNDARY}--\r\n".encode()


def audio_form(model: str, *, model_first: bool) -> bytes:
    """A transcription-style form with the model before or after the binary upload."""
    upload = file_part("file", "clip.wav", BINARY)
    lang = field("language", b"en")
    model_part = field("model", model.encode())
    parts = (model_part, upload, lang) if model_first else (upload, lang, model_part)
    return form(*parts)


# ---- JSON ---------------------------------------------------------------------------------------


def test_json_body_yields_model_and_parsed_object() -> None:
    """A JSON object's `model` is found, the raw bytes kept and the object exposed."""
    raw = b'{"model": "llama3", "messages": [{"role": "user", "content": "hi"}]}'
    body = parse_inference_body(raw, JSON)
    assert body.model == "llama3"
    assert body.raw is raw
    assert body.parsed == orjson.loads(raw)


def test_json_is_assumed_for_any_non_multipart_content_type() -> None:
    """Clients that omit or misstate Content-Type still get their JSON parsed."""
    raw = b'{"model": "m"}'
    assert parse_inference_body(raw, b"").model == "m"
    assert parse_inference_body(raw, b"text/plain").model == "m"


@pytest.mark.parametrize("raw", [b"", b"{", b'{"model": "a",}', b"not json", b"\xff\xfe"])
def test_malformed_json_is_bad_request(raw: bytes) -> None:
    """Unparseable bodies raise BadRequest (400 invalid_request), not missing_model."""
    with pytest.raises(BadRequest, match="not valid JSON") as caught:
        parse_inference_body(raw, JSON)
    assert caught.value.code == "invalid_request"
    assert caught.value.status == 400


@pytest.mark.parametrize("raw", [b"[]", b'["model"]', b'"model"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_bad_request(raw: bytes) -> None:
    """Valid JSON that is not an object raises BadRequest asking for an object."""
    with pytest.raises(BadRequest, match="JSON object") as caught:
        parse_inference_body(raw, JSON)
    assert caught.value.code == "invalid_request"


@pytest.mark.parametrize(
    "raw",
    [
        b"{}",
        b'{"messages": []}',
        b'{"model": ""}',
        b'{"model": null}',
        b'{"model": 7}',
        b'{"model": ["a"]}',
        b'{"model": {"id": "a"}}',
        b'{"Model": "a"}',
    ],
)
def test_missing_or_invalid_model_is_missing_model(raw: bytes) -> None:
    """An absent, empty or non-string model raises BadRequest with code missing_model."""
    with pytest.raises(BadRequest) as caught:
        parse_inference_body(raw, JSON)
    assert caught.value.code == "missing_model"
    assert caught.value.status == 400
    assert "model" in caught.value.message


def test_with_model_json_replaces_model_and_keeps_everything_else() -> None:
    """JSON is re-serialised with the new model; every other field survives with its value."""
    original = {
        "model": "alias",
        "messages": [{"role": "user", "content": "héllo ☃ \u0000"}],
        "temperature": 0.25,
        "max_tokens": 10,
        "stream": True,
        "stop": None,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "big": 2**60,
    }
    body = parse_inference_body(orjson.dumps(original), JSON)
    rewritten = orjson.loads(with_model(body, JSON, "real-model"))
    assert rewritten == {**original, "model": "real-model"}
    assert list(rewritten) == list(original)  # field order kept too


# ---- multipart ----------------------------------------------------------------------------------


@pytest.mark.parametrize("model_first", [True, False])
def test_multipart_model_found_before_or_after_binary_upload(model_first: bool) -> None:
    """The `model` form field is found wherever it is, even after a binary file part."""
    raw = audio_form("whisper-large", model_first=model_first)
    body = parse_inference_body(raw, MULTIPART)
    assert body.model == "whisper-large"
    assert body.parsed is None
    assert body.raw is raw


def test_multipart_model_part_with_its_own_headers() -> None:
    """A model part that carries a Content-Type header is still read correctly."""
    raw = form(field("model", b"m1", ("Content-Type: text/plain; charset=utf-8",)))
    assert parse_inference_body(raw, MULTIPART).model == "m1"


def test_multipart_quoted_boundary_and_content_type_case() -> None:
    """A quoted boundary parameter and an upper-case media type are understood."""
    raw = form(field("prompt", b"p"), field("model", b"m2"))
    content_type = f'Multipart/Form-Data; boundary="{BOUNDARY}"'.encode()
    assert parse_inference_body(raw, content_type).model == "m2"


def test_multipart_field_name_ending_in_model_is_not_the_model() -> None:
    """Only a field named exactly `model` counts; `base_model` does not."""
    raw = form(field("base_model", b"wrong"), field("model", b"right"))
    assert parse_inference_body(raw, MULTIPART).model == "right"


def test_multipart_file_named_model_is_not_the_model_field() -> None:
    """An upload whose *filename* is "model" is not mistaken for the model field."""
    raw = form(file_part("file", "model", b"RIFF....WAVE"), field("model", b"whisper"))
    assert parse_inference_body(raw, MULTIPART).model == "whisper"


def test_multipart_without_model_field_is_missing_model() -> None:
    """A form with no model part raises BadRequest code missing_model."""
    raw = form(file_part("file", "a.wav", BINARY), field("language", b"en"))
    with pytest.raises(BadRequest) as caught:
        parse_inference_body(raw, MULTIPART)
    assert caught.value.code == "missing_model"


@pytest.mark.parametrize("value", [b"", b"  "])
def test_multipart_empty_model_is_missing_model(value: bytes) -> None:
    """An empty (or blank) model form value raises BadRequest code missing_model."""
    raw = form(field("model", value), field("language", b"en"))
    with pytest.raises(BadRequest, match="empty") as caught:
        parse_inference_body(raw, MULTIPART)
    assert caught.value.code == "missing_model"


def test_multipart_without_boundary_parameter_is_missing_model() -> None:
    """A multipart Content-Type with no boundary cannot be scanned: missing_model."""
    raw = form(field("model", b"m"))
    with pytest.raises(BadRequest) as caught:
        parse_inference_body(raw, b"multipart/form-data")
    assert caught.value.code == "missing_model"


@pytest.mark.parametrize("model_first", [True, False])
@pytest.mark.parametrize("new", ["w", "a-much-longer-model-name:q4_K_M"])
def test_with_model_multipart_replaces_value_and_keeps_rest_byte_identical(
    model_first: bool, new: str
) -> None:
    """Only the model value changes: the result equals the same form built with the new name."""
    raw = audio_form("whisper-alias", model_first=model_first)
    body = parse_inference_body(raw, MULTIPART)
    rewritten = with_model(body, MULTIPART, new)
    assert rewritten == audio_form(new, model_first=model_first)
    assert parse_inference_body(rewritten, MULTIPART).model == new


def test_with_model_multipart_without_closing_boundary_replaces_whole_value() -> None:
    """A model part that runs to the end of the body is replaced whole, as it was parsed."""
    head = f"--{BOUNDARY}\r\n".encode() + field("model", b"alias")
    body = parse_inference_body(head, MULTIPART)
    assert body.model == "alias"
    assert with_model(body, MULTIPART, "real") == f"--{BOUNDARY}\r\n".encode() + field(
        "model", b"real"
    )
