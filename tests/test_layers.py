"""The import-direction rule: imports only point down, and each third-party stack stays put."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("proxy", "router", "bench", "loadtests")


def _imports(path: Path) -> set[str]:
    """Top-level names of every module `path` imports, anywhere in it (relative ones resolved)."""
    package = path.relative_to(ROOT).parent.parts
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            found.add((*base, *(node.module or "").split("."))[0])
    return found


IMPORTS = {
    p.relative_to(ROOT).as_posix(): _imports(p)
    for pkg in PACKAGES
    for p in (ROOT / pkg).rglob("*.py")
}
# (what may not be imported, the modules where it is allowed: path prefixes)
CONFINED = [
    ("yaml", ("proxy/config/",)),
    ("granian", ("proxy/cli.py",)),
    ("blacksheep", ("proxy/web/",)),
]
FORBIDDEN = [
    ("proxy", ("router/", "bench/")),
    ("blacksheep", ("proxy/lifecycle/", "proxy/config/")),
    ("granian", ("proxy/lifecycle/", "proxy/config/")),
    ("aiohttp", ("proxy/config/", "router/")),
]


def test_walk_found_the_packages() -> None:
    """The walk sees every package, so an empty result cannot pass the rules vacuously."""
    assert {path.partition("/")[0] for path in IMPORTS} >= {"proxy", "router", "bench"}
    assert "yaml" in IMPORTS["proxy/config/load.py"]


def test_router_imports_only_stdlib_and_itself() -> None:
    """router/ is pure: nothing outside the standard library and router itself."""
    bad = {
        path: sorted(mods - sys.stdlib_module_names - {"router", "__future__"})
        for path, mods in IMPORTS.items()
        if path.startswith("router/")
    }
    assert {path: mods for path, mods in bad.items() if mods} == {}


@pytest.mark.parametrize(("module", "where"), FORBIDDEN)
def test_forbidden_imports(module: str, where: tuple[str, ...]) -> None:
    """`module` is never imported under the listed folders."""
    assert sorted(p for p, mods in IMPORTS.items() if module in mods and p.startswith(where)) == []


@pytest.mark.parametrize(("module", "allowed"), CONFINED)
def test_confined_imports(module: str, allowed: tuple[str, ...]) -> None:
    """`module` is imported only by the modules that own it."""
    assert (
        sorted(p for p, mods in IMPORTS.items() if module in mods and not p.startswith(allowed))
        == []
    )
