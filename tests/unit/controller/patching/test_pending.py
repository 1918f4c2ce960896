"""Updates pending approval: what a compliant host still waits for, and when each is approved.

``summarize_pending`` must agree with ``decide`` (it is built on it): these tests pin the count,
the dates (release date, first seen, several rules), what is left out (approved, rejected), the
order and the stored form.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fleetops.common.baselines import ApprovalRule, Baseline
from fleetops.common.patch_report import AvailableUpdate, InstalledPackage, PatchScan
from fleetops.common.patching import Classification, Severity
from fleetops.controller.patching.compliance import PendingApproval, PendingUpdate
from fleetops.controller.patching.evaluation import decide, evaluate, summarize, summarize_pending
from fleetops.controller.patching.groups import BUILTIN_BASELINES

NOW = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)
DEFAULT = BUILTIN_BASELINES["linux"]  # security critical/important and bug fixes, after 7 days


def update(
    name: str, classification: Classification, severity: Severity = Severity.IMPORTANT, **kw: object
) -> AvailableUpdate:
    return AvailableUpdate(
        name=name,
        installed_version="1.0",
        candidate_version="2.0",
        arch="amd64",
        classification=classification,
        severity=severity,
        **kw,  # type: ignore[arg-type]
    )


def scan(*updates: AvailableUpdate) -> PatchScan:
    installed = tuple(InstalledPackage(u.name, u.installed_version, u.arch) for u in updates)
    return PatchScan(os_family="linux", provider="apt", host_id="h-1", installed=installed, updates=updates)


def test_apt_updates_first_seen_today_wait_seven_days_under_the_default_baseline() -> None:
    """The issue's case: APT publishes no dates, so the first-seen time stands in; nothing is
    approved yet, the host is compliant with no findings but updates pending, and the pending ones
    say when they will be approved."""
    s = scan(
        update("openssl", Classification.SECURITY),
        update("tzdata", Classification.BUGFIX, Severity.UNSPECIFIED),
        update("cowsay", Classification.ENHANCEMENT),  # no rule of the default baseline matches
    )
    seen = {(u.name, u.candidate_version): NOW - timedelta(hours=1) for u in s.updates}
    findings = evaluate(s, DEFAULT, NOW, first_seen=seen)
    assert summarize(findings, host_id="h-1").compliant
    assert not [f for f in findings if f.state.non_compliant]
    pending = summarize_pending(s, DEFAULT, NOW, first_seen=seen)
    assert pending.count == 3 and pending.undated == 1
    soon = NOW - timedelta(hours=1) + timedelta(days=7)
    assert pending.next_approval_at == soon
    assert [(u.name, u.approved_at) for u in pending.updates] == [
        ("openssl", soon),
        ("tzdata", soon),
        ("cowsay", None),
    ]
    assert pending.updates[2].reason == "no approval rule or approved pattern matches"
    assert "rule 1 approves it at" in pending.updates[0].reason


def test_each_date_is_the_one_decide_gives() -> None:
    """Two rules match one update: it is approved at the earlier of their dates, as decide says."""
    baseline = Baseline(
        name="two-rules",
        os_family="linux",
        rules=(
            ApprovalRule(classifications=frozenset({Classification.SECURITY}), approve_after_days=14),
            ApprovalRule(severities=frozenset({Severity.CRITICAL}), approve_after_days=3),
        ),
    )
    critical = update("a", Classification.SECURITY, Severity.CRITICAL, release_date=NOW - timedelta(days=1))
    important = update("b", Classification.SECURITY, release_date=NOW - timedelta(days=1))
    pending = summarize_pending(scan(critical, important), baseline, NOW)
    got = {u.name: u.approved_at for u in pending.updates}
    assert got == {u.name: decide(u, baseline, NOW).approvable_at for u in (critical, important)}
    assert got == {"a": NOW + timedelta(days=2), "b": NOW + timedelta(days=13)}


def test_approved_and_rejected_updates_are_not_pending() -> None:
    baseline = Baseline(
        name="b",
        os_family="linux",
        rules=DEFAULT.rules,
        approved_patches=("nginx",),
        rejected_patches=("telnet",),
    )
    old = NOW - timedelta(days=30)
    s = scan(
        update("openssl", Classification.SECURITY, release_date=old),  # approved by a rule: missing
        update("nginx", Classification.OTHER),  # approved by name
        update("telnet", Classification.SECURITY),  # rejected: never approved, not waiting
        update("fresh", Classification.SECURITY, release_date=NOW - timedelta(days=2)),
    )
    pending = summarize_pending(s, baseline, NOW)
    assert [u.name for u in pending.updates] == ["fresh"]
    assert pending.next_approval_at == NOW + timedelta(days=5)


def test_an_unknown_release_date_has_no_approval_date() -> None:
    """Without a release date or a first-seen time, a rule with a delay never approves (decide)."""
    pending = summarize_pending(scan(update("openssl", Classification.SECURITY)), DEFAULT, NOW)
    assert pending.count == 1 and pending.undated == 1 and pending.next_approval_at is None
    assert "release date is unknown" in pending.updates[0].reason


def test_nothing_offered_nothing_pending() -> None:
    pending = summarize_pending(scan(), DEFAULT, NOW)
    assert pending == PendingApproval() and pending.count == 0 and pending.next_approval_at is None
    assert pending.to_dict() == {"count": 0, "undated": 0, "next_approval_at": None, "updates": []}


def test_the_stored_form_round_trips_and_keeps_the_order() -> None:
    later = PendingUpdate("b", "2.0", approved_at=NOW + timedelta(days=3), classification="bugfix")
    undated = PendingUpdate("a", "2.0", reason="no approval rule or approved pattern matches")
    sooner = PendingUpdate(
        "c", "2.0", installed_version="1.0", arch="amd64", approved_at="2025-11-21T00:00:00Z", advisory_ids=["DSA-1"]
    )
    pending = PendingApproval((later, undated, sooner))
    assert [u.name for u in pending.updates] == ["c", "b", "a"]  # dated first, soonest first
    doc = pending.to_dict()
    assert doc["count"] == 3 and doc["undated"] == 1 and doc["next_approval_at"] == "2025-11-21T00:00:00Z"
    assert doc["updates"][0]["advisory_ids"] == ["DSA-1"] and doc["updates"][1]["classification"] == "bugfix"
    assert PendingApproval.from_dict(doc) == pending


def test_among_equal_dates_the_most_urgent_come_first() -> None:
    pending = PendingApproval(
        (
            PendingUpdate("aa-tool", "2.0", classification="other"),
            PendingUpdate("zz-lib", "2.0", classification="security", severity="low"),
            PendingUpdate("mm-lib", "2.0", classification="security", severity="critical"),
        )
    )
    assert [u.name for u in pending.updates] == ["mm-lib", "zz-lib", "aa-tool"]
