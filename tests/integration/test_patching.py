"""Patch scan and install for real: a local apt repository, a real controller and agent, real dpkg.

The repository (tests/support/apt_repo.py) offers version 2.0 of three installed 1.0 packages: one
from a security suite, one from an updates suite, and one the baseline rejects. The agent's
reboot is replaced by a command that records it and clears the pending-reboot marker, as a
reboot would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
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


def assert_default_baseline_shows_what_waits(controller: Controller, host: str) -> None:
    """The issue: a scan under the default baseline offered updates, and compliance said "compliant,
    missing: none (no findings)". APT publishes no release dates, so the controller's first sight of
    each version stands in: the default baseline's bug-fix rule (7 days) approves the bugfix update
    7 days after this scan, and no rule approves the security updates (APT gives them no severity,
    and the default approves critical/important ones). Compliant, but showing what waits and when."""
    before = datetime.now(UTC)
    scanned = controller.opsctl("patch", "scan", "--host", host, "--no-refresh")
    due = {(moment + timedelta(days=7)).date().isoformat() for moment in (before, datetime.now(UTC))}
    shown = re.search(r"^pending approval: (\d+) on 1 host \(next approved (\S+) ", scanned.stdout, re.MULTILINE)
    assert shown and shown[2] in due, scanned.stdout

    text = controller.opsctl("patch", "compliance", "--host", host).stdout
    lines = text.splitlines()
    assert lines[0].startswith(f"{host}: compliant, baseline fleetops-default-linux"), text
    assert lines[1] == "missing: none", text
    line = re.fullmatch(r"pending approval: (\d+) \(next approved (\S+) .*; (\d+) not approved by any rule\)", lines[2])
    assert line and line[2] in due, text
    assert re.search(rf"^{BUGFIX_PACKAGE}\.all +1\.0 +2\.0 +bugfix .* rule 2 approves it at", text, re.MULTILINE), text

    doc = host_compliance(controller, host)
    latest = doc["hosts"][0]
    assert latest["status"] == "compliant" and not states(doc).keys() - {
        SECURITY_PACKAGE,
        BUGFIX_PACKAGE,
        REJECTED_PACKAGE,
    }
    assert set(states(doc).values()) == {"installed_other"}  # nothing approved yet, so nothing missing
    # Other updates the host's own apt lists offer are counted too: the test packages are at least 3.
    assert latest["pending_approval"] == int(line[1]) == int(shown[1]) >= 3
    assert latest["pending_undated"] == int(line[3]) >= 2
    assert latest["next_approval_at"][:10] in due
    pending = {u["name"]: u for u in doc["pending_updates"]}
    assert pending[BUGFIX_PACKAGE]["approved_at"][:10] in due and pending[BUGFIX_PACKAGE]["classification"] == "bugfix"
    for name in (SECURITY_PACKAGE, REJECTED_PACKAGE):
        assert "approved_at" not in pending[name], pending[name]  # no rule approves them: no date
        assert pending[name]["classification"] == "security"

    fleet = controller.opsctl_json("patch", "compliance", "--all")
    assert fleet["compliant"] == 1 and fleet["pending_approval"] == latest["pending_approval"]
    assert fleet["pending_approval_hosts"] == 1 and fleet["next_approval_at"] == latest["next_approval_at"]


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
    activation_id, code = controller.create_activation("--tag", "role=patched")  # an operator-set tag
    agent = make_agent("patch-host")
    agent.register(controller, activation_id, code)
    agent.start(
        env={"FLEETOPS_PATCH_REBOOT_REQUIRED_FILE": str(marker)},
        args=["--reboot-command", f"sh -c 'echo rebooted >> {reboots}; rm -f {marker}'"],
    )
    unscanned = controller.opsctl("patch", "install", "--host", "patch-host", check=False)
    assert unscanned.returncode == 4 and "no patch scan" in unscanned.stderr and "opsctl patch scan" in unscanned.stderr

    assert_default_baseline_shows_what_waits(controller, "patch-host")

    # Approved by name, and also by a glob that the rejected list overrides: rejected wins.
    controller.opsctl(
        "patch", "baseline", "create", "test-linux", "--os", "linux",
        "--approve", SECURITY_PACKAGE, "--approve", REJECTED_PACKAGE,
        "--reject", REJECTED_PACKAGE, "--rejected-action", "block",
    )  # fmt: skip
    controller.opsctl("patch", "baseline", "assign", "test-linux", "--group", "patched", "--target", "role=patched")

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
