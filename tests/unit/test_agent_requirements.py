"""deploy/agent-requirements.txt is exactly what the agent imports, with pyproject.toml's version bounds.

The agent's installs (the Debian package, deploy/macos/install-agent.sh, deploy/windows/install.ps1)
install the fleetops wheel without its dependencies and then this list. Following the agent's
imports from source (every module of fleetops.agent, and each fleetops module those import) finds
every third-party module it can load; each must come from a listed distribution, and none of the
controller's or opsctl's modules may be reached.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "deploy" / "agent-requirements.txt"
PACKAGE_DIRS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
#: Imported only on Windows, from modules only Windows loads (importlib-loaded or guarded by os.name).
WINDOWS_ONLY = {
    "winpty": "pywinpty",
    "servicemanager": "pywin32",
    "win32service": "pywin32",
    "win32serviceutil": "pywin32",
}


def requirement_lines() -> list[str]:
    lines = [line.strip() for line in REQUIREMENTS.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def distribution(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return match.group(0).lower()


def module_file(name: str) -> Path | None:
    """The source file of fleetops module ``name`` (package-dir mapped), or None if it is not one."""
    for package, directory in sorted(PACKAGE_DIRS.items(), key=lambda item: -len(item[0])):
        if name == package or name.startswith(package + "."):
            rest = name[len(package) :].lstrip(".").replace(".", "/")
            base = ROOT / directory / rest if rest else ROOT / directory
            for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                if candidate.exists():
                    return candidate
    return None


def imports_of(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # from pkg import submodule
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)  # importlib.import_module("winpty")
    return found


def agent_closure() -> tuple[set[str], set[str]]:
    """(fleetops modules reached from fleetops.agent, top-level third-party modules they import)."""
    todo = [
        "fleetops.agent" + ("." + str(p.relative_to(ROOT / "agent").with_suffix("")).replace("/", "."))
        for p in (ROOT / "agent").rglob("*.py")
    ]
    todo = [name.removesuffix(".__init__") for name in todo]
    seen: set[str] = set()
    third_party: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name)
        assert path is not None, name
        for imported in imports_of(path, name):
            top = imported.split(".")[0]
            if top == "fleetops":
                if module_file(imported) is not None:
                    todo.append(imported)
            elif top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(top)
    return seen, third_party


def test_the_agent_imports_nothing_of_the_controller_or_opsctl() -> None:
    reached, _ = agent_closure()
    assert not {m for m in reached if m.startswith(("fleetops.controller", "fleetops.opsctl", "fleetops.migrations"))}


def test_every_third_party_module_the_agent_imports_is_in_its_requirements() -> None:
    _, third_party = agent_closure()
    listed = {distribution(line) for line in requirement_lines()}
    owners = packages_distributions()
    needed = set()
    for top in third_party:
        if top in WINDOWS_ONLY:
            needed.add(WINDOWS_ONLY[top])
            continue
        assert top in owners, f"the agent imports {top}, which no installed distribution provides"
        needed |= {name.lower() for name in owners[top]}
    # e.g. google (protobuf) and grpc (grpcio); yaml (PyYAML)
    assert needed == listed, f"agent imports need {sorted(needed)}, {REQUIREMENTS.name} lists {sorted(listed)}"


def test_each_requirement_is_pyprojects_own_line() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for line in requirement_lines():
        assert line in dependencies, f"{line!r} is not pyproject.toml's dependency (its bounds moved?)"
