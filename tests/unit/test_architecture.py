"""The house holds: what the import contracts in pyproject.toml (run by `make lint` as `lint-imports`) cannot say.

- the core imports nothing but the standard library and itself;
- no module of the product imports itself back through others (no import circles);
- no module of the product is over 400 lines.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("core", "bridge", "storage", "adapters", "bot", "sandbox", "playground", "rallybridge")
MAX_LINES = 400


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PRODUCT, include_external_packages=True, cache_dir=None)


def test_the_core_imports_only_the_standard_library_and_itself() -> None:
    graph = _graph()
    outside = {
        (module, imported)
        for module in graph.find_children("core") | {"core"} | graph.find_descendants("core")
        for imported in graph.find_modules_directly_imported_by(module)
        if imported.split(".")[0] != "core" and imported.split(".")[0] not in sys.stdlib_module_names
    }
    assert not outside, f"the core imports outside the standard library: {sorted(outside)}"


def _circles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each an import circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start) & modules)))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(sorted(group))
                continue
            if child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child) & modules))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_back_through_others() -> None:
    graph = _graph()
    modules = {m for m in graph.modules if m.split(".")[0] in PRODUCT}
    # A package's __init__ importing its own children is how packages expose names, not a circle of design.
    circles = [c for c in _circles(graph, modules) if not _package_exports_only(c)]
    assert not circles, f"import circles: {circles}"


def _package_exports_only(group: list[str]) -> bool:
    packages = [m for m in group if any(other.startswith(m + ".") for other in group)]
    return len(packages) == 1 and all(m == packages[0] or m.startswith(packages[0] + ".") for m in group)


def test_every_product_module_is_under_400_lines() -> None:
    too_long = {
        str(path.relative_to(ROOT)): n
        for package in PRODUCT
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts and (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


def test_the_circle_finder_finds_a_circle() -> None:
    """The check above can fail: a two-module circle built in a graph of its own is found."""
    graph = grimp.ImportGraph()
    for module in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(module)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.x")
    graph.add_import(importer="a.z", imported="a.x")
    assert _circles(graph, {"a.x", "a.y", "a.z"}) == [["a.x", "a.y"]]
