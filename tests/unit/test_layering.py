"""Domain rooms know nothing of gRPC: only controller/rpc, app.py and the CLIs speak the wire."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
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
]
FORBIDDEN = ("grpc", "fleetops.v1", "google.protobuf")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_domain_rooms_do_not_import_grpc_or_generated_code() -> None:
    offenders = []
    for room in ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")):
            for name in imported_modules(path):
                if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
                    offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []
