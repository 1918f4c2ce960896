"""Patch scan and install for real: a local apt repository, a real controller and agent, real dpkg.

The repository (tests/support/apt_repo.py) offers version 2.0 of three installed 1.0 packages: one
from a security suite, one from an updates suite, and one the baseline rejects. The agent's
reboot is replaced by a command that records it and clears the pending-reboot marker, as a
reboot would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from apt_repo import BUGFIX_PACKAGE, REJECTED_PACKAGE, SECURITY_PACKAGE, AptTestSetup, apt_fixture, installed_version
from harness import Agent, Controller, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def apt_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AptTestSetup]:
    yield from apt_fixture(tmp_path_factory)


def host_compliance(controller: Controller, host: str) -> dict:
    return dict(controller.opsctl_json("patch", "compliance", "--host", host, "--all-findings"))


def states(doc: dict) -> dict[str, str]:
    return {f["name"]: f["state"] for f in doc.get("findings", []) if f["name"].startswith("fleetops-test-")}


def finding(doc: dict, name: str) -> dict:
    return next(f for f in doc["findings"] if f["name"] == name)


def patch(controller: Controller, *args: str) -> dict:
    result = controller.opsctl("patch", *args, "-o", "json", check=False)
    assert "Traceback" not in result.stderr, result.stderr
    doc = json.loads(result.stdout)
    doc["returncode"] = result.returncode
    return doc


def test_scan_install_and_reboot_policies_with_a_baseline(
    apt_setup: AptTestSetup,
    make_controller: Callable[..., Controller],
    make_agent: Callable[[str], Agent],
    tmp_path: Path,
) -> None:
    controller = make_controller("patch")
    controller.start()
    marker = tmp_path / "reboot-required"
    reboots = tmp_path / "reboots.log"
    activation_id, code = controller.create_activation()
    agent = make_agent("patch-host")
    agent.register(controller, activation_id, code, {"role": "patched"})
    agent.start(
        env={"FLEETOPS_PATCH_REBOOT_REQUIRED_FILE": str(marker)},
        args=["--reboot-command", f"sh -c 'echo rebooted >> {reboots}; rm -f {marker}'"],
    )
    # Approved by name, and also by a glob that the rejected list overrides: rejected wins.
    controller.opsctl(
        "patch", "baseline", "create", "test-linux", "--os", "linux",
        "--approve", SECURITY_PACKAGE, "--approve", REJECTED_PACKAGE,
        "--reject", REJECTED_PACKAGE, "--rejected-action", "block",
    )  # fmt: skip
    controller.opsctl("patch", "baseline", "assign", "test-linux", "--group", "patched", "--target", "role=patched")

    unscanned = controller.opsctl("patch", "install", "--host", "patch-host", check=False)
    assert unscanned.returncode == 4 and "no patch scan" in unscanned.stderr and "opsctl patch scan" in unscanned.stderr

    scan = patch(controller, "scan", "--host", "patch-host", "--no-refresh")
    assert scan["returncode"] == 0, scan
    before = host_compliance(controller, "patch-host")
    assert states(before) == {
        SECURITY_PACKAGE: "missing",
        BUGFIX_PACKAGE: "installed_other",  # offered, not approved by this baseline
        REJECTED_PACKAGE: "installed_rejected",  # approved and rejected: rejected; installed, and blocked
    }
    assert finding(before, SECURITY_PACKAGE)["classification"] == "security"
    assert finding(before, SECURITY_PACKAGE)["candidate_version"] == "2.0"
    assert before["hosts"][0]["status"] == "non_compliant" and before["hosts"][0]["baseline"] == "test-linux"

    # Install with a reboot pending afterwards, under "never": installed, pending reboot, no reboot.
    marker.write_text("*** System restart required ***\n")
    install = patch(controller, "install", "--host", "patch-host", "--reboot", "never", "--no-refresh")
    assert install["returncode"] == 0, install
    assert installed_version(SECURITY_PACKAGE) == "2.0"
    assert installed_version(REJECTED_PACKAGE) == "1.0" and installed_version(BUGFIX_PACKAGE) == "1.0"
    after = host_compliance(controller, "patch-host")
    assert states(after)[SECURITY_PACKAGE] == "installed_pending_reboot"
    assert states(after)[REJECTED_PACKAGE] == "installed_rejected"
    assert not reboots.exists()

    # Approve the bugfix update too, scan, and install under "if-needed": the reboot happens.
    controller.opsctl("patch", "baseline", "update", "test-linux", "--approve", BUGFIX_PACKAGE)
    patch(controller, "scan", "--host", "patch-host", "--no-refresh")
    assert states(host_compliance(controller, "patch-host"))[BUGFIX_PACKAGE] == "missing"
    reports_before = len(host_compliance(controller, "patch-host")["history"])
    result = controller.opsctl(
        "patch", "install", "--host", "patch-host", "--reboot", "if-needed", "--no-refresh", "--detach"
    )
    command_id = result.stdout.strip().splitlines()[-1]
    wait_until(reboots.exists, 120, "the reboot interface to be called")
    assert installed_version(BUGFIX_PACKAGE) == "2.0" and installed_version(REJECTED_PACKAGE) == "1.0"
    agent.stop()  # the "reboot": the agent comes back as a new process
    agent.start(
        env={"FLEETOPS_PATCH_REBOOT_REQUIRED_FILE": str(marker)},
        args=["--reboot-command", f"sh -c 'echo rebooted >> {reboots}; rm -f {marker}'"],
    )
    shown = controller.opsctl_json("command", "show", command_id)
    assert shown["command"]["agent_task"] == "patch.install"

    # After the reboot the controller scans the host again: everything approved is installed.
    def rescanned() -> dict | None:
        doc = host_compliance(controller, "patch-host")
        latest = doc["hosts"][0]
        fresh = len(doc["history"]) >= reports_before + 2 and latest.get("operation") == "scan"
        return doc if fresh and not latest.get("reboot_pending") else None

    final = wait_until(rescanned, 120, "a scan after the reboot")
    assert states(final)[SECURITY_PACKAGE] == "installed"
    assert states(final)[BUGFIX_PACKAGE] == "installed"
    assert states(final)[REJECTED_PACKAGE] == "installed_rejected"
    assert reboots.read_text().count("rebooted") == 1

    summary = controller.opsctl_json("patch", "compliance", "--all")
    assert summary["non_compliant"] == 1  # the blocked rejected package keeps it non-compliant
