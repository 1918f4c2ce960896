"""The console's vendored browser code (controller/console/static/vendor/) is the released npm files.

scripts/update_console_assets.py --check runs offline: every file MANIFEST.json lists is there with its
recorded sha256, each package's licence is present, and nothing unlisted lies beside them.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "update_console_assets.py"
VENDOR = ROOT / "controller" / "console" / "static" / "vendor"
PACKAGES = {"@xterm/xterm", "@xterm/addon-fit", "asciinema-player"}


@pytest.fixture(scope="module")
def assets() -> ModuleType:
    spec = importlib.util.spec_from_file_location("update_console_assets", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_vendored_files_match_the_manifest(assets: ModuleType) -> None:
    assert assets.check(VENDOR) == []


def test_check_command_exits_zero() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_manifest_names_the_packages_with_versions_and_licences() -> None:
    manifest = json.loads((VENDOR / "MANIFEST.json").read_text(encoding="utf-8"))
    packages = {entry["name"]: entry for entry in manifest["packages"]}
    assert set(packages) == PACKAGES
    for name, entry in packages.items():
        assert entry["version"][0].isdigit(), name
        assert entry["integrity"].startswith("sha512-"), name
        assert entry["license"], name
        license_path = VENDOR / entry["dir"] / entry["license_file"]
        assert license_path.read_text(encoding="utf-8").strip(), f"{license_path} is empty"


def test_a_changed_byte_is_reported_naming_the_file(assets: ModuleType, tmp_path: Path) -> None:
    vendor = tmp_path / "vendor"
    shutil.copytree(VENDOR, vendor)
    target = vendor / "xterm" / "xterm.css"
    data = bytearray(target.read_bytes())
    data[0] ^= 0x01
    target.write_bytes(bytes(data))

    problems = assets.check(vendor)

    assert len(problems) == 1
    assert "xterm/xterm.css" in problems[0]
    assert "sha256" in problems[0]


def test_a_missing_licence_is_reported(assets: ModuleType, tmp_path: Path) -> None:
    vendor = tmp_path / "vendor"
    shutil.copytree(VENDOR, vendor)
    (vendor / "asciinema-player" / "LICENSE").unlink()

    problems = assets.check(vendor)

    assert problems == [problems[0]]
    assert "asciinema-player/LICENSE" in problems[0]
    assert "missing" in problems[0]


def test_a_tarball_not_matching_the_integrity_is_refused(assets: ModuleType) -> None:
    released = b"released tarball"
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(released).digest()).decode("ascii")
    assets.verify_integrity(released, integrity, "pkg@1.0.0")

    with pytest.raises(assets.AssetError, match="does not match the manifest's integrity"):
        assets.verify_integrity(b"something else", integrity, "pkg@1.0.0")
