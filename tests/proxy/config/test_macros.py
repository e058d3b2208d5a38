"""Macro expansion: order, scope, typing and the reserved names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from swapgate.proxy.config import LoadedConfig
from swapgate.proxy.config.issues import Collector
from swapgate.proxy.config.macros import expand, parse_macros, scope_for, strip_comment_lines
from swapgate.proxy.errors import Issue


def test_macro_may_use_earlier_macros_only() -> None:
    """A macro sees those declared before it; a forward reference stays unexpanded."""
    scope = dict(scope_for("m", [("a", "x"), ("b", "${a}-y"), ("c", "${d}"), ("d", "z")], []))
    assert scope["b"] == "x-y"
    assert scope["c"] == "${d}"


def test_model_macro_replaces_global_in_place() -> None:
    """Globals that use an overridden macro see the model's value."""
    scope = dict(scope_for("m", [("tag", "g"), ("msg", "v-${tag}")], [("tag", "local")]))
    assert scope["msg"] == "v-local"


def test_exact_macro_keeps_type() -> None:
    """`${n}` alone takes the macro's type; inside text it is interpolated."""
    table = {"n": 5, "t": 0.7}
    assert expand({"a": "${n}", "b": "n=${n} t=${t}"}, table) == {"a": 5, "b": "n=5 t=0.7"}


def test_reserved_and_invalid_names_are_errors() -> None:
    """PORT, MODEL_ID, PID and odd characters cannot be macro names."""
    out = Collector()
    parse_macros({"PORT": 1, "PID": 2, "bad name": 3, "ok": 4}, ("macros",), out)
    assert [i.path for i in out.errors] == ["macros.PORT", "macros.PID", 'macros["bad name"]']


def test_self_reference_and_non_scalar_are_errors() -> None:
    """A macro naming itself or holding a list is refused."""
    out = Collector()
    parse_macros({"a": "x ${a}", "b": [1]}, ("macros",), out)
    assert len(out.errors) == 2


def test_comment_lines_are_dropped() -> None:
    """Lines starting with # inside a block cmd are removed."""
    assert strip_comment_lines("a\n  # ${x}\nb") == "a\nb"


def test_unknown_macro_is_located(tmp_path: Path, issues_of: Callable[..., list[Issue]]) -> None:
    """An unknown macro is reported at the field that uses it."""
    issues = issues_of(tmp_path, "models:\n  m:\n    cmd: run ${nope}\n    proxy: http://h:1\n")
    assert [(i.path, i.line) for i in issues] == [("models.m.cmd", 4 - 1)]


def test_pid_is_kept_in_cmd_stop(tmp_path: Path, load_text: Callable[..., LoadedConfig]) -> None:
    """${PID} stays for stop time; ${MODEL_ID} is the model id."""
    text = "models:\n  m1:\n    cmd: run ${MODEL_ID} --port ${PORT}\n    cmdStop: kill ${PID}\n"
    spec = load_text(tmp_path, text).config.models["m1"]
    assert (spec.cmd, spec.cmd_stop) == ("run m1 --port ${PORT}", "kill ${PID}")
