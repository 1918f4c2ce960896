"""The built wheel installs into a fresh virtualenv and every package imports from it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_wheel_installs_and_every_package_imports(tmp_path: Path) -> None:
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next((tmp_path / "dist").glob("fleetops-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True, timeout=300
    )
    # Dependencies come from the test environment through a plain path entry (a .pth line that is a
    # directory is only appended to sys.path: the editable install's import hook there stays off),
    # so fleetops itself can only come from the wheel.
    site = next((venv / "lib").glob("python3*/site-packages"))
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "zz_test_deps.pth").write_text("\n".join(deps) + "\n")
    code = (
        "import importlib, sys\n"
        f"for name in {packages!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert list(module.__path__)[0].startswith({str(venv)!r}), (name, module.__path__)\n"
        "import fleetops.controller.app, fleetops.agent.link, fleetops.opsctl.cli, fleetops.v1.agent_pb2_grpc\n"
        "from fleetops.controller.store.database import head_revision\n"
        "print(head_revision())\n"
    )
    # Run outside the source tree, with the editable install hidden, so only the wheel can answer.
    result = subprocess.run([str(py), "-I", "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    for script in ("opsctl", "fleetops-agent", "fleetops-controller"):
        help_run = subprocess.run([str(venv / "bin" / script), "--help"], capture_output=True, text=True, timeout=60)
        assert help_run.returncode == 0, help_run.stderr
