"""The `keys` section: entries, defaults, located errors that never print a key, model access,
and the README's example."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from swapgate.proxy.config import LoadedConfig
from swapgate.proxy.config.keys import ALL_SCOPES, KeyScope, KeySpec, ModelAccess
from swapgate.proxy.config.printer import effective_json
from tests.proxy.config.conftest import IssuesOf, LoadText
from tests.support.procs import REPO_ROOT

MODELS = """
models:
  alpha:
    cmd: srv --port ${PORT}
    aliases: [a]
  bravo:
    cmd: srv --port ${PORT}
  qwen-7b:
    cmd: srv --port ${PORT}
    aliases: [small]
  qwen-32b:
    cmd: srv --port ${PORT}
"""
SECRET = "sk-alice-0123456789"  # noqa: S105  # a test key, looked for in the output
LoadWithEnv = Callable[..., LoadedConfig]  # load_text(tmp_path, text, environ)


def test_entries_and_defaults(tmp_path: Path, load_text: LoadWithEnv) -> None:
    """A full entry is read as written; a minimal one gets [inference], every model, no limits;
    `${env.NAME}` works for the key as for any value."""
    text = (
        "keys:\n"
        "  - key: ${env.ALICE_KEY}\n    name: alice\n    scopes: [inference, logs]\n"
        "    models: [alpha, 'qwen-*']\n    maxConcurrent: 2\n    requestsPerMinute: 30\n"
        "  - {key: sk-bob-key, name: bob}\n" + MODELS
    )
    config = load_text(tmp_path, text, {"ALICE_KEY": SECRET}).config
    alice, bob = config.keys
    assert alice == KeySpec(
        name="alice",
        key=SECRET,
        scopes=frozenset({KeyScope.INFERENCE, KeyScope.LOGS}),
        models=("alpha", "qwen-*"),
        max_concurrent=2,
        requests_per_minute=30,
    )
    assert bob == KeySpec(name="bob", key="sk-bob-key")
    assert bob.scopes == {KeyScope.INFERENCE}
    assert SECRET not in repr(config.keys)


def test_macros_expand_in_keys(tmp_path: Path, load_text: LoadText) -> None:
    """A key may come from a macro, like any top-level value."""
    text = "macros:\n  k: sk-from-macro\nkeys:\n  - {key: '${k}', name: m}\n" + MODELS
    assert load_text(tmp_path, text).config.keys[0].key == "sk-from-macro"


def test_entry_problems_are_located(tmp_path: Path, issues_of: IssuesOf) -> None:
    """Unknown scope (with did-you-mean), duplicate name, missing and empty fields, bad types
    and bad limits each get one issue at their path and line."""
    text = (
        "keys:\n"
        "  - {key: sk-one-key, name: alice, scopes: [admn]}\n"  # line 2
        "  - {key: sk-two-key, name: alice}\n"  # line 3
        "  - {name: nokey}\n"  # line 4
        "  - {key: '', name: empty}\n"  # line 5
        "  - {key: 12345, name: number}\n"  # line 6
        "  - {key: sk-three-key, name: 'has space', maxConcurrent: 0, requestsPerMinute: x}\n"
        "  - {key: sk-four-key, name: four, scopes: [], models: []}\n"  # line 8
        "  - just-a-string\n" + MODELS  # line 9
    )
    found = {(i.line, i.path, i.message) for i in issues_of(tmp_path, text)}
    expected = {
        (2, "keys[0].scopes[0]", 'must be one of: inference, admin, logs; got "admn" '
         '(did you mean "admin"?)'),
        (3, 'keys[1].name "alice"', "already used by keys[0].name"),
        (4, "keys[2].key", "required — the secret clients send, e.g. key: ${env.ALICE_KEY}"),
        (5, "keys[3].key", "must not be empty"),
        (6, "keys[4].key", "expected string, got integer — put the key in quotes"),
        (7, "keys[5].name", "must be 1-64 letters, digits, '.', '_', '@' or '-', starting with "
         'a letter or digit, got string "has space"'),
        (7, "keys[5].maxConcurrent", "must be >= 1 requests, got 0"),
        (7, "keys[5].requestsPerMinute", 'expected integer, got string "x"'),
        (8, "keys[6].scopes", "must not be empty — list one or more of: inference, admin, logs"),
        (8, "keys[6].models", "must not be empty — leave models out to allow every model"),
        (9, "keys[7]", 'expected mapping, got string "just-a-string"'),
    }  # fmt: skip
    assert found == expected
    assert "12345" not in " ".join(m for _, _, m in found)


def test_duplicate_key_values_are_errors_without_the_key(
    tmp_path: Path, issues_of: IssuesOf
) -> None:
    """The same key twice in keys, or in keys and apiKeys, is an error that names both places
    and never prints the key."""
    text = (
        f"apiKeys: [{SECRET}]\n"
        f"keys:\n  - {{key: {SECRET}, name: a}}\n  - {{key: sk-other-key, name: b}}\n"
        "  - {key: sk-other-key, name: c}\n" + MODELS
    )
    issues = issues_of(tmp_path, text)
    assert {(i.path, i.message) for i in issues} == {
        ("keys[0].key", "already used by apiKeys[0] — every key must differ"),
        ("keys[2].key", "already used by keys[1].key — every key must differ"),
    }
    assert not any(SECRET in i.render() or "sk-other-key" in i.render() for i in issues)


def test_an_unset_variable_is_reported_once(tmp_path: Path, issues_of: IssuesOf) -> None:
    """`key: ${env.X}` with X unset: the env error only, not also "required"."""
    text = "keys:\n  - key: ${env.NOT_SET_KEY}\n    name: alice\n" + MODELS
    issues = issues_of(tmp_path, text)
    assert [i.message for i in issues] == [
        "environment variable 'NOT_SET_KEY' is not set (${env.NOT_SET_KEY})"
    ]


def test_model_names_are_checked(tmp_path: Path, load_text: LoadText, issues_of: IssuesOf) -> None:
    """An exact name must be a model, alias or route name; a pattern matching nothing warns;
    a mistyped key of an entry warns with did-you-mean."""
    issues = issues_of(
        tmp_path, "keys:\n  - {key: sk-one-key, name: a, models: [alpah]}\n" + MODELS
    )
    assert [(i.path, i.message) for i in issues] == [
        ("keys[0].models[0]", 'unknown model "alpah"; known models: a, alpha, bravo, '
         "qwen-32b, qwen-7b, small"),
    ]  # fmt: skip
    text = "keys:\n  - {key: sk-one-key, name: a, models: ['llama-*', small], scope: [admin]}\n"
    loaded = load_text(tmp_path, text + MODELS)
    assert {(w.path, w.message.split(";")[0]) for w in loaded.warnings} == {
        ("keys[0].models[0]", 'pattern "llama-*" matches no model'),
        ("keys[0].scope", 'unknown key (did you mean "scopes"?)'),
    }


def test_model_access(tmp_path: Path, load_text: LoadText) -> None:
    """A model is allowed under every name when its id or an alias matches; other models are
    not; a name no model has (a route's) is allowed only if it matches itself."""
    config = load_text(tmp_path, MODELS).config
    access = ModelAccess(("a", "qwen-3*", "chat-*"), config)
    assert access.model_ids == {"alpha", "qwen-32b"}
    assert [
        n for n in ("alpha", "a", "qwen-32b", "bravo", "qwen-7b", "small") if access.allows(n)
    ] == [
        "alpha",
        "a",
        "qwen-32b",
    ]
    assert access.allows("chat-x")
    assert not access.allows("other")
    by_alias = ModelAccess(("small",), config)
    assert by_alias.model_ids == {"qwen-7b"}
    assert by_alias.allows("qwen-7b")


def test_print_config_masks_keys(tmp_path: Path, load_text: LoadText) -> None:
    """--print-config shows every entry with its key masked, in clear only with
    --show-secrets; models show forwardApiKey."""
    text = f"keys:\n  - {{key: {SECRET}, name: alice, scopes: [logs, admin]}}\n" + MODELS
    config = load_text(tmp_path, text.replace("aliases: [a]", "forwardApiKey: true")).config
    shown = effective_json(config)
    assert shown["keys"] == [
        {
            "name": "alice",
            "key": "sk-…6789",
            "scopes": ["admin", "logs"],
            "models": None,
            "maxConcurrent": None,
            "requestsPerMinute": None,
        }
    ]
    assert SECRET not in repr(shown)
    assert effective_json(config, show_secrets=True)["keys"][0]["key"] == SECRET  # type: ignore[index]
    models = shown["models"]
    assert isinstance(models, dict)
    assert (models["alpha"]["forwardApiKey"], models["bravo"]["forwardApiKey"]) == (True, False)


def test_scopes_cover_the_enum() -> None:
    """The scope names are the documented ones."""
    assert sorted(ALL_SCOPES) == ["admin", "inference", "logs"]


def test_readme_keys_example_loads(tmp_path: Path, load_text: LoadWithEnv) -> None:
    """The README's `keys` example (it reads keys from the environment) loads cleanly."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("### API keys and scopes", 1)[1]
    block = re.search(r"```yaml[^\n]*\n(.*?)```", section, re.DOTALL)
    assert block is not None
    names = set(re.findall(r"\$\{env\.([A-Za-z0-9_]+)\}", block.group(1)))
    environ = {name: f"sk-{name.lower()}-0123456789" for name in names}
    loaded = load_text(tmp_path, block.group(1), environ)
    assert loaded.warnings == []
    assert [k.name for k in loaded.config.keys]
