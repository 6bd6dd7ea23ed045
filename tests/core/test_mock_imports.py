"""The mock's modules import one another in one direction: handlers get the mock's state passed in."""

from __future__ import annotations

import ast
import pathlib

import pytest_dmr.mock

PACKAGE = pathlib.Path(pytest_dmr.mock.__file__).parent


def _module_name(path: pathlib.Path) -> str:
    parts = ["pytest_dmr", *path.relative_to(PACKAGE.parent).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every mock module and the mock modules its import statements name (``TYPE_CHECKING`` and
    function-level imports included)."""
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in paths else node.module for alias in node.names)
        graph[name] = {target for target in found if target in paths and target != name}
    return graph


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A path of imports from ``start`` back to itself, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for target in sorted(graph[node]):
            if target == start:
                return [*path, start]
            if target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return None


def test_no_import_cycle_among_the_mock_modules() -> None:
    graph = import_graph()
    cycles = [cycle for name in sorted(graph) if (cycle := _cycle_from(name, graph)) is not None]
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)
    assert len(graph) > 20 and "pytest_dmr.mock.frontends" in graph["pytest_dmr.mock.frontends.ollama"]  # the walk sees imports


def test_only_the_package_imports_the_transport() -> None:
    graph = import_graph()
    assert sorted(name for name, targets in graph.items() if "pytest_dmr.mock.transport" in targets) == ["pytest_dmr.mock"]
