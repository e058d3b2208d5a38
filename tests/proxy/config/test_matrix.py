"""The matrix DSL and section checks: parse trees, positions, every error kind, with lines."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from swapgate.proxy.config.issues import Collector, Path
from swapgate.proxy.config.load import parse_yaml
from swapgate.proxy.config.matrix import (
    And,
    Expr,
    ExpressionError,
    Leaf,
    MatrixProgram,
    Or,
    Ref,
    parse_expression,
    read_matrix,
    tokenize,
)

LEGACY: Path = ("matrix",)
ROUTED: Path = ("routing", "router", "settings", "matrix")
MODELS = {"gemma", "qwen", "mistral", "voxtral", "llama70B", "reranker"}
KNOWN = "known models: gemma, llama70B, mistral, qwen, reranker, voxtral"


def _read(raw: object, path: Path = LEGACY) -> tuple[MatrixProgram | None, Collector]:
    out = Collector()
    return read_matrix(raw, path, MODELS, out), out


def _program(raw: object) -> MatrixProgram:
    program, out = _read(raw)
    assert out.errors == []
    assert program is not None
    return program


def _errors(raw: object, path: Path = LEGACY) -> list[str]:
    program, out = _read(raw, path)
    assert program is None
    return [f"{issue.path}: {issue.message}" for issue in out.errors]


def _names(*models: str) -> tuple[Leaf, ...]:
    return tuple(Leaf(m) for m in models)


PARSES: list[tuple[str, Expr]] = [
    ("abc", Leaf("abc")),
    ("model-name.v2", Leaf("model-name.v2")),
    ("a_b", Leaf("a_b")),
    ("a & b", And(_names("a", "b"))),
    ("a | b | c", Or(_names("a", "b", "c"))),
    ("(a | b) & (c | d)", And((Or(_names("a", "b")), Or(_names("c", "d"))))),
    ("a | b & c", Or((Leaf("a"), And(_names("b", "c"))))),  # & binds tighter than |
    ("a & b | c", Or((And(_names("a", "b")), Leaf("c")))),
    ("(a | +base) & b", And((Or((Leaf("a"), Ref("base"))), Leaf("b")))),
    ("((a))", Leaf("a")),
    ("  a&b  ", And(_names("a", "b"))),
]


@pytest.mark.parametrize(("text", "tree"), PARSES)
def test_parse_trees(text: str, tree: Expr) -> None:
    """Expressions parse to the tree llama-swap builds, & binding tighter than |."""
    assert parse_expression(text) == tree


def test_tokens_carry_positions() -> None:
    """Each token knows its 0-based position; a reference keeps its "+"."""
    tokens = [(t.kind, t.text, t.pos) for t in tokenize("(a | +base) & b")]
    assert tokens == [
        ("(", "(", 0),
        ("name", "a", 1),
        ("|", "|", 3),
        ("ref", "+base", 5),
        (")", ")", 10),
        ("&", "&", 12),
        ("name", "b", 14),
        ("end", "", 15),
    ]


PARSE_ERRORS = [
    ("", 0, "the expression is empty"),
    ("(a", 2, 'expected ")" to close "(" at position 0'),
    ("(a b", 3, 'expected ")" to close "(" at position 0, got "b"'),
    ("a)", 1, 'expected "&", "|" or the end, got ")"'),
    ("a b", 2, 'expected "&", "|" or the end, got "b"'),
    ("()", 1, 'expected a model name after "(", got ")"'),
    (")", 0, 'expected a model name, got ")"'),
    ("| a", 0, 'expected a model name, got "|"'),
    ("gemma &", 7, 'expected a model name after "&"'),
    ("a | | b", 4, 'expected a model name after "|", got "|"'),
    ("+", 1, 'expected a set name after "+"'),
    ("a & + b", 5, 'expected a set name after "+"'),
    ("a @ b", 2, 'unexpected character "@"'),
    ("a, b", 1, 'unexpected character ","'),
    ("(" * 65 + "a" + ")" * 65, 64, "parentheses nested deeper than 64"),
]


@pytest.mark.parametrize(("text", "position", "detail"), PARSE_ERRORS)
def test_parse_errors_name_the_position(text: str, position: int, detail: str) -> None:
    """Every malformed expression is refused with the 0-based position of the problem."""
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    assert (caught.value.position, caught.value.detail) == (position, detail)
    assert str(caught.value) == f"invalid expression at position {position}: {detail}"


BASIC = {
    "vars": {"g": "gemma", "q": "qwen", "m": "mistral", "v": "voxtral", "L": "llama70B"},
    "evict_costs": {"L": 30, "v": 50},
    "sets": {"standard": "(g | q | m) & v", "full": "L"},
}


def test_basic_section_compiles_with_resolved_costs() -> None:
    """Vars resolve to model ids in sets and costs; set order and members are kept."""
    program = _program(BASIC)
    assert program.set_names() == ("standard", "full")
    assert dict(program.costs) == {"llama70B": 30, "voxtral": 50}
    assert (program.cost_of("voxtral"), program.cost_of("gemma")) == (50, 1)
    assert program.members() == {"gemma", "qwen", "mistral", "voxtral", "llama70B"}
    assert program.sets[1].root == Leaf("llama70B")
    assert program.sets[0].expression == "(g | q | m) & v"


def test_costs_accept_vars_and_model_ids() -> None:
    """evict_costs keys may be vars or real model ids (llama-swap's ResolvedEvictCosts)."""
    raw = {
        "vars": {"g": "gemma", "L": "llama70B"},
        "evict_costs": {"L": 30, "g": 5, "mistral": 10},
        "sets": {"s": "g & L & mistral"},
    }
    assert dict(_program(raw).costs) == {"llama70B": 30, "gemma": 5, "mistral": 10}


def test_program_is_read_only() -> None:
    """The compiled program is frozen, and its costs cannot be changed in place."""
    program = _program(BASIC)
    assert isinstance(program.costs, MappingProxyType)
    with pytest.raises(AttributeError):
        program.sets = ()  # type: ignore[misc]


def test_mixed_vars_models_and_duplicates() -> None:
    """Vars and model ids mix; a model named twice resolves to one leaf model."""
    program = _program({"vars": {"g": "gemma"}, "sets": {"combo": "g & gemma", "b": "g | qwen"}})
    assert program.sets[0].root == And(_names("gemma", "gemma"))
    assert program.sets[0].support == {"gemma"}
    assert program.sets[1].support == {"gemma", "qwen"}


def test_var_wins_over_a_model_id_with_a_warning() -> None:
    """A var named like a model shadows it, as in llama-swap, and swapgate warns."""
    program, out = _read({"vars": {"qwen": "gemma"}, "sets": {"combo": "qwen"}})
    assert program is not None
    assert program.sets[0].root == Leaf("gemma")
    assert [f"{w.path}: {w.message}" for w in out.warnings] == [
        'matrix.vars.qwen: shadows model "qwen": in sets and evict_costs "qwen" is "gemma"'
    ]


def test_references_are_inlined_and_ordered_first() -> None:
    """`+name` shares the referenced tree; a referenced set moves before its first user."""
    program = _program({"sets": {"big": "+small & reranker", "small": "gemma | qwen"}})
    small, big = program.sets
    assert program.set_names() == ("small", "big")
    assert big.root == And((Or(_names("gemma", "qwen")), Leaf("reranker")))
    assert isinstance(big.root, And)
    assert big.root.children[0] is small.root
    assert big.support == {"gemma", "qwen", "reranker"}


def test_reference_chain() -> None:
    """References may reference references (llama-swap's llms / with_tts / mega)."""
    raw = {
        "vars": {"g": "gemma", "q": "qwen", "m": "mistral", "v": "voxtral", "e": "reranker"},
        "sets": {"llms": "g | q | m", "with_tts": "+llms & v", "mega": "+with_tts & e"},
    }
    program = _program(raw)
    assert program.set_names() == ("llms", "with_tts", "mega")
    assert program.sets[2].support == {"gemma", "qwen", "mistral", "voxtral", "reranker"}


def test_routed_path_and_absent_section() -> None:
    """The routing.router.settings.matrix form reads the same; null means no matrix."""
    program, out = _read(BASIC, ROUTED)
    assert program is not None
    assert out.errors == out.warnings == []
    assert _read(None) == (None, Collector())
    assert _errors({"sets": {"s": "nope"}}, ROUTED) == [
        f'routing.router.settings.matrix.sets.s: unknown model "nope" at position 0; {KNOWN}'
    ]


ERRORS: list[tuple[str, object, list[str]]] = [
    ("not a mapping", ["a"], ["matrix: expected mapping, got list"]),
    ("no sets", {}, ['matrix.sets: required — define at least one set, e.g. pair: "a & b"']),
    (
        "empty sets",
        {"sets": {}},
        ['matrix.sets: required — define at least one set, e.g. pair: "a & b"'],
    ),
    ("sets not a mapping", {"sets": "a"}, ['matrix.sets: expected mapping, got string "a"']),
    ("set is a list", {"sets": {"s": ["gemma"]}}, ["matrix.sets.s: expected string, got list"]),
    (
        "empty expression",
        {"sets": {"s": " ", "t": None}},
        [
            'matrix.sets.s: must be a set expression such as "a & b | c", got string " "',
            'matrix.sets.t: must be a set expression such as "a & b | c", got null',
        ],
    ),
    (
        "bad expression",
        {"sets": {"main": "gemma & "}},
        ['matrix.sets.main: invalid expression at position 8: expected a model name after "&"'],
    ),
    (
        "unknown model",
        {"vars": {"g": "gemma"}, "sets": {"s": "g & nonexistent & nonexistent"}},
        [f'matrix.sets.s: unknown model "nonexistent" at position 4; {KNOWN}; vars: g'],
    ),
    (
        "set name used as a model",
        {"sets": {"s": "gemma", "t": "s & qwen"}},
        [f'matrix.sets.t: unknown model "s" at position 0; {KNOWN} — write "+s" to use the set'],
    ),
    (
        "unknown reference",
        {"sets": {"a": "+nonexistent"}},
        ['matrix.sets.a: unknown set "+nonexistent" at position 0; known sets: a'],
    ),
    (
        "reference cycle",
        {"sets": {"a": "+b", "b": "+a"}},
        ["matrix.sets.a: reference cycle: +a -> +b -> +a"],
    ),
    ("self reference", {"sets": {"a": "gemma | +a"}}, ["matrix.sets.a: reference cycle: +a -> +a"]),
    (
        "var to unknown model",
        {"vars": {"x": "nonexistent"}, "sets": {"s": "x"}},
        [
            f'matrix.vars.x: unknown model "nonexistent"; {KNOWN}',
            f'matrix.sets.s: unknown model "x" at position 0; {KNOWN}',
        ],
    ),
    (
        "var name too long",
        {"vars": {"a" * 33: "gemma"}, "sets": {"s": "gemma"}},
        [
            f'matrix.vars.{"a" * 33}: must be 1-32 letters, digits, "-" or "." (a var name), got "{"a" * 33}"'
        ],
    ),
    (
        "var name with underscore",
        {"vars": {"a_b": "gemma"}, "sets": {"s": "gemma"}},
        ['matrix.vars.a_b: must be 1-32 letters, digits, "-" or "." (a var name), got "a_b"'],
    ),
    (
        "empty var name",
        {"vars": {"": "gemma"}, "sets": {"s": "gemma"}},
        ['matrix.vars[""]: must be 1-32 letters, digits, "-" or "." (a var name), got ""'],
    ),
    (
        "bad costs",
        {
            "evict_costs": {"gemma": 0, "qwen": -1, "mistral": "x", "voxtral": None},
            "sets": {"s": "gemma"},
        },
        [
            "matrix.evict_costs.gemma: must be >= 1, got 0",
            "matrix.evict_costs.qwen: must be >= 1, got -1",
            'matrix.evict_costs.mistral: expected integer, got string "x"',
            "matrix.evict_costs.voxtral: must be >= 1, got null",
        ],
    ),
    (
        "unknown cost key",
        {"vars": {"g": "gemma"}, "evict_costs": {"unknown": 5}, "sets": {"s": "g"}},
        [f'matrix.evict_costs.unknown: unknown model "unknown"; {KNOWN}; vars: g'],
    ),
]


@pytest.mark.parametrize(("case", "raw", "expected"), ERRORS, ids=[c[0] for c in ERRORS])
def test_every_error_kind(case: str, raw: object, expected: list[str]) -> None:
    """Each kind of problem llama-swap rejects is an error at its path, in the house grammar."""
    assert _errors(raw) == expected, case


def test_all_problems_are_reported_at_once() -> None:
    """Problems in vars, costs and several sets all come back from one read."""
    raw = {
        "vars": {"a_b": "gemma"},
        "evict_costs": {"zz": 2},
        "sets": {"one": "(gemma", "two": "+three", "three": "+two", "four": "ghost"},
    }
    assert [p.split(":")[0] for p in _errors(raw)] == [
        "matrix.vars.a_b",
        "matrix.evict_costs.zz",
        "matrix.sets.one",
        "matrix.sets.four",
        "matrix.sets.two",
    ]


def test_unknown_keys_and_conflicting_costs_warn() -> None:
    """An unknown key warns with a hint; one model given two costs keeps the first."""
    raw = {
        "vars": {"g": "gemma"},
        "evict_cost": {},
        "evict_costs": {"g": 5, "gemma": 7},
        "sets": {"s": "g"},
    }
    program, out = _read(raw)
    assert program is not None
    assert dict(program.costs) == {"gemma": 5}
    assert [f"{w.path}: {w.message}" for w in out.warnings] == [
        'matrix.evict_cost: unknown key (did you mean "evict_costs"?); ignored',
        'matrix.evict_costs.gemma: model "gemma" already costs 5 (matrix.evict_costs.g); keeping 5',
    ]


def _issues_from_yaml(text: str) -> list[str]:
    """Load `text` with the real YAML loader so issues carry file:line, then read its matrix."""
    doc = parse_yaml(text, "config.yaml", Collector())
    out = Collector(lines=doc.lines, default_file="config.yaml")
    data = doc.data
    routed = isinstance(data.get("routing"), dict)
    path = ROUTED if routed else LEGACY
    raw: object = data
    for key in path:
        raw = raw.get(key) if isinstance(raw, dict) else None
    assert read_matrix(raw, path, MODELS, out) is None
    return [issue.render() for issue in out.sorted_errors()]


def test_yaml_errors_carry_lines_legacy_form() -> None:
    """Errors in the top-level form point at the line of the offending set or cost."""
    text = (
        "models: {}\n"
        "matrix:\n"
        "  vars:\n"
        "    g: gemma\n"
        "  evict_costs:\n"
        "    g: 0\n"
        "  sets:\n"
        "    main: 'g & '\n"
        "    other: '+missing'\n"
    )
    assert _issues_from_yaml(text) == [
        "config.yaml:6: matrix.evict_costs.g: must be >= 1, got 0",
        'config.yaml:8: matrix.sets.main: invalid expression at position 4: expected a model name after "&"',
        'config.yaml:9: matrix.sets.other: unknown set "+missing" at position 0; known sets: main, other',
    ]


def test_yaml_errors_carry_lines_routed_form() -> None:
    """Errors under routing.router.settings.matrix point at their lines too."""
    text = (
        "routing:\n"
        "  router:\n"
        "    use: matrix\n"
        "    settings:\n"
        "      matrix:\n"
        "        sets:\n"
        "          a: '+b'\n"
        "          b: 'gemma & +a'\n"
        "          c: 'qwen | nope'\n"
    )
    assert _issues_from_yaml(text) == [
        "config.yaml:7: routing.router.settings.matrix.sets.a: reference cycle: +a -> +b -> +a",
        f'config.yaml:9: routing.router.settings.matrix.sets.c: unknown model "nope" at position 7; {KNOWN}',
    ]
