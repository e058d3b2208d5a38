"""schemathesis against the admin API of a real swapgate: answers match /openapi.json.

Generated paths, query strings and methods for every admin operation (the inference paths,
which relay to model servers, and the endpoints that stream forever are left out); each
answer must not be a server error, must have a documented status and content type, and a
JSON answer must match its schema. The document is the one swapgate serves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks as sc

from swapgate.proxy.web.openapi import openapi_document
from tests.support.gateway import Swapgate, fake_cmd, start_swapgate
from tests.support.procs import http_json

pytestmark = pytest.mark.integration

CONFIG = f"""
models:
  alpha:
    cmd: {fake_cmd("alpha", startup_delay=0, ttft=0, tokens=2)}
    aliases: [a]
"""
STREAMS = r"^/(logs/stream|api/events)"
CHECKS = [
    sc.not_a_server_error,
    sc.status_code_conformance,
    sc.content_type_conformance,
    sc.response_schema_conformance,
]


def _admin(document: dict[str, Any]) -> Any:
    schema = schemathesis.openapi.from_dict(document)
    return schema.exclude(tag="inference").exclude(path_regex=STREAMS)


OPERATIONS = [result.ok().label for result in _admin(openapi_document("test")).get_all_operations()]


@pytest.fixture(scope="module")
def gate() -> Iterator[Swapgate]:
    with start_swapgate(CONFIG) as running:
        yield running


def test_the_served_document_is_the_one_checked(gate: Swapgate) -> None:
    status, _, served = http_json("GET", gate.url + "/openapi.json")
    assert status == 200
    assert {k: v for k, v in served.items() if k != "info"} == {
        k: v for k, v in openapi_document("test").items() if k != "info"
    }


@pytest.mark.parametrize("label", OPERATIONS)
def test_admin_answers_match_the_document(gate: Swapgate, label: str) -> None:
    _, _, served = http_json("GET", gate.url + "/openapi.json")
    operation = _admin(served).find_operation_by_label(label)

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        case.call_and_validate(base_url=gate.url, checks=CHECKS, timeout=30)

    check()
