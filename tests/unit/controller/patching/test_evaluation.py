"""The seven patch states AWS Patch Manager reports, per host and patch, and the host summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleetops.common.baselines import ApprovalRule, Baseline
from fleetops.common.errors import InvalidInput
from fleetops.common.patch_report import AvailableUpdate, InstalledPackage, InstallOutcome, PatchScan
from fleetops.common.patching import (
    Classification,
    ComplianceLevel,
    InstallStatus,
    PatchState,
    RejectedAction,
    Severity,
)
from fleetops.controller.patching.compliance import HostCompliance, PatchFinding
from fleetops.controller.patching.evaluation import evaluate, pending_approval, summarize

NOW = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=30)

BASELINE = Baseline(
    name="prod-linux",
    os_family="linux",
    rules=(
        ApprovalRule(
            classifications=frozenset({Classification.SECURITY}),
            severities=frozenset({Severity.CRITICAL, Severity.IMPORTANT}),
            approve_after_days=7,
            compliance_level=ComplianceLevel.CRITICAL,
        ),
    ),
    compliance_level=ComplianceLevel.MEDIUM,
)


def sec(name: str, installed: str = "1.0", candidate: str = "1.1", **kw: object) -> AvailableUpdate:
    kw.setdefault("release_date", OLD)
    kw.setdefault("severity", Severity.CRITICAL)
    return AvailableUpdate(
        name=name,
        installed_version=installed,
        candidate_version=candidate,
        classification=Classification.SECURITY,
        **kw,  # type: ignore[arg-type]
    )


def scan(installed: dict[str, str], updates: list[AvailableUpdate] = (), **kw: object) -> PatchScan:  # type: ignore[assignment]
    return PatchScan(
        os_family="linux",
        provider="apt",
        host_id="h-1",
        installed=tuple(InstalledPackage(n, v, "amd64") for n, v in installed.items()),
        updates=tuple(updates),
        **kw,  # type: ignore[arg-type]
    )


def states(findings: list[PatchFinding]) -> dict[str, PatchState]:
    return {f.name: f.state for f in findings}


def one(findings: list[PatchFinding], name: str) -> PatchFinding:
    (finding,) = [f for f in findings if f.name == name]
    return finding


# -- each state ------------------------------------------------------------------------------------------


def test_missing_an_approved_update_that_is_not_installed() -> None:
    findings = evaluate(scan({"openssl": "1.0"}, [sec("openssl")]), BASELINE, NOW)
    f = one(findings, "openssl")
    assert f.state is PatchState.MISSING
    assert (f.installed_version, f.candidate_version) == ("1.0", "1.1")
    assert f.compliance_level is ComplianceLevel.CRITICAL and f.severity is Severity.CRITICAL
    assert f.host_id == "h-1" and f.arch == "amd64"


def test_installed_other_when_nothing_approves_the_package() -> None:
    findings = evaluate(scan({"bash": "5.2"}), BASELINE, NOW)
    f = one(findings, "bash")
    assert f.state is PatchState.INSTALLED_OTHER
    assert f.compliance_level is ComplianceLevel.UNSPECIFIED


def test_installed_other_while_the_update_waits_for_approval() -> None:
    fresh = sec("openssl", release_date=NOW - timedelta(days=2))
    f = one(evaluate(scan({"openssl": "1.0"}, [fresh]), BASELINE, NOW), "openssl")
    assert f.state is PatchState.INSTALLED_OTHER
    assert f.candidate_version == "1.1" and "approves it at" in f.detail
    # five days later the same scan shows it missing
    assert one(evaluate(scan({"openssl": "1.0"}, [fresh]), BASELINE, NOW + timedelta(days=5)), "openssl").state is (
        PatchState.MISSING
    )


def test_installed_when_the_approved_list_names_the_package() -> None:
    b = Baseline(name="b", os_family="linux", approved_patches=("nginx", "curl=8.*"))
    findings = evaluate(scan({"nginx": "1.24", "curl": "7.88"}), b, NOW)
    assert states(findings) == {"nginx": PatchState.INSTALLED, "curl": PatchState.INSTALLED_OTHER}


def test_installed_after_our_install_and_a_reboot() -> None:
    outcomes = [InstallOutcome("openssl", InstallStatus.INSTALLED, version="1.1", at=NOW - timedelta(hours=2))]
    findings = evaluate(scan({"openssl": "1.1"}), BASELINE, NOW, outcomes)
    assert one(findings, "openssl").state is PatchState.INSTALLED


def test_installed_pending_reboot_after_our_install() -> None:
    outcomes = [
        InstallOutcome(
            "linux-image-amd64",
            InstallStatus.INSTALLED,
            version="6.1.0-19",
            at=NOW - timedelta(hours=1),
            compliance_level=ComplianceLevel.CRITICAL,
        )
    ]
    s = scan({"linux-image-amd64": "6.1.0-19"}, reboot_pending=True, reboot_reasons=("linux-image-amd64",))
    f = one(evaluate(s, BASELINE, NOW, outcomes), "linux-image-amd64")
    assert f.state is PatchState.INSTALLED_PENDING_REBOOT
    assert f.compliance_level is ComplianceLevel.CRITICAL
    assert "not rebooted" in f.detail and "linux-image-amd64" in f.detail


def test_pending_reboot_only_for_what_we_installed() -> None:
    """AWS: packages installed outside Patch Manager are never INSTALLED_PENDING_REBOOT."""
    s = scan({"bash": "5.2"}, reboot_pending=True)
    assert one(evaluate(s, BASELINE, NOW), "bash").state is PatchState.INSTALLED_OTHER


def test_a_reboot_after_the_install_ends_pending_reboot_even_if_another_is_pending() -> None:
    outcomes = [InstallOutcome("openssl", InstallStatus.INSTALLED, version="1.1", at=NOW - timedelta(hours=3))]
    booted_after = scan({"openssl": "1.1"}, reboot_pending=True, booted_at=NOW - timedelta(hours=1))
    assert one(evaluate(booted_after, BASELINE, NOW, outcomes), "openssl").state is PatchState.INSTALLED
    booted_before = scan({"openssl": "1.1"}, reboot_pending=True, booted_at=NOW - timedelta(days=1))
    assert one(evaluate(booted_before, BASELINE, NOW, outcomes), "openssl").state is (
        PatchState.INSTALLED_PENDING_REBOOT
    )


def test_an_outcome_for_another_version_does_not_count() -> None:
    outcomes = [InstallOutcome("openssl", InstallStatus.INSTALLED, version="1.1")]
    s = scan({"openssl": "1.0"}, reboot_pending=True)  # someone downgraded since
    assert one(evaluate(s, BASELINE, NOW, outcomes), "openssl").state is PatchState.INSTALLED_OTHER


def test_failed_when_the_last_install_of_an_approved_update_failed() -> None:
    outcomes = [InstallOutcome("openssl", "failed", version="1.1", message="dpkg: error processing")]  # type: ignore[arg-type]
    f = one(evaluate(scan({"openssl": "1.0"}, [sec("openssl")]), BASELINE, NOW, outcomes), "openssl")
    assert f.state is PatchState.FAILED
    assert "dpkg: error processing" in f.detail
    assert f.compliance_level is ComplianceLevel.CRITICAL


def test_a_failure_is_forgotten_once_the_patch_is_in() -> None:
    outcomes = [InstallOutcome("openssl", InstallStatus.FAILED, version="1.1")]
    assert one(evaluate(scan({"openssl": "1.1"}), BASELINE, NOW, outcomes), "openssl").state is (
        PatchState.INSTALLED_OTHER
    )


def test_installed_rejected_when_blocking() -> None:
    b = Baseline(name="b", os_family="linux", rejected_patches=("telnet*",), rejected_action=RejectedAction.BLOCK)
    f = one(evaluate(scan({"telnet": "0.17"}), b, NOW), "telnet")
    assert f.state is PatchState.INSTALLED_REJECTED
    assert "rejected by 'telnet*'" in f.detail
    assert f.compliance_level is b.compliance_level


def test_installed_rejected_is_installed_other_when_allowed_as_dependency() -> None:
    """AWS: with ALLOW_AS_DEPENDENCY, InstalledRejectedCount is always 0."""
    b = Baseline(name="b", os_family="linux", rejected_patches=("telnet*",))
    assert b.rejected_action is RejectedAction.ALLOW_AS_DEPENDENCY
    f = one(evaluate(scan({"telnet": "0.17"}), b, NOW), "telnet")
    assert f.state is PatchState.INSTALLED_OTHER and "allowed as a dependency" in f.detail


def test_rejecting_an_installed_version_only() -> None:
    b = Baseline(name="b", os_family="linux", rejected_patches=("openssl=1.0*",), rejected_action=RejectedAction.BLOCK)
    assert one(evaluate(scan({"openssl": "1.0.2"}), b, NOW), "openssl").state is PatchState.INSTALLED_REJECTED
    assert one(evaluate(scan({"openssl": "3.0.2"}), b, NOW), "openssl").state is PatchState.INSTALLED_OTHER


def test_missing_wins_over_a_rejected_installed_version() -> None:
    """The approved update is the way out of the rejected version, so report it as missing."""
    b = Baseline(
        name="b",
        os_family="linux",
        rules=BASELINE.rules,
        rejected_patches=("openssl=1.0",),
        rejected_action=RejectedAction.BLOCK,
    )
    assert one(evaluate(scan({"openssl": "1.0"}, [sec("openssl")]), b, NOW), "openssl").state is PatchState.MISSING


def test_not_applicable_for_an_approved_name_the_host_does_not_have() -> None:
    b = Baseline(name="b", os_family="linux", approved_patches=("nginx", "postgres*", "mysql=8.*", "KB5034441"))
    findings = evaluate(scan({"bash": "5.2"}), b, NOW)
    assert states(findings) == {
        "bash": PatchState.INSTALLED_OTHER,
        "nginx": PatchState.NOT_APPLICABLE,  # only plain names: a glob or a version names nothing specific
        "KB5034441": PatchState.NOT_APPLICABLE,
    }
    assert one(findings, "nginx").compliance_level is b.compliance_level


def test_an_approved_name_both_rejected_is_not_reported_as_not_applicable() -> None:
    b = Baseline(name="b", os_family="linux", approved_patches=("nginx",), rejected_patches=("nginx",))
    assert evaluate(scan({}), b, NOW) == []


def test_an_approved_id_carried_by_an_offered_update_is_that_update() -> None:
    b = Baseline(name="b", os_family="windows", approved_patches=("KB5034441",))
    s = PatchScan(
        os_family="windows",
        host_id="w-1",
        updates=(
            AvailableUpdate(name="2024-01 Cumulative Update", candidate_version="1", kb="KB5034441"),
            AvailableUpdate(name="Defender definitions", candidate_version="1.403"),
        ),
    )
    findings = evaluate(s, b, NOW)
    assert states(findings) == {"2024-01 Cumulative Update": PatchState.MISSING}  # not offered: no finding
    assert one(findings, "2024-01 Cumulative Update").kb == "KB5034441"


def test_an_approved_new_package_is_missing_a_rejected_or_unapproved_one_is_not_reported() -> None:
    b = Baseline(name="b", os_family="linux", rules=BASELINE.rules, rejected_patches=("telnetd",))
    updates = [
        sec("linux-image-6.1.0-19", installed=""),
        sec("telnetd", installed=""),
        sec("foo", installed="", severity=Severity.LOW),
    ]
    assert states(evaluate(scan({}, updates), b, NOW)) == {"linux-image-6.1.0-19": PatchState.MISSING}


def test_an_update_of_an_unlisted_installed_package_is_still_evaluated() -> None:
    findings = evaluate(scan({}, [sec("openssl", installed="1.0", severity=Severity.LOW)]), BASELINE, NOW)
    f = one(findings, "openssl")
    assert f.state is PatchState.INSTALLED_OTHER and f.installed_version == "1.0"


def test_a_blocked_update_stays_missing_with_the_reason() -> None:
    b = Baseline(
        name="b",
        os_family="linux",
        rules=BASELINE.rules,
        rejected_patches=("libssh2*",),
        rejected_action=RejectedAction.BLOCK,
    )
    f = one(evaluate(scan({"curl": "1.0"}, [sec("curl", dependencies=("libssh2-1",))]), b, NOW), "curl")
    assert f.state is PatchState.MISSING
    assert "needs rejected package 'libssh2-1'" in f.detail


def test_multiarch_packages_are_separate_patches() -> None:
    s = PatchScan(
        os_family="linux",
        installed=(InstalledPackage("libc6", "2.36-9", "amd64"), InstalledPackage("libc6", "2.36-9", "i386")),
        updates=(sec("libc6", "2.36-9", "2.36-10", arch="i386"),),
    )
    findings = evaluate(s, BASELINE, NOW)
    assert [(f.arch, f.state) for f in findings] == [
        ("amd64", PatchState.INSTALLED_OTHER),
        ("i386", PatchState.MISSING),
    ]


def test_every_state_in_one_scan() -> None:
    b = Baseline(
        name="b",
        os_family="linux",
        rules=BASELINE.rules,
        approved_patches=("nginx", "haproxy"),
        rejected_patches=("telnet",),
        rejected_action=RejectedAction.BLOCK,
    )
    s = scan(
        {"openssl": "1.0", "curl": "7.0", "bash": "5.2", "telnet": "0.17", "nginx": "1.24", "kernel": "6.1"},
        [sec("openssl"), sec("curl", "7.0", "7.1")],
        reboot_pending=True,
    )
    outcomes = [
        InstallOutcome("curl", InstallStatus.FAILED, version="7.1"),
        InstallOutcome("kernel", InstallStatus.INSTALLED, version="6.1"),
    ]
    assert states(evaluate(s, b, NOW, outcomes)) == {
        "openssl": PatchState.MISSING,
        "curl": PatchState.FAILED,
        "bash": PatchState.INSTALLED_OTHER,
        "telnet": PatchState.INSTALLED_REJECTED,
        "nginx": PatchState.INSTALLED,
        "kernel": PatchState.INSTALLED_PENDING_REBOOT,
        "haproxy": PatchState.NOT_APPLICABLE,
    }


# -- input checks ------------------------------------------------------------------------------------------


def test_evaluate_accepts_the_agents_dict() -> None:
    raw = {
        "os_family": "linux",
        "installed": [{"name": "openssl", "version": "1.0"}],
        "updates": [
            {
                "name": "openssl",
                "installed_version": "1.0",
                "candidate_version": "1.1",
                "classification": "security",
                "severity": "critical",
                "release_date": OLD.isoformat(),
            }
        ],
    }
    assert states(evaluate(raw, BASELINE, NOW)) == {"openssl": PatchState.MISSING}


def test_a_scan_of_another_os_family_is_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        evaluate(PatchScan(os_family="windows", host_id="w-1"), BASELINE, NOW)
    assert "windows" in info.value.message and "baseline_for_host" in info.value.hint


def test_pending_approval_lists_what_waits() -> None:
    b = Baseline(name="b", os_family="linux", rules=BASELINE.rules, rejected_patches=("telnet",))
    s = scan(
        {},
        [
            sec("fresh", release_date=NOW - timedelta(days=1)),
            sec("approved"),
            sec("telnet"),
            sec("undated", release_date=None),
        ],
    )
    waiting = {u.name: d for u, d in pending_approval(s, b, NOW)}
    assert set(waiting) == {"fresh", "undated"}
    assert waiting["fresh"].approvable_at == NOW + timedelta(days=6)


# -- summary ---------------------------------------------------------------------------------------------


def finding(state: PatchState, **kw: object) -> PatchFinding:
    return PatchFinding(host_id="h-1", name=str(kw.pop("name", state.value)), state=state, **kw)  # type: ignore[arg-type]


def test_a_host_with_only_installed_other_and_not_applicable_is_compliant() -> None:
    summary = summarize(
        [finding(PatchState.INSTALLED), finding(PatchState.INSTALLED_OTHER), finding(PatchState.NOT_APPLICABLE)]
    )
    assert summary.compliant and summary.highest_level is None and summary.non_compliant_count == 0
    assert summary.host_id == "h-1"


@pytest.mark.parametrize(
    "state",
    [PatchState.MISSING, PatchState.FAILED, PatchState.INSTALLED_REJECTED, PatchState.INSTALLED_PENDING_REBOOT],
)
def test_any_non_compliant_state_makes_the_host_non_compliant(state: PatchState) -> None:
    summary = summarize([finding(PatchState.INSTALLED), finding(state, compliance_level=ComplianceLevel.LOW)])
    assert not summary.compliant
    assert summary.count(state) == 1 and summary.non_compliant_count == 1
    assert summary.highest_level is ComplianceLevel.LOW


def test_summary_counts() -> None:
    summary = summarize(
        [
            finding(PatchState.MISSING, name="a", severity=Severity.CRITICAL, compliance_level=ComplianceLevel.HIGH),
            finding(PatchState.MISSING, name="b", severity=Severity.CRITICAL, classification=Classification.SECURITY),
            finding(PatchState.MISSING, name="c", severity=Severity.LOW, compliance_level=ComplianceLevel.CRITICAL),
            finding(PatchState.FAILED, name="d", severity=Severity.CRITICAL, classification=Classification.SECURITY),
            finding(PatchState.INSTALLED_OTHER, name="e", severity=Severity.CRITICAL),
        ]
    )
    assert summary.count(PatchState.MISSING) == 3 and summary.count(PatchState.FAILED) == 1
    assert summary.missing_by_severity[Severity.CRITICAL] == 2  # missing only: failed and installed don't count
    assert summary.missing_by_severity[Severity.LOW] == 1
    assert summary.non_compliant_by_level[ComplianceLevel.UNSPECIFIED] == 2
    assert summary.non_compliant_by_level[ComplianceLevel.HIGH] == 1
    assert summary.highest_level is ComplianceLevel.CRITICAL
    assert summary.security_non_compliant == 2
    assert HostCompliance.from_dict(summary.to_dict()) == summary


def test_summary_of_an_evaluation() -> None:
    findings = evaluate(scan({"openssl": "1.0", "bash": "5.2"}, [sec("openssl")]), BASELINE, NOW)
    summary = summarize(findings)
    assert not summary.compliant and summary.highest_level is ComplianceLevel.CRITICAL
    assert summary.to_dict()["counts"] == {
        "installed": 0,
        "installed_other": 1,
        "installed_pending_reboot": 0,
        "installed_rejected": 0,
        "missing": 1,
        "failed": 0,
        "not_applicable": 0,
    }


def test_empty_findings_are_compliant_and_mixed_hosts_refused() -> None:
    assert summarize([], host_id="h-9").compliant
    with pytest.raises(InvalidInput):
        summarize([finding(PatchState.MISSING), PatchFinding(host_id="h-2", name="x", state=PatchState.MISSING)])


def test_findings_round_trip() -> None:
    findings = evaluate(scan({"openssl": "1.0"}, [sec("openssl", advisory_ids=("CVE-1",))]), BASELINE, NOW)
    assert [PatchFinding.from_dict(f.to_dict()) for f in findings] == findings
