"""``fleetops-controller release add`` beside a serving controller: the release is listed, signed
with the release key, and each add is audited (``release.add``), a refused one too."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_debs import deb
from harness import PYTHON, Controller, run

pytestmark = pytest.mark.slow


def release_add(controller: Controller, package: Path) -> tuple[int, str]:
    result = run(
        [PYTHON, "-m", "fleetops.controller", "release", "add", "--state-dir", str(controller.state_dir), str(package)]
    )
    return result.returncode, result.stdout + result.stderr


def test_adding_a_release_is_audited_and_a_refused_one_too(controller: Controller, tmp_path: Path) -> None:
    package = tmp_path / "fleetops-agent_0.1.1-1_amd64.deb"
    package.write_bytes(deb("0.1.1-1"))
    code, said = release_add(controller, package)
    assert code == 0 and "added fleetops-agent_0.1.1-1_amd64.deb: agent 0.1.1 (amd64)" in said, said
    listed = controller.opsctl_json("agent", "releases")
    assert [r["version"] for r in listed["releases"]] == ["0.1.1"] and listed["key_id"]

    other = tmp_path / "other" / package.name
    other.parent.mkdir()
    other.write_bytes(deb("0.1.1-1", payload=b"something else"))
    code, said = release_add(controller, other)
    assert code != 0 and "exists with other contents" in said and "Traceback" not in said

    events = controller.opsctl_json("audit", "list", "--action", "release.add", "--outcome", "refused")
    (refused,) = events
    assert refused["target"] == package.name and "other contents" in refused["details"]["error"]
    (added,) = controller.opsctl_json("audit", "list", "--action", "release.add", "--outcome", "ok")
    assert added["target"] == package.name and added["actor"].startswith("controller:")
