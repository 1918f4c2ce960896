"""Unit tests of the patch task's output: the report goes to the agent, stdout to operators."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetops.agent.commands.tasks import REPORT_ENV
from fleetops.agent.patching import task
from fleetops.agent.patching.models import InstallOutcome, Package, ScanResult, Update
from fleetops.agent.patching.wire import report_to_proto
from fleetops.common.patch_report import RebootState
from fleetops.v1 import patching_pb2

SCAN = ScanResult(
    "linux",
    "apt",
    (Package("bash", "5.2", "amd64"),),
    (Update("bash", "5.2", "5.3", "amd64", "bookworm-security"),),
    reboot_pending=False,
    scanned_at=datetime(2026, 1, 1, tzinfo=UTC),
)


def test_the_summary_lists_each_outcome_and_ends_with_one_line() -> None:
    report = report_to_proto(
        "install",
        SCAN,
        [InstallOutcome("bash", "installed", "5.3"), InstallOutcome("vim", "not_applicable", None, "not offered")],
        RebootState.PENDING_POLICY_NEVER,
    )
    assert task.human_summary(report).splitlines() == [
        "installed: bash 5.3",
        "not_applicable: vim (not offered)",
        "patch install: 1 installed, 0 failed; reboot pending (policy never); 1 updates offered",
    ]
    assert task.human_summary(report_to_proto("scan", SCAN)) == "patch scan: 1 updates offered\n"


def test_main_writes_the_report_where_the_agent_said_and_only_a_summary_on_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def scan_all(providers: object) -> ScanResult:
        return SCAN

    monkeypatch.setattr(task, "providers_for", lambda request: [])
    monkeypatch.setattr(task, "scan_all", scan_all)
    monkeypatch.setenv(REPORT_ENV, str(tmp_path / "task-report.pb"))
    assert task.main("scan") == 0
    report = patching_pb2.PatchReport.FromString((tmp_path / "task-report.pb").read_bytes())
    assert report.operation == "scan" and [u.name for u in report.scan.updates] == ["bash"]
    assert capsys.readouterr().out == "patch scan: 1 updates offered\n"
