"""Any config file is either accepted or rejected with located problems, never a crash.

Hypothesis builds documents from swapgate's and llama-swap's own key names (so the checks of
every section are reached, not only the unknown-key warning) with values of every YAML type,
and raw text with YAML's special characters; check_config must return, and every problem it
reports must name its file and either a YAML path or a line.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swapgate.proxy.config import check_config, effective_json
from swapgate.proxy.config.build import ACTED_ON_KEYS, CORE_KEYS, LATER_KEYS
from swapgate.proxy.config.models import KNOWN_KEYS as MODEL_KEYS

TOP_KEYS = sorted({*CORE_KEYS, *ACTED_ON_KEYS, *LATER_KEYS})
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["${PORT}", "${env.HOME}", "${nope}", "*", "0", "-1", "on", "/health"]),
    st.sampled_from(["srv --port ${PORT}", "http://127.0.0.1:${PORT}", "qwen-*"]),
)
NAMES = st.one_of(st.sampled_from(["a", "b", "qwen", "A-B_c.1"]), st.text(min_size=1, max_size=8))


def _values(keys: list[str]) -> st.SearchStrategy[object]:
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.one_of(st.sampled_from(keys), NAMES), inner, max_size=4),
        ),
        max_leaves=12,
    )


MODEL = st.dictionaries(
    st.sampled_from(sorted(MODEL_KEYS)), _values(sorted(MODEL_KEYS)), max_size=6
)
DOCUMENTS = st.fixed_dictionaries(
    {"models": st.dictionaries(NAMES, st.one_of(MODEL, SCALARS), max_size=3)},
    optional={key: _values([*TOP_KEYS, *MODEL_KEYS]) for key in TOP_KEYS if key != "models"},
)
YAML_TEXT = st.text(
    alphabet=st.sampled_from(list("ab: -\n\t'\"{}[],&*!|>%@`#$.0123456789\\")), max_size=200
)


def _check(tmp: Path, text: str) -> None:
    path = tmp / "config.yaml"
    path.write_text(text)
    result = check_config(str(path), environ={"HOME": "/home/x"})
    if result.config is None:
        assert result.errors
    else:
        assert result.errors == []
        effective_json(result.config)  # what --print-config prints: never raises either
    for issue in [*result.errors, *result.warnings]:
        assert issue.file, issue
        assert issue.path or issue.line is not None, issue


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(document=DOCUMENTS)
def test_any_document_is_accepted_or_rejected_with_located_problems(
    tmp_path: Path, document: dict[str, object]
) -> None:
    _check(tmp_path, yaml.safe_dump(document, allow_unicode=True))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=YAML_TEXT)
def test_any_text_is_accepted_or_rejected_with_located_problems(tmp_path: Path, text: str) -> None:
    _check(tmp_path, text)


EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
BASES = [yaml.safe_load(p.read_text()) for p in sorted(EXAMPLES.glob("*.yaml"))]


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every path into a parsed document (mapping keys and list indexes)."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _replaced(node: object, path: tuple[object, ...], value: object) -> object:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        return {k: (_replaced(v, rest, value) if k == head else v) for k, v in node.items()}
    assert isinstance(node, list)
    return [(_replaced(v, rest, value) if i == head else v) for i, v in enumerate(node)]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_any_one_change_to_a_working_config_is_accepted_or_located(
    tmp_path: Path, data: st.DataObject
) -> None:
    """The shipped examples with one node anywhere replaced by any value: the checks deep in
    each section (routes, groups, filters, scheduling, keys) all see odd input."""
    base = data.draw(st.sampled_from(BASES))
    path = data.draw(st.sampled_from(_paths(base)[1:]))
    value = data.draw(_values([*TOP_KEYS, *MODEL_KEYS]))
    _check(tmp_path, yaml.safe_dump(_replaced(base, path, value), allow_unicode=True))
