"""Patch compliance on the wire: each host's pending-approval count, and the fleet's sum and earliest date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fleetops.controller.fleet.models import Host, HostStatus
from fleetops.controller.patching.compliance import PendingApproval, PendingUpdate
from fleetops.controller.patching.store import HostReport
from fleetops.controller.rpc.convert import patch_compliance_to_proto
from fleetops.controller.store.models import PatchReportRow

NOW = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)


def report(name: str, pending: PendingApproval | None, *, compliant: bool = True, **row: Any) -> HostReport:
    host = Host(f"id-{name}", name, HostStatus.ONLINE, {}, {}, "a-1", NOW, None, None, None)
    summary: dict[str, Any] = {"compliance": {"counts": {}}}
    if pending is not None:
        summary["pending_approval"] = pending.to_dict()
    values: dict[str, Any] = dict(
        id=1,
        host_id=host.id,
        host_name=name,
        operation="scan",
        command_id="c-1",
        invocation_id="i-1",
        baseline="fleetops-default-linux",
        patch_group="",
        os_family="linux",
        provider="apt",
        reboot_pending=False,
        error=None,
    )  # column defaults apply only on insert: give every value
    values.update(row)
    return HostReport(host, PatchReportRow(reported_at=NOW, compliant=compliant, summary=summary, **values))


def waiting(*days: int | None) -> PendingApproval:
    return PendingApproval(
        tuple(
            PendingUpdate(f"pkg-{i}", "2.0", approved_at=None if d is None else NOW + timedelta(days=d))
            for i, d in enumerate(days)
        )
    )


def test_the_fleet_sums_hosts_and_keeps_the_earliest_date() -> None:
    reports = [
        report("web-1", waiting(7, 7, None)),
        report("web-2", waiting(3)),
        report("db-1", waiting()),
        report("old-1", None),  # reported before the controller kept pending approvals
        HostReport(report("new-1", None).host, None),  # never scanned
    ]
    response = patch_compliance_to_proto(reports, [], [])
    hosts = {h.host_name: h for h in response.hosts}
    assert (hosts["web-1"].pending_approval, hosts["web-1"].pending_undated) == (3, 1)
    assert hosts["web-1"].next_approval_at.ToDatetime(tzinfo=UTC) == NOW + timedelta(days=7)
    assert hosts["db-1"].HasField("pending_approval") and hosts["db-1"].pending_approval == 0
    assert not hosts["db-1"].HasField("next_approval_at")
    assert not hosts["old-1"].HasField("pending_approval") and not hosts["new-1"].HasField("pending_approval")
    assert (response.pending_approval, response.pending_undated, response.pending_approval_hosts) == (4, 1, 2)
    assert response.next_approval_at.ToDatetime(tzinfo=UTC) == NOW + timedelta(days=3)
    assert not response.pending_updates  # the fleet view has counts only


def test_one_host_carries_its_pending_updates_in_order() -> None:
    response = patch_compliance_to_proto([report("web-1", waiting(None, 9, 2))], [], [], one_host=True)
    assert [(u.name, u.HasField("approved_at")) for u in response.pending_updates] == [
        ("pkg-2", True),
        ("pkg-1", True),
        ("pkg-0", False),
    ]
    assert response.pending_updates[0].approved_at.ToDatetime(tzinfo=UTC) == NOW + timedelta(days=2)


def test_an_unusable_report_has_no_pending_count() -> None:
    response = patch_compliance_to_proto([report("bad-1", waiting(1), error="not JSON")], [], [], one_host=True)
    assert response.hosts[0].status == "not_scanned" and not response.hosts[0].HasField("pending_approval")
    assert response.pending_approval == 0 and not response.pending_updates
