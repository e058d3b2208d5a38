"""Reading YAML files: yaml.v3 scalars, env substitution, line numbers, --config-dir merging."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from swapgate.proxy.config import LoadedConfig, load_config
from swapgate.proxy.config.issues import Collector
from swapgate.proxy.config.load import go_str, parse_yaml
from swapgate.proxy.errors import ConfigError, Issue


@pytest.mark.parametrize("word", ["on", "off", "yes", "no", "y", "n", "ON", "Yes"])
def test_yaml11_booleans_stay_strings(word: str) -> None:
    """on/off/yes/no are strings, as yaml.v3 reads them."""
    doc = parse_yaml(f"fit: {word}\n", "c.yaml", Collector())
    assert doc.data == {"fit": word}


def test_true_false_and_numbers_are_typed() -> None:
    """true/false are booleans and numbers are numbers; timestamps stay strings."""
    doc = parse_yaml("a: true\nb: 3\nc: 0.5\nd: 2001-12-14\ne: ~\n", "c.yaml", Collector())
    assert doc.data == {"a": True, "b": 3, "c": 0.5, "d": "2001-12-14", "e": None}


def test_lines_are_recorded_per_path() -> None:
    """Every path knows the line it came from."""
    doc = parse_yaml("models:\n  m:\n    cmd: x\n", "c.yaml", Collector())
    assert doc.lines[("models", "m", "cmd")] == (3, "c.yaml")


def test_merge_keys_are_materialised() -> None:
    """`<<: *anchor` copies keys; explicit keys win."""
    text = "base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n"
    assert parse_yaml(text, "c.yaml", Collector()).data["m"] == {"x": 1, "y": 3}


def test_duplicate_key_is_an_error() -> None:
    """A key defined twice in one mapping is refused, like yaml.v3 does."""
    out = Collector()
    parse_yaml("a: 1\na: 2\n", "c.yaml", out)
    assert [i.path for i in out.errors] == ["a"]


def test_go_str_prints_like_go() -> None:
    """Interpolated values print as Go's %v: true, 3, 0.7."""
    assert [go_str(True), go_str(3.0), go_str(0.7), go_str(5)] == ["true", "3", "0.7", "5"]


def test_env_substitution_and_comment_lines(
    tmp_path: Path, load_text: Callable[..., LoadedConfig]
) -> None:
    """${env.X} is substituted; a reference inside a comment is ignored even if unset."""
    text = "# ${env.UNSET_ONE}\nmodels:\n  m:\n    cmd: srv ${env.HOME_DIR} --port ${PORT}\n"
    loaded = load_text(tmp_path, text, {"HOME_DIR": "/srv"})
    assert loaded.config.models["m"].cmd == "srv /srv --port ${PORT}"


def test_unset_env_is_an_error_with_line(
    tmp_path: Path, issues_of: Callable[..., list[Issue]]
) -> None:
    """An unset variable fails the load and names the line."""
    issues = issues_of(tmp_path, "models:\n  m:\n    cmd: srv ${env.NOPE_X}\n")
    assert issues[0].line == 3
    assert "NOPE_X" in issues[0].message


def test_unset_env_in_a_key_or_list_reports_once(
    tmp_path: Path, issues_of: Callable[..., list[Issue]]
) -> None:
    """An unset variable in apiKeys reports once; a model id using one is still checked."""
    text = 'apiKeys: ["${env.SG_NO_KEY}"]\nmodels:\n  m${env.SG_NO_ID}:\n    cmd: srv\n'
    assert [i.render() for i in issues_of(tmp_path, text)] == [
        "config.yaml:1: environment variable 'SG_NO_KEY' is not set (${env.SG_NO_KEY})",
        "config.yaml:3: environment variable 'SG_NO_ID' is not set (${env.SG_NO_ID})",
        "config.yaml:3: models.m.proxy: proxy uses ${PORT} but cmd does not — add --port "
        "${PORT} to cmd or set proxy",
    ]


def test_yaml_error_stops_the_walk(tmp_path: Path, issues_of: Callable[..., list[Issue]]) -> None:
    """A file that does not parse gives its syntax error only, not a cascade of missing keys."""
    (issue,) = issues_of(tmp_path, "globalTTL: -1\nmodels:\n\tm:\n")
    assert issue.line == 3
    assert issue.message.endswith("YAML does not allow tabs for indentation — use spaces")


def test_unset_env_points_at_the_line_that_uses_it(
    tmp_path: Path, issues_of: Callable[..., list[Issue]]
) -> None:
    """A mention in a comment above does not count: the error names the line that uses it."""
    text = "# set ${env.SG_NO_BIN} first\nmodels:\n  m:\n    cmd: ${env.SG_NO_BIN} --port ${PORT}\n"
    (issue,) = issues_of(tmp_path, text)
    assert (issue.line, issue.message) == (
        4,
        "environment variable 'SG_NO_BIN' is not set (${env.SG_NO_BIN})",
    )


def test_env_with_newline_is_refused(tmp_path: Path, issues_of: Callable[..., list[Issue]]) -> None:
    """A value holding a newline would change the YAML structure, so it is refused."""
    issues = issues_of(tmp_path, "models:\n  m:\n    cmd: srv ${env.ML}\n", {"ML": "a\nb"})
    assert "newlines" in issues[0].message


def test_config_dir_merges_models(tmp_path: Path) -> None:
    """Files of --config-dir add models to the main file."""
    (tmp_path / "main.yaml").write_text("models:\n  a:\n    cmd: a --port ${PORT}\n")
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "b.yaml").write_text("models:\n  b:\n    cmd: b --port ${PORT}\n")
    loaded = load_config(str(tmp_path / "main.yaml"), str(folder), {})
    assert sorted(loaded.config.models) == ["a", "b"]


def test_config_dir_duplicate_model_and_scalar_conflict(tmp_path: Path) -> None:
    """The same model id or different scalar values in two files are both reported."""
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.yaml").write_text(
        "globalTTL: 1\nmodels:\n  m:\n    cmd: x\n    proxy: http://h:1\n"
    )
    (folder / "b.yaml").write_text(
        "globalTTL: 2\nmodels:\n  m:\n    cmd: y\n    proxy: http://h:1\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(None, str(folder), {})
    assert sorted(i.path for i in caught.value.issues) == ["globalTTL", "models.m"]


def test_no_sources_is_an_error() -> None:
    """Neither --config nor --config-dir: nothing to load."""
    with pytest.raises(ConfigError):
        load_config(None, None, {})
