"""Every layering boundary of the package, checked on the source of each module.

- opsctl never imports the controller or the agent; the agent never imports the controller or opsctl.
- common (the one home of the types that cross process boundaries) never imports agent, controller
  or opsctl, nor gRPC/protobuf, except its two wire adapters (``WIRE_ADAPTERS``).
- Domain rooms (controller/<room>/) never import gRPC, generated code, controller/rpc, nor those
  wire adapters: only controller/rpc, app.py and the CLIs speak the wire.
- No import cycle among module-level imports inside the package.

The boundary rules count every import, also those inside functions (an import deferred to call
time still couples the layers); the cycle check counts module-level imports only, outside
``if TYPE_CHECKING:`` blocks, as those are the ones that run when a module is first imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Source folder of each package (pyproject [tool.setuptools] package-dir); generated code (fleetops.v1)
# and migrations are outside the layers checked here.
PACKAGES = {
    "fleetops.common": "common",
    "fleetops.agent": "agent",
    "fleetops.controller": "controller",
    "fleetops.opsctl": "opsctl",
}
ROOMS = [
    "controller/fleet",
    "controller/enrollment",
    "controller/audit",
    "controller/store",
    "controller/commands",
    "controller/objects",
    "controller/sessions",
    "controller/patching",
    "controller/windows",
    "controller/authz",
    "controller/users",
    "controller/throttle",
    "controller/replicas",
    "controller/ssh",
    "controller/documents",
    "controller/automation",
    "controller/associations",
]
WIRE = ("grpc", "fleetops.v1", "google.protobuf")
# The client side of the wire, shared by agent and opsctl: gRPC errors back into the exception tree
# (rpc_client) and the shared proto messages to plain Python (wire). They are adapters, not types
# crossing a boundary, so they may speak the wire; no domain room may import them.
WIRE_ADAPTERS = ("fleetops.common.rpc_client", "fleetops.common.wire")


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to the most specific module of the package it names."""

    module: str
    line: int
    module_level: bool  # runs when the importing module is first imported


@dataclass(frozen=True)
class Rule:
    """Modules under ``source`` must not import any name in ``forbidden`` (or below it)."""

    source: str  # a folder relative to ROOT
    forbidden: tuple[str, ...]
    why: str


RULES = [
    Rule("opsctl", ("fleetops.controller", "fleetops.agent"), "opsctl talks to the controller only over gRPC"),
    Rule("agent", ("fleetops.controller", "fleetops.opsctl"), "the agent shares only fleetops.common"),
    Rule("common", ("fleetops.agent", "fleetops.controller", "fleetops.opsctl"), "common is below every process"),
    *[
        Rule(room, (*WIRE, "fleetops.controller.rpc", *WIRE_ADAPTERS), "domain rooms know nothing of gRPC")
        for room in ROOMS
    ],
]


def module_name(path: Path, root: Path = ROOT) -> str:
    """The import name of a source file, e.g. agent/commands/posix.py -> fleetops.agent.commands.posix."""
    relative = path.relative_to(root)
    for package, folder in PACKAGES.items():
        if relative.parts[0] == folder:
            parts = [package, *relative.parts[1:]]
            parts[-1] = parts[-1].removesuffix(".py")
            if parts[-1] == "__init__":
                parts.pop()
            return ".".join(parts)
    raise ValueError(f"{relative} is in no package")


def package_sources() -> dict[str, Path]:
    return {
        module_name(path): path
        for folder in PACKAGES.values()
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


MODULES = package_sources()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(path: Path, root: Path = ROOT) -> Iterator[Import]:
    """Every import in ``path``; ``from pkg import sub`` names ``pkg.sub`` when that is a module."""
    importer = module_name(path, root)
    tree = ast.parse(path.read_text(), str(path))

    def visit(nodes: Iterable[ast.AST], module_level: bool) -> Iterator[Import]:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(alias.name, node.lineno, module_level)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(importer, path.name == "__init__.py", node)
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    yield Import(candidate if candidate in MODULES else base, node.lineno, module_level)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from visit(ast.iter_child_nodes(node), False)
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                yield from visit(node.body, False)
                yield from visit(node.orelse, module_level)
            else:
                yield from visit(ast.iter_child_nodes(node), module_level)

    yield from visit(tree.body, True)


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def boundary_offenders(rule: Rule, root: Path = ROOT) -> list[str]:
    offenders = []
    for path in sorted((root / rule.source).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        forbidden = rule.forbidden
        if rule.source == "common" and module_name(path, root) not in WIRE_ADAPTERS:
            forbidden = (*forbidden, *WIRE)
        for imp in imports_of(path, root):
            if _under(imp.module, forbidden):
                offenders.append(f"{path.relative_to(root)}:{imp.line} imports {imp.module}")
    return offenders


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.source)
def test_boundary(rule: Rule) -> None:
    offenders = boundary_offenders(rule)
    assert offenders == [], f"{rule.why} (forbidden: {', '.join(rule.forbidden)}):\n" + "\n".join(offenders)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports at module level (the edges that run on first import)."""
    return {
        name: {imp.module for imp in imports_of(path) if imp.module_level and imp.module in MODULES}
        for name, path in MODULES.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path a -> ... -> a) per strongly connected component with more than one member
    or a self-import (Tarjan's algorithm, iterative so deep graphs do not hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    components.append(component)
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first member back to itself, inside the component."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    return [*paths[node], start]
                if child not in paths:
                    paths[child] = [*paths[node], child]
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # unreachable for a strongly connected component


def test_no_module_level_import_cycles() -> None:
    found = [" -> ".join(cycle) for cycle in cycles(import_graph())]
    assert found == [], "module-level import cycles (move the shared part or a factory to its own module):\n" + (
        "\n".join(found)
    )


# The checks above must be able to fail: each is run once on a made-up case.


def test_cycles_are_found_and_named() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}, "e": {"a"}}
    assert sorted(cycles(graph)) == [["a", "b", "c", "a"], ["d", "d"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_imports_inside_functions_count_for_boundaries_but_not_for_cycles(tmp_path: Path) -> None:
    (tmp_path / "opsctl").mkdir()
    source = tmp_path / "opsctl" / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import grpc\n"
        "if TYPE_CHECKING:\n"
        "    from fleetops.agent import app\n"
        "def late():\n"
        "    from fleetops.controller import cli\n"
    )
    found = {(imp.module, imp.module_level) for imp in imports_of(source, tmp_path)}
    assert ("grpc", True) in found
    assert ("fleetops.agent.app", False) in found
    assert ("fleetops.controller.cli", False) in found
    rule = Rule("opsctl", ("fleetops.controller", "fleetops.agent"), "probe")
    assert boundary_offenders(rule, tmp_path) == [
        "opsctl/probe.py:4 imports fleetops.agent.app",
        "opsctl/probe.py:6 imports fleetops.controller.cli",
    ]


# Each room maps its rows to domain objects in one place, its store module: only store modules
# (and the tables' own package) import the SQLAlchemy tables (docs/architecture.md#rooms).
TABLES = "fleetops.controller.store.models"


def table_importers(root: Path = ROOT) -> list[str]:
    """Modules of the controller outside a room's store that import the tables."""
    offenders = []
    for path in sorted((root / "controller").rglob("*.py")):
        relative = path.relative_to(root)
        if "__pycache__" in path.parts or relative.parts[1] == "store":
            continue
        if path.name == "store.py" or "store" in relative.parts[2:-1]:
            continue
        for imp in imports_of(path, root):
            if _under(imp.module, (TABLES,)):
                offenders.append(f"{relative}:{imp.line} imports {imp.module}")
    return list(dict.fromkeys(offenders))  # one line per statement, however many names it imports


def test_only_store_modules_import_the_tables() -> None:
    assert table_importers() == [], "rows become domain objects in the room's store.py; the service calls the store"


def test_a_service_importing_the_tables_is_named(tmp_path: Path) -> None:
    room = tmp_path / "controller" / "fleet"
    room.mkdir(parents=True)
    (room / "service.py").write_text("from fleetops.controller.store.models import HostRow\n")
    (room / "store.py").write_text("from fleetops.controller.store.models import HostRow\n")
    assert table_importers(tmp_path) == ["controller/fleet/service.py:1 imports fleetops.controller.store.models"]
