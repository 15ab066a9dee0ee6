"""segscale's and the app's modules import one another without a cycle, imports inside functions included.

A cycle hidden in a function (``from ui.photos import ...`` inside ``ui.common``, which ``ui.photos``
imported) still ties two modules together: neither can be read, tested or moved without the
other. The graph is read from the source with ``ast``, so no module is imported to check it.
Imports under ``if TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("segscale", "ui")


def module_files(root: Path = REPO, packages=PACKAGES) -> dict[str, Path]:
    """{dotted module name: its file} for every module of the packages (a package is its __init__.py)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _runtime_nodes(nodes):
    """Every node under ``nodes`` except the bodies of ``if TYPE_CHECKING:`` (their imports never run)."""
    for node in nodes:
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            yield from _runtime_nodes(node.orelse)
            continue
        yield node
        yield from _runtime_nodes(ast.iter_child_nodes(node))


def imported_modules(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The known modules that ``module`` imports anywhere in its file: ``from a import b`` is ``a.b`` when that is a
    module, else ``a``."""

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path)).body):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            names = [f"{origin}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(target for target in map(resolve, names) if target is not None)
    found.discard(module)
    return found


def import_graph(root: Path = REPO, packages=PACKAGES) -> dict[str, set[str]]:
    known = module_files(root, packages)
    return {module: imported_modules(module, path, known) for module, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected sets of more than one module (Tarjan's algorithm): each holds at least one cycle."""
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(module: str) -> None:
        index[module] = lowest[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                lowest[module] = min(lowest[module], lowest[target])
            elif target in on_stack:
                lowest[module] = min(lowest[module], index[target])
        if lowest[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_app_and_the_package_import_without_a_cycle():
    found = sorted(sorted(component) for component in cycles(import_graph()))
    assert not found, f"modules that import one another (a lazy import counts too): {found}"


def test_a_cycle_through_a_lazy_import_is_found(tmp_path):
    """The checker itself: two modules that import each other, one of them inside a function, form a cycle; a
    TYPE_CHECKING import does not."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import helper\n")
    (package / "b.py").write_text("def helper():\n    from . import a\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.a"} and graph["pkg.c"] == set()
    assert cycles(graph) == {frozenset({"pkg.a", "pkg.b"})}
