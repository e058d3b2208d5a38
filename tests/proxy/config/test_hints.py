"""Messages a new user reads: did-you-mean only for close keys, foreign-key advice, one warning
for a key repeated across models, YAML syntax errors, macros, duplicate names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from swapgate.proxy.config import LoadedConfig
from swapgate.proxy.config.hints import closest_key
from swapgate.proxy.config.issues import Collector
from swapgate.proxy.config.load import parse_yaml
from swapgate.proxy.errors import Issue

LoadText = Callable[..., LoadedConfig]
IssuesOf = Callable[..., list[Issue]]
MODEL_KEYS = ("cmd", "ttl", "unloadTimeout", "proxy", "aliases", "maxConnections")


@pytest.mark.parametrize(
    ("key", "known", "expected"),
    [
        ("health_check_timeout", ("healthCheckTimeout", "globalTTL"), "healthCheckTimeout"),
        ("Cmd", MODEL_KEYS, "cmd"),
        ("ttll", MODEL_KEYS, "ttl"),
        ("unloadTimout", MODEL_KEYS, "unloadTimeout"),
        ("max-connection", MODEL_KEYS, "maxConnections"),
        ("readyTimeout", MODEL_KEYS, None),
        ("tags", MODEL_KEYS, None),
        ("host", ("hooks", "healthCheckTimeout"), None),
    ],
)
def test_close_keys_only(key: str, known: tuple[str, ...], expected: str | None) -> None:
    """Case and separators do not count; a guess further than a typo is not offered."""
    assert closest_key(key, known) == expected


@pytest.mark.parametrize(
    ("yaml_line", "advice"),
    [
        ("readyTimeout: 60", "swapgate and llama-swap use healthCheckTimeout (top level)"),
        ("maxRunningModels: 2", "use groups or routing.router.use: fit"),
        ("host: 0.0.0.0", "use --listen HOST:PORT"),
        ("port: 8080", "use --listen HOST:PORT"),
        ("listen: :8080", "use --listen HOST:PORT"),
    ],
)
def test_foreign_top_level_keys_get_advice(
    tmp_path: Path, load_text: LoadText, yaml_line: str, advice: str
) -> None:
    """Keys other tools use are told where the setting lives, not a wrong did-you-mean."""
    loaded = load_text(tmp_path, f"{yaml_line}\nmodels:\n  a:\n    cmd: s --port ${{PORT}}\n")
    key = yaml_line.partition(":")[0]
    assert [w.render() for w in loaded.warnings] == [
        f"config.yaml:1: {key}: unknown key; ignored — {advice}"
    ]


def test_model_level_foreign_keys_and_top_level_keys_in_a_model(
    tmp_path: Path, load_text: LoadText
) -> None:
    """`timeout` in a model gets its advice; a top-level key in a model says where it goes."""
    text = "models:\n  a:\n    cmd: s --port ${PORT}\n    timeout: 5\n    health_check_timeout: 9\n"
    assert [w.message for w in load_text(tmp_path, text).warnings] == [
        "unknown key; ignored — use timeouts (per model) or healthCheckTimeout",
        'unknown key (did you mean "healthCheckTimeout"? it goes at the top level); ignored',
    ]


def test_repeated_key_is_one_warning_with_count_and_lines(
    tmp_path: Path, load_text: LoadText
) -> None:
    """The same foreign key in several models is warned once, in line order, with its lines."""
    text = (
        "ttll: 1\nmodels:\n"
        + "".join(f"  {mid}:\n    cmd: s --port ${{PORT}}\n    readyTimeout: 30\n" for mid in "zyx")
        + "  w:\n    cmd: s --port ${PORT}\n    ttll: 3\n"
    )
    assert [w.render() for w in load_text(tmp_path, text).warnings] == [
        'config.yaml:1: ttll: unknown key (did you mean "ttl"? it goes at the model level '
        "(models.<id>)); ignored",
        "config.yaml:5: models.*.readyTimeout: unknown key, in 3 models (lines 5, 8, 11); "
        "ignored — swapgate and llama-swap use healthCheckTimeout (top level)",
        'config.yaml:14: models.w.ttll: unknown key (did you mean "ttl"?); ignored',
    ]


def test_many_lines_are_shortened(tmp_path: Path, load_text: LoadText) -> None:
    """Past six lines the list ends with an ellipsis; the count stays exact."""
    text = "models:\n" + "".join(
        f"  m{i:02}:\n    cmd: s --port ${{PORT}}\n    tags: [x]\n" for i in range(15)
    )
    (warning,) = load_text(tmp_path, text).warnings
    assert warning.path == "models.*.tags"
    assert warning.message == "unknown key, in 15 models (lines 4, 7, 10, 13, 16, 19, …); ignored"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "models:\n\tm:\n    cmd: x\n",
            "c.yaml:2: invalid YAML at line 2, column 1: found character '\\t' that cannot "
            'start any token; the line is "\\tm:" — YAML does not allow tabs for indentation '
            "— use spaces",
        ),
        (
            "models:\n  m:\n    cmd: x\n   ttl: 3\n",
            "c.yaml:4: invalid YAML at line 4, column 4: expected <block end>, but found "
            "'<block mapping start>'; the line is \"   ttl: 3\" — check the indentation of "
            "this line and the one above",
        ),
        (
            "models:\n  m:\n    cmd: srv --alias a: b\n",
            "c.yaml:3: invalid YAML at line 3, column 23: mapping values are not allowed here; "
            'the line is "    cmd: srv --alias a: b" — check the indentation of this line and '
            'the one above, or quote a value with ": "',
        ),
        (
            "models: [a, b\n",
            "c.yaml:1: invalid YAML at line 1, column 9: expected ',' or ']', but got "
            "'<stream end>'; the line is \"models: [a, b\"",
        ),
    ],
)
def test_yaml_syntax_errors_are_explained(text: str, expected: str) -> None:
    """Line, column, the line itself and a hint in plain words instead of PyYAML's text."""
    out = Collector()
    parse_yaml(text, "c.yaml", out)
    assert [i.render() for i in out.errors] == [expected]
    assert out.broken


def test_misspelt_macro_gets_a_suggestion_and_no_port_error(
    tmp_path: Path, issues_of: IssuesOf
) -> None:
    """`${lama}` suggests `${llama}`; the missing ${PORT} that follows from it is not reported."""
    text = "macros:\n  llama: srv --port ${PORT}\nmodels:\n  m:\n    cmd: ${lama} -m x\n"
    assert [i.render() for i in issues_of(tmp_path, text)] == [
        "config.yaml:5: models.m.cmd: unknown macro '${lama}' — did you mean ${llama}?"
    ]


def test_unknown_macro_without_a_close_name_says_define_it(
    tmp_path: Path, issues_of: IssuesOf
) -> None:
    """With no close macro name the fix is to define it; top-level values get the same hint."""
    text = "macros:\n  llama: srv\nlogTimeFormat: ${nothing_alike}\nmodels:\n  m:\n    cmd: ${llama} --port ${PORT}\n"
    assert [i.message for i in issues_of(tmp_path, text)] == [
        "unknown macro '${nothing_alike}' — define it under macros"
    ]


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        (
            "  a:\n    cmd: a --port ${PORT}\n    aliases: [x]\n"
            "  b:\n    cmd: b --port ${PORT}\n    aliases: [x]\n",
            'config.yaml:7: models.b.aliases[0] "x": already used by models.a.aliases[0]',
        ),
        (
            "  a:\n    cmd: a --port ${PORT}\n  b:\n    cmd: b --port ${PORT}\n    aliases: [a]\n",
            'config.yaml:6: models.b.aliases[0] "a": already used by models.a',
        ),
        (
            "  a:\n    cmd: a --port ${PORT}\n    filters:\n      setParamsByID:\n"
            "        x: {temperature: 1}\n  b:\n    cmd: b --port ${PORT}\n    aliases: [x]\n",
            'config.yaml:9: models.b.aliases[0] "x": already used by '
            "models.a.filters.setParamsByID.x",
        ),
        (
            "  a:\n    cmd: a --port ${PORT}\n    aliases: [x]\n  b:\n    cmd: b --port ${PORT}\n"
            "    filters:\n      setParamsByID:\n        x: {temperature: 1}\n",
            'config.yaml:9: models.b.filters.setParamsByID.x "x": already used by '
            "models.a.aliases[0]",
        ),
    ],
)
def test_duplicate_names_have_one_wording(
    tmp_path: Path, issues_of: IssuesOf, models: str, expected: str
) -> None:
    """Alias, model id and setParamsByID clashes all read `<path> "x": already used by <path>`."""
    assert [i.render() for i in issues_of(tmp_path, "models:\n" + models)] == [expected]


def test_names_a_model_may_repeat_for_itself(tmp_path: Path, load_text: LoadText) -> None:
    """An alias equal to the model's own id, or a setParamsByID key for its own alias, is fine."""
    text = (
        "models:\n  a:\n    cmd: a --port ${PORT}\n    aliases: [a, x]\n    filters:\n"
        "      setParamsByID:\n        a: {t: 1}\n        x: {t: 2}\n        y: {t: 3}\n"
    )
    config = load_text(tmp_path, text).config
    assert dict(config.alias_index) == {"a": "a", "x": "a", "y": "a"}
