"""The import-direction rule: imports only point down, and each third-party stack stays put."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("proxy", "router", "bench", "loadtests")


def _top(dotted: str) -> str:
    """The package a module belongs to: `swapgate.proxy.web` is proxy, `aiohttp.web` aiohttp."""
    parts = dotted.split(".")
    return parts[1] if parts[0] == "swapgate" and len(parts) > 1 else parts[0]


def _imports(path: Path) -> set[str]:
    """Packages of every module `path` imports, anywhere in it (relative ones resolved)."""
    package = path.relative_to(ROOT).parent.parts
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(_top(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.add(
                (*package[: len(package) - node.level + 1], *(node.module or "").split("."))[0]
            )
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            found.update(
                _top(f"{module}.{alias.name}") if module == "swapgate" else _top(module)
                for alias in node.names
            )
    return found


def _bare_imports(path: Path) -> list[str]:
    """Absolute imports of our folders by their folder name (`import proxy`), not `swapgate.*`."""
    bare = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        bare += [n for n in names if n.partition(".")[0] in PACKAGES]
    return bare


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
    ("watchfiles", ("proxy/config/watch.py",)),
    ("prometheus_client", ("proxy/metrics/", "proxy/web/metrics.py")),
    ("sqlite3", ("proxy/activity/store.py",)),
]
FORBIDDEN = [
    ("proxy", ("router/", "bench/")),
    ("bench", ("proxy/", "router/")),  # the product never imports the harness
    ("blacksheep", ("proxy/lifecycle/", "proxy/config/")),
    ("granian", ("proxy/lifecycle/", "proxy/config/")),
    ("aiohttp", ("proxy/config/", "router/")),
]


def test_walk_found_the_packages() -> None:
    """The walk sees every package, so an empty result cannot pass the rules vacuously."""
    assert {path.partition("/")[0] for path in IMPORTS} >= {"proxy", "router", "bench"}
    assert "yaml" in IMPORTS["proxy/config/load.py"]


def test_our_code_is_imported_as_swapgate() -> None:
    """Installed, the folders are `swapgate.proxy` etc.: a bare `import proxy` would find
    another distribution's module (proxy.py installs `proxy`) or nothing."""
    files = [p for pkg in (*PACKAGES, "tests") for p in (ROOT / pkg).rglob("*.py")]
    assert {p.relative_to(ROOT).as_posix(): b for p in files if (b := _bare_imports(p))} == {}


def test_installed_names_cannot_collide() -> None:
    """The only top-level import name the distribution installs is `swapgate`."""
    packages = [p.name for p in (ROOT / ".pkg").iterdir() if not p.name.endswith(".egg-info")]
    assert packages == ["swapgate"]
    links = {p.name: p.resolve() for p in (ROOT / ".pkg" / "swapgate").iterdir() if p.is_symlink()}
    assert links == {pkg: ROOT / pkg for pkg in PACKAGES}


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
