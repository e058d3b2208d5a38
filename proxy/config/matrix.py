"""llama-swap's `matrix` section: the set-expression language and its compiled, immutable form.

Owns tokenizing, parsing and checking `vars`, `evict_costs` and `sets`, and the `MatrixProgram`
the lifecycle solver reads. Pure: only the stdlib and proxy.config's issue and field readers;
never yaml, proxy.lifecycle or proxy.web.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from swapgate.proxy.config.issues import Collector, Path, describe, fmt_path
from swapgate.proxy.config.validate import read_int, read_map, read_str, warn_unknown

KEYS = ("vars", "evict_costs", "sets")
DEFAULT_COST = 1
MAX_NESTING = 64  # parentheses; deeper would only exhaust Python's recursion limit
# llama-swap's rule for var names (no "_", although expressions allow it in model ids).
_VAR_NAME = re.compile(r"[A-Za-z0-9.-]{1,32}\Z")


@dataclass(frozen=True, slots=True)
class Leaf:
    """One model: a var or model id when parsed, a model id once compiled."""

    model: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Ref:
    """`+name`: the expression of another set (only in parse trees; compiling inlines it)."""

    name: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class And:
    """One alternative from each child, taken together (the union of their models)."""

    children: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """The alternatives of every child, left to right."""

    children: tuple[Expr, ...]


# A parse tree. In a MatrixProgram, Refs are gone: the referenced set's compiled node is shared.
Expr = Leaf | Ref | And | Or


class ExpressionError(Exception):
    """A set expression that does not parse; `position` is a 0-based index into the text."""

    def __init__(self, position: int, detail: str) -> None:
        super().__init__(f"invalid expression at position {position}: {detail}")
        self.position = position
        self.detail = detail


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "name", "ref", "&", "|", "(", ")" or "end"
    text: str
    pos: int


def _is_name_char(ch: str) -> bool:
    # Go's unicode.IsLetter / IsDigit, as llama-swap's tokenizer uses them.
    return ch.isalpha() or ch.isdecimal() or ch in "_-."


def _name_end(text: str, start: int) -> int:
    end = start
    while end < len(text) and _is_name_char(text[end]):
        end += 1
    return end


def tokenize(text: str) -> list[_Token]:
    """The tokens of `text`, ending with an "end" token; raises ExpressionError."""
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "&|()":
            tokens.append(_Token(ch, ch, i))
            i += 1
        elif ch == "+" or _is_name_char(ch):
            end = _name_end(text, i + 1)
            if end == i + 1 and ch == "+":
                raise ExpressionError(i + 1, 'expected a set name after "+"')
            tokens.append(_Token("ref" if ch == "+" else "name", text[i:end], i))
            i = end
        else:
            raise ExpressionError(i, f'unexpected character "{ch}"')
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    """Recursive descent: or := and ("|" and)*; and := atom ("&" atom)*; & binds tighter."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def parse_or(self) -> Expr:
        return self._chain("|", self.parse_and, Or)

    def parse_and(self) -> Expr:
        return self._chain("&", self.parse_atom, And)

    def _chain(self, op: str, operand: Callable[[], Expr], node: type[And | Or]) -> Expr:
        children = [operand()]
        while self.peek().kind == op:
            self.take()
            children.append(operand())
        return children[0] if len(children) == 1 else node(tuple(children))

    def parse_atom(self) -> Expr:
        before = self.tokens[self.index - 1] if self.index else None
        token = self.take()
        if token.kind == "name":
            return Leaf(token.text, token.pos)
        if token.kind == "ref":
            return Ref(token.text[1:], token.pos)
        if token.kind == "(":
            if self.depth == MAX_NESTING:
                raise ExpressionError(token.pos, f"parentheses nested deeper than {MAX_NESTING}")
            self.depth += 1
            inner = self.parse_or()
            self.depth -= 1
            close = self.take()
            if close.kind != ")":
                got = "" if close.kind == "end" else f', got "{close.text}"'
                raise ExpressionError(
                    close.pos, f'expected ")" to close "(" at position {token.pos}{got}'
                )
            return inner
        after = f' after "{before.text}"' if before else ""
        got = "" if token.kind == "end" else f', got "{token.text}"'
        raise ExpressionError(token.pos, f"expected a model name{after}{got}")


def parse_expression(text: str) -> Expr:
    """Parse one set expression; raises ExpressionError with the position of the problem."""
    if not text.strip():
        raise ExpressionError(0, "the expression is empty")
    parser = _Parser(tokenize(text))
    root = parser.parse_or()
    rest = parser.peek()
    if rest.kind != "end":
        raise ExpressionError(rest.pos, f'expected "&", "|" or the end, got "{rest.text}"')
    return root


@dataclass(frozen=True, slots=True)
class MatrixSet:
    """One named set: its text, its compiled tree (model ids, references inlined), its models."""

    name: str
    expression: str
    root: Expr
    # Every model the expression can name: the solver skips a set without the target.
    support: frozenset[str]


@dataclass(frozen=True, slots=True)
class MatrixProgram:
    """A checked `matrix` section, ready for the solver (proxy/lifecycle/matrix.py).

    `sets` is in tie-break order: YAML order, except that a set referenced with `+name` comes
    before the first set that references it (llama-swap's topological order). `costs` holds
    the `evict_costs` by model id; every other model costs DEFAULT_COST to evict.
    """

    sets: tuple[MatrixSet, ...]
    costs: Mapping[str, int] = field(hash=False)  # read-only (MappingProxyType)

    def set_names(self) -> tuple[str, ...]:
        """The set names in tie-break order."""
        return tuple(s.name for s in self.sets)

    def cost_of(self, model: str) -> int:
        """What evicting `model` costs (DEFAULT_COST unless `evict_costs` says otherwise)."""
        return self.costs.get(model, DEFAULT_COST)

    def members(self) -> frozenset[str]:
        """Every model named anywhere in the sets."""
        return frozenset().union(*(s.support for s in self.sets))


def walk(expr: Expr) -> Iterator[Leaf | Ref]:
    """The leaves and references of a tree, left to right."""
    if isinstance(expr, Leaf | Ref):
        yield expr
        return
    for child in expr.children:
        yield from walk(child)


@dataclass(frozen=True, slots=True)
class _Names:
    """How identifiers resolve: a var first, then a model id (llama-swap's order)."""

    variables: Mapping[str, str]
    model_ids: frozenset[str]

    def resolve(self, name: str) -> str | None:
        return self.variables.get(name, name if name in self.model_ids else None)

    def unknown(self, name: str, where: str = "") -> str:
        known = ", ".join(sorted(self.model_ids)) or "none"
        tail = f"; vars: {', '.join(sorted(self.variables))}" if self.variables else ""
        return f'unknown model "{name}"{where}; known models: {known}{tail}'


def read_matrix(
    raw: object, path: Path, model_ids: set[str], out: Collector
) -> MatrixProgram | None:
    """Check and compile `matrix` (or `routing.router.settings.matrix`) at `path`.

    Every problem goes to `out`; the result is None when `raw` is None or anything is wrong.
    """
    if raw is None:
        return None
    before = len(out.errors)
    section = read_map(out, path, raw)
    if not isinstance(raw, dict):
        return None
    warn_unknown(out, path, section, KEYS)
    variables = _read_vars(section.get("vars"), (*path, "vars"), model_ids, out)
    names = _Names(MappingProxyType(variables), frozenset(model_ids))
    costs = _read_costs(section.get("evict_costs"), (*path, "evict_costs"), names, out)
    parsed = _read_sets(section.get("sets"), (*path, "sets"), names, out)
    order = _order(parsed, (*path, "sets"), out)
    if len(out.errors) > before:
        return None
    return MatrixProgram(_link(parsed, order, names), MappingProxyType(costs))


def _read_vars(raw: object, path: Path, model_ids: set[str], out: Collector) -> dict[str, str]:
    variables: dict[str, str] = {}
    for key, value in read_map(out, path, raw).items():
        where = (*path, key)
        if not _VAR_NAME.match(key):
            out.error(where, f'must be 1-32 letters, digits, "-" or "." (a var name), got "{key}"')
            continue
        model = read_str(out, where, value)
        if model not in model_ids:
            out.error(where, _Names({}, frozenset(model_ids)).unknown(model))
            continue
        if key in model_ids and key != model:
            out.warn(where, f'shadows model "{key}": in sets and evict_costs "{key}" is "{model}"')
        variables[key] = model
    return variables


def _read_costs(raw: object, path: Path, names: _Names, out: Collector) -> dict[str, int]:
    costs: dict[str, int] = {}
    given_by: dict[str, str] = {}
    for key, value in read_map(out, path, raw).items():
        where = (*path, key)
        model = names.resolve(key)
        if model is None:
            out.error(where, names.unknown(key))
            continue
        if value is None:
            out.error(where, "must be >= 1, got null")
            continue
        cost = read_int(out, where, value, 0, minimum=1)
        if cost < 1:
            continue
        if model in costs and costs[model] != cost:
            first = fmt_path((*path, given_by[model]))
            out.warn(
                where,
                f'model "{model}" already costs {costs[model]} ({first}); keeping {costs[model]}',
            )
            continue
        costs.setdefault(model, cost)
        given_by.setdefault(model, key)
    return costs


def _read_sets(
    raw: object, path: Path, names: _Names, out: Collector
) -> dict[str, tuple[str, Expr]]:
    section = read_map(out, path, raw)
    if raw is None or raw == {}:
        out.error(path, 'required — define at least one set, e.g. pair: "a & b"')
    parsed: dict[str, tuple[str, Expr]] = {}
    for name, value in section.items():
        where = (*path, name)
        if isinstance(value, dict | list):
            out.error(where, f"expected string, got {describe(value)}")
            continue
        text = read_str(out, where, value)
        if not text.strip():
            out.error(where, f'must be a set expression such as "a & b | c", got {describe(value)}')
            continue
        try:
            tree = parse_expression(text)
        except ExpressionError as exc:
            out.error(where, str(exc))
            continue
        for problem in _unknown_names(tree, names, section):
            out.error(where, problem)
        parsed[name] = (text, tree)
    return parsed


def _unknown_names(tree: Expr, names: _Names, sets: Mapping[str, object]) -> Iterator[str]:
    seen: set[str] = set()
    for node in walk(tree):
        key = f"+{node.name}" if isinstance(node, Ref) else node.model
        if key in seen:
            continue
        seen.add(key)
        where = f" at position {node.pos}"
        if isinstance(node, Ref) and node.name not in sets:
            yield f'unknown set "+{node.name}"{where}; known sets: {", ".join(sets)}'
        elif isinstance(node, Leaf) and names.resolve(node.model) is None:
            hint = f' — write "+{node.model}" to use the set' if node.model in sets else ""
            yield names.unknown(node.model, where) + hint


def _order(parsed: Mapping[str, tuple[str, Expr]], path: Path, out: Collector) -> list[str]:
    """Sets with each one's references first (depth first, in YAML and expression order)."""
    deps = {
        name: list(dict.fromkeys(n.name for n in walk(tree) if isinstance(n, Ref)))
        for name, (_, tree) in parsed.items()
    }
    order: list[str] = []
    done: set[str] = set()
    stack: list[str] = []

    def visit(name: str) -> None:
        if name in stack:
            cycle = [*stack[stack.index(name) :], name]
            out.error((*path, cycle[0]), "reference cycle: " + " -> ".join(f"+{n}" for n in cycle))
            return
        if name in done or name not in parsed:
            return
        stack.append(name)
        for dep in deps[name]:
            visit(dep)
        stack.pop()
        done.add(name)
        order.append(name)

    for name in parsed:
        visit(name)
    return order


def _link(
    parsed: Mapping[str, tuple[str, Expr]], order: list[str], names: _Names
) -> tuple[MatrixSet, ...]:
    compiled: dict[str, MatrixSet] = {}

    def inline(expr: Expr) -> Expr:
        if isinstance(expr, Ref):
            return compiled[expr.name].root  # shared, not copied: the tree is a DAG
        if isinstance(expr, Leaf):
            return Leaf(names.resolve(expr.model) or expr.model, expr.pos)
        return type(expr)(tuple(inline(child) for child in expr.children))

    for name in order:
        text, tree = parsed[name]
        support: set[str] = set()
        for node in walk(tree):
            if isinstance(node, Ref):
                support |= compiled[node.name].support
            else:
                support.add(names.resolve(node.model) or node.model)
        compiled[name] = MatrixSet(name, text, inline(tree), frozenset(support))
    return tuple(compiled[name] for name in order)
