"""Patch groups (which baseline a host uses) and snapshots (the approved set of one install)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from fleetops.common.baselines import ApprovalRule, Baseline
from fleetops.common.errors import Conflict, InvalidInput, NotFound
from fleetops.common.patch_report import AvailableUpdate, PatchScan
from fleetops.common.patching import Classification, ComplianceLevel, PatchState, RejectedAction, Severity
from fleetops.controller.patching.evaluation import (
    baseline_for_host,
    default_baselines,
    evaluate,
    snapshot,
)
from fleetops.controller.patching.groups import BUILTIN_BASELINES, BaselineAssignment
from fleetops.controller.patching.snapshots import ApprovedPatch, ApprovedSnapshot

NOW = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)

PROD = Baseline(name="prod-linux", os_family="linux", rules=(ApprovalRule(approve_after_days=14),))
CANARY = Baseline(name="canary-linux", os_family="linux", rules=(ApprovalRule(approve_after_days=0),))
WEB = Baseline(name="web-linux", os_family="linux", rules=(ApprovalRule(approve_after_days=7),))
WIN = Baseline(name="prod-windows", os_family="windows")


def assign(group: str, selector: str, baseline: Baseline, priority: int) -> BaselineAssignment:
    return BaselineAssignment(group, selector, baseline, priority)  # type: ignore[arg-type]


ASSIGNMENTS = [
    assign("canary", "canary", CANARY, 10),
    assign("prod", "env=prod", PROD, 50),
    assign("web", "env=prod,role=web", WEB, 40),
    assign("prod", "env=prod", WIN, 50),
]


# -- baseline selection ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "family", "baseline", "group"),
    [
        ({"env": "prod"}, "linux", "prod-linux", "prod"),
        ({"env": "prod", "role": "web"}, "linux", "web-linux", "web"),  # priority 40 beats 50
        ({"env": "prod", "role": "web", "canary": "yes"}, "linux", "canary-linux", "canary"),
        ({"env": "prod"}, "windows", "prod-windows", "prod"),  # same group, the windows baseline
        ({"env": "dev"}, "linux", "fleetops-default-linux", ""),  # no group: the family default
        ({"canary": "1"}, "windows", "fleetops-default-windows", ""),  # canary has no windows baseline
        ({}, "darwin", "fleetops-default-darwin", ""),
    ],
)
def test_baseline_for_host(tags: dict[str, str], family: str, baseline: str, group: str) -> None:
    choice = baseline_for_host(tags, family, ASSIGNMENTS)
    assert (choice.baseline.name, choice.patch_group) == (baseline, group)


def test_a_stored_default_replaces_the_builtin_one() -> None:
    mine = Baseline(name="my-linux-default", os_family="linux", is_default=True)
    defaults = default_baselines([PROD, mine, WIN])
    assert defaults["linux"] is mine
    assert defaults["windows"] is BUILTIN_BASELINES["windows"]  # WIN is not marked default
    assert baseline_for_host({"env": "dev"}, "linux", ASSIGNMENTS, defaults).baseline is mine
    assert baseline_for_host({"env": "prod"}, "linux", ASSIGNMENTS, defaults).baseline is PROD


def test_two_defaults_for_one_family_conflict() -> None:
    with pytest.raises(Conflict) as info:
        default_baselines([dataclasses.replace(PROD, is_default=True), dataclasses.replace(CANARY, is_default=True)])
    assert "both the default for linux" in info.value.message
    assert info.value.hint


def test_a_tie_between_different_baselines_is_refused_not_guessed() -> None:
    tied = [assign("a", "env=prod", PROD, 10), assign("b", "role=web", WEB, 10)]
    with pytest.raises(Conflict) as info:
        baseline_for_host({"env": "prod", "role": "web"}, "linux", tied)
    assert "'a' and 'b'" in info.value.message and "priorities" in info.value.hint
    # hosts matching only one of them are fine
    assert baseline_for_host({"env": "prod"}, "linux", tied).patch_group == "a"
    # a tie on the same baseline is no ambiguity
    same = [assign("a", "env=prod", PROD, 10), assign("b", "role=web", PROD, 10)]
    assert baseline_for_host({"env": "prod", "role": "web"}, "linux", same).baseline is PROD


def test_an_unsupported_family_has_no_baseline() -> None:
    with pytest.raises(NotFound) as info:
        baseline_for_host({}, "freebsd", ASSIGNMENTS)
    assert "linux, windows, darwin" in info.value.hint


# -- snapshots ---------------------------------------------------------------------------------------------


def upd(name: str, candidate: str, days_old: float, **kw: object) -> AvailableUpdate:
    kw.setdefault("classification", Classification.SECURITY)
    kw.setdefault("severity", Severity.CRITICAL)
    return AvailableUpdate(
        name=name,
        installed_version="0",
        candidate_version=candidate,
        release_date=NOW - timedelta(days=days_old),
        **kw,  # type: ignore[arg-type]
    )


def host(host_id: str, *updates: AvailableUpdate) -> PatchScan:
    return PatchScan(os_family="linux", host_id=host_id, updates=updates)


BASE = Baseline(
    name="prod-linux",
    os_family="linux",
    rules=(
        ApprovalRule(
            classifications=frozenset({Classification.SECURITY}),
            approve_after_days=7,
            compliance_level=ComplianceLevel.HIGH,
        ),
    ),
    rejected_patches=("telnet",),
)


def test_snapshot_is_the_union_of_approved_updates_at_exact_versions() -> None:
    snap = snapshot(
        BASE,
        [
            host("h-1", upd("openssl", "3.0.2-2", 10), upd("curl", "8.1", 1)),
            host("h-2", upd("openssl", "3.0.2-2", 10), upd("bash", "5.2-2", 8)),
            host("h-3", upd("openssl", "3.1.0-1", 9), upd("telnet", "0.18", 30)),
            host("h-4", upd("vim", "9.1", 30, classification=Classification.ENHANCEMENT)),
        ],
        NOW,
    )
    assert [(p.name, p.version) for p in snap.patches] == [
        ("bash", "5.2-2"),
        ("openssl", "3.0.2-2"),
        ("openssl", "3.1.0-1"),
    ]
    assert snap.evaluated_at == NOW
    assert snap.patches[0].compliance_level is ComplianceLevel.HIGH
    assert snap.approves("openssl", "3.0.2-2") and not snap.approves("curl", "8.1")


def test_every_host_installs_from_the_fixed_set_however_late() -> None:
    snap = snapshot(BASE, [host("h-1", upd("openssl", "3.0.2-2", 10))], NOW)
    # hours later a host scans: a newer openssl is out (and old enough), curl has become approvable
    late = host("h-2", upd("openssl", "3.0.2-3", 30), upd("curl", "8.1", 30))
    assert snap.for_host(late) == ()
    again = host("h-3", upd("openssl", "3.0.2-2", 10), upd("curl", "8.1", 30))
    assert [p.name for p in snap.for_host(again)] == ["openssl"]


def test_the_decision_is_replayable_at_the_snapshot_time() -> None:
    """Evaluating with snapshot.evaluated_at gives the approvals the snapshot was taken with."""
    update = upd("openssl", "3.0.2-2", 6)  # one day short of approval
    scan = host("h-1", update)
    snap = snapshot(BASE, [scan], NOW)
    assert snap.patches == ()
    later = NOW + timedelta(days=2)
    assert evaluate(scan, snap.baseline, later)[0].state is PatchState.MISSING
    assert evaluate(scan, snap.baseline, snap.evaluated_at)[0].state is PatchState.INSTALLED_OTHER


def test_snapshots_are_immutable() -> None:
    snap = snapshot(BASE, [host("h-1", upd("openssl", "3.0.2-2", 10))], NOW)
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.patches = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.patches[0].version = "9"  # type: ignore[misc]
    assert isinstance(snap.patches, tuple)
    data = snap.to_dict()
    data["patches"].clear()
    data["baseline"]["rejected_patches"].append("openssl")
    assert len(snap.patches) == 1 and snap.baseline.rejected_patches == ("telnet",)
    # a later edit of the baseline is a new object; the snapshot keeps the one it was taken with
    edited = dataclasses.replace(BASE, rejected_patches=("telnet", "openssl"))
    assert snap.baseline is BASE and snap.baseline != edited
    assert snap.approves("openssl", "3.0.2-2")


def test_snapshot_round_trips_and_detects_tampering() -> None:
    snap = snapshot(BASE, [host("h-1", upd("openssl", "3.0.2-2", 10, kb="", advisory_ids=("CVE-1",)))], NOW)
    data = json.loads(json.dumps(snap.to_dict()))
    again = ApprovedSnapshot.from_dict(data)
    assert again == snap and again.digest() == snap.digest()
    data["baseline"]["rejected_patches"] = []
    with pytest.raises(InvalidInput) as info:
        ApprovedSnapshot.from_dict(data)
    assert "digest" in info.value.message


def test_snapshot_leaves_out_updates_blocked_by_a_rejected_dependency() -> None:
    blocking = dataclasses.replace(BASE, rejected_patches=("libssh2*",), rejected_action=RejectedAction.BLOCK)
    allowing = dataclasses.replace(BASE, rejected_patches=("libssh2*",))
    scans = [host("h-1", upd("curl", "8.1", 30, dependencies=("libssh2-1",)), upd("openssl", "3", 30))]
    assert [p.name for p in snapshot(blocking, scans, NOW).patches] == ["openssl"]
    assert [p.name for p in snapshot(allowing, scans, NOW).patches] == ["curl", "openssl"]


def test_snapshot_uses_first_seen_for_undated_updates() -> None:
    undated = AvailableUpdate(name="bash", candidate_version="5.2-2", classification=Classification.SECURITY)
    scans = [host("h-1", undated)]
    assert snapshot(BASE, scans, NOW).patches == ()
    seen = {("bash", "5.2-2"): NOW - timedelta(days=7)}
    assert snapshot(BASE, scans, NOW, first_seen=seen).patches == (ApprovedPatch("bash", "", "5.2-2"),)


def test_snapshot_refuses_scans_of_another_family_and_accepts_agent_dicts() -> None:
    with pytest.raises(InvalidInput):
        snapshot(BASE, [PatchScan(os_family="windows")], NOW)
    raw = {"os_family": "linux", "updates": [upd("openssl", "3", 30).to_dict()]}
    assert [p.name for p in snapshot(BASE, [raw], NOW).patches] == ["openssl"]
