"""Pure decisions of patching: approval, the state of every patch on a host, baseline choice, snapshots.

Nothing here does I/O or reads a clock: the caller passes ``now``, so a decision can be replayed
(an install reuses its snapshot's ``evaluated_at``). The semantics follow AWS Patch Manager;
docs/patching.md lists every choice and where we differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from fleetops.common.baselines import OS_FAMILIES, Baseline, PatchPattern
from fleetops.common.errors import Conflict, InvalidInput, NotFound
from fleetops.common.patch_report import AvailableUpdate, InstallOutcome, PatchScan
from fleetops.common.patching import (
    Classification,
    ComplianceLevel,
    InstallStatus,
    PatchState,
    RejectedAction,
    Severity,
    utc,
)
from fleetops.controller.patching.compliance import HostCompliance, PatchFinding, PendingApproval, PendingUpdate
from fleetops.controller.patching.groups import BUILTIN_BASELINES, BaselineAssignment
from fleetops.controller.patching.snapshots import ApprovedPatch, ApprovedSnapshot

#: When the controller first saw each (package name, candidate version) in any scan. Stands in for
#: the release date of updates whose repository publishes none (APT), so approve-after-days still
#: means "this long after it appeared".
FirstSeen = Mapping[tuple[str, str], datetime]


@dataclass(frozen=True)
class Decision:
    """What a baseline says about one update at one moment.

    ``blocked_by`` names a rejected package the update would bring in when the baseline's
    rejected action is ``block``: the update is approved but cannot be installed, so it stays
    MISSING and is left out of snapshots. ``approvable_at`` is when a matching rule will approve an
    update that is not approved yet (None when no rule will, or the release date is unknown).
    """

    approved: bool
    rejected: bool = False
    compliance_level: ComplianceLevel = ComplianceLevel.UNSPECIFIED
    reason: str = ""
    approvable_at: datetime | None = None
    blocked_by: str = ""

    @property
    def installable(self) -> bool:
        return self.approved and not self.blocked_by


def _rejected_by(baseline: Baseline, name: str, version: str) -> PatchPattern | None:
    return next((p for p in baseline.rejected if p.matches_package(name, version)), None)


def _dependency_rejected(baseline: Baseline, dependency: str) -> bool:
    name, _, version = dependency.partition("=")
    return any(
        p.matches_package(name, version) if version else (not p.version and p.matches_package(name, ""))
        for p in baseline.rejected
    )


def decide(
    update: AvailableUpdate, baseline: Baseline, now: datetime, *, first_seen: FirstSeen | None = None
) -> Decision:
    """Whether *baseline* approves *update* at *now*, and why.

    1. A rejected pattern matching the update (name at its candidate version, KB or advisory id)
       wins over everything: not approved.
    2. An approved pattern matching it approves it at once, at the baseline's compliance level.
    3. A rule whose classification and severity filters let it through approves it once
       ``release date + approve_after_days <= now`` (UTC), at the rule's level. When the release date
       is unknown, ``first_seen`` stands in; when that is unknown too, only a rule with
       ``approve_after_days: 0`` approves it (we do not assume a soak time has passed; AWS does).

    When several rules (or a rule and the approved list) approve, the highest compliance level counts.
    """
    now = utc(now)
    for pattern in baseline.rejected:
        if pattern.matches_update(update):
            return Decision(False, True, baseline.compliance_level, f"rejected by {pattern.text!r}")
    levels: list[ComplianceLevel] = []
    reasons: list[str] = []
    for pattern in baseline.approved:
        if pattern.matches_update(update):
            levels.append(baseline.compliance_level)
            reasons.append(f"approved by {pattern.text!r}")
            break
    released = update.release_date
    if released is None and first_seen:
        seen = first_seen.get((update.name, update.candidate_version))
        released = None if seen is None else utc(seen)
    approvable_at: datetime | None = None
    waiting: list[str] = []
    for number, rule in enumerate(baseline.rules, 1):
        if not rule.matches(update.classification, update.severity):
            continue
        if released is None:
            if rule.approve_after_days == 0:
                levels.append(rule.compliance_level or baseline.compliance_level)
                reasons.append(f"rule {number} ({rule.describe()})")
            else:
                waiting.append(f"rule {number} waits {rule.approve_after_days} days but the release date is unknown")
            continue
        at = released + timedelta(days=rule.approve_after_days)
        if at <= now:
            levels.append(rule.compliance_level or baseline.compliance_level)
            reasons.append(f"rule {number} ({rule.describe()})")
        else:
            approvable_at = at if approvable_at is None else min(approvable_at, at)
            waiting.append(f"rule {number} approves it at {at.isoformat(timespec='seconds').replace('+00:00', 'Z')}")
    if levels:
        blocked = ""
        if baseline.rejected_action is RejectedAction.BLOCK:
            blocked = next((dep for dep in update.dependencies if _dependency_rejected(baseline, dep)), "")
        return Decision(True, False, max(levels), "; ".join(reasons), blocked_by=blocked)
    reason = "; ".join(waiting) or "no approval rule or approved pattern matches"
    return Decision(False, False, baseline.compliance_level, reason, approvable_at)


def is_approved(
    update: AvailableUpdate, baseline: Baseline, now: datetime, *, first_seen: FirstSeen | None = None
) -> bool:
    """Whether *baseline* approves *update* at *now* (see :func:`decide`)."""
    return decide(update, baseline, now, first_seen=first_seen).approved


# --------------------------------------------------------------------------------------------------
# States


class _Host:
    """One evaluation's context: the scan, the baseline and the last install's outcomes."""

    def __init__(
        self,
        scan: PatchScan,
        baseline: Baseline,
        now: datetime,
        last_install: Iterable[InstallOutcome],
        first_seen: FirstSeen | None,
    ) -> None:
        self.scan = scan
        self.baseline = baseline
        self.now = utc(now)
        self.first_seen = first_seen
        self.outcomes: dict[str, list[InstallOutcome]] = {}
        for outcome in last_install:
            self.outcomes.setdefault(outcome.name, []).append(outcome)

    def outcome(self, name: str, arch: str) -> InstallOutcome | None:
        candidates = self.outcomes.get(name, [])
        return next((o for o in reversed(candidates) if not o.arch or not arch or o.arch == arch), None)

    def finding(self, name: str, arch: str, state: PatchState, level: ComplianceLevel, **extra: object) -> PatchFinding:
        return PatchFinding(
            host_id=self.scan.host_id,
            name=name,
            arch=arch,
            state=state,
            compliance_level=level,
            **extra,  # type: ignore[arg-type]  # extra holds only PatchFinding keyword fields
        )

    def package(
        self, name: str, arch: str, installed_version: str, update: AvailableUpdate | None
    ) -> PatchFinding | None:
        """The finding for one package (installed, or offered as a new one) and the update offered for it."""
        extra: dict[str, object] = {"installed_version": installed_version}
        pending = ""  # what the baseline says of an offered update that is not approved
        if update is not None:
            extra.update(
                candidate_version=update.candidate_version,
                classification=update.classification,
                severity=update.severity,
                kb=update.kb,
                advisory_ids=update.advisory_ids,
            )
            decision = decide(update, self.baseline, self.now, first_seen=self.first_seen)
            if decision.approved:
                outcome = self.outcome(name, arch)
                if outcome is not None and outcome.status is InstallStatus.FAILED:
                    detail = f"the last install of {outcome.version or 'it'} failed"
                    if outcome.message:
                        detail += f": {outcome.message}"
                    return self.finding(
                        name, arch, PatchState.FAILED, decision.compliance_level, detail=detail, **extra
                    )
                detail = decision.reason
                if decision.blocked_by:
                    detail = f"needs rejected package {decision.blocked_by!r} (rejected_action: block); {detail}"
                return self.finding(name, arch, PatchState.MISSING, decision.compliance_level, detail=detail, **extra)
            pending = f"; update {update.candidate_version}: {decision.reason}"
        if not installed_version:
            return None  # not installed and not an approved update: nothing to report
        baseline = self.baseline
        if (rejected := _rejected_by(baseline, name, installed_version)) is not None:
            if baseline.rejected_action is RejectedAction.BLOCK:
                return self.finding(
                    name,
                    arch,
                    PatchState.INSTALLED_REJECTED,
                    baseline.compliance_level,
                    detail=f"installed but rejected by {rejected.text!r}{pending}",
                    **extra,
                )
            return self.finding(
                name,
                arch,
                PatchState.INSTALLED_OTHER,
                ComplianceLevel.UNSPECIFIED,
                detail=f"rejected by {rejected.text!r}, allowed as a dependency{pending}",
                **extra,
            )
        outcome = self.outcome(name, arch)
        if (
            outcome is not None
            and outcome.status is InstallStatus.INSTALLED
            and (not outcome.version or outcome.version == installed_version)
        ):
            level = outcome.compliance_level or baseline.compliance_level
            if update is None:
                extra.update(classification=outcome.classification, severity=outcome.severity)
            rebooted_since = (
                self.scan.booted_at is not None and outcome.at is not None and self.scan.booted_at > outcome.at
            )
            if self.scan.reboot_pending and not rebooted_since:
                reasons = ", ".join(self.scan.reboot_reasons)
                detail = "installed by the last install; the host has not rebooted since" + (
                    f" ({reasons})" if reasons else ""
                )
                return self.finding(name, arch, PatchState.INSTALLED_PENDING_REBOOT, level, detail=detail, **extra)
            return self.finding(
                name, arch, PatchState.INSTALLED, level, detail="installed by the last install" + pending, **extra
            )
        approved = next((p for p in baseline.approved if p.matches_package(name, installed_version)), None)
        if approved is not None:
            return self.finding(
                name,
                arch,
                PatchState.INSTALLED,
                baseline.compliance_level,
                detail=f"approved by {approved.text!r}{pending}",
                **extra,
            )
        return self.finding(
            name,
            arch,
            PatchState.INSTALLED_OTHER,
            ComplianceLevel.UNSPECIFIED,
            detail=("not approved by the baseline" + pending).strip("; "),
            **extra,
        )


def _take_update(updates: dict[str, list[AvailableUpdate]], name: str, arch: str) -> AvailableUpdate | None:
    candidates = updates.get(name, [])
    for i, update in enumerate(candidates):
        if update.arch == arch or not update.arch or not arch:
            return candidates.pop(i)
    return None


def evaluate(
    scan: PatchScan | Mapping[str, object],
    baseline: Baseline,
    now: datetime,
    last_install_outcomes: Iterable[InstallOutcome] = (),
    *,
    first_seen: FirstSeen | None = None,
) -> list[PatchFinding]:
    """The state of every patch on the scanned host under *baseline* at *now*, sorted by name.

    One finding per installed package, per approved update of a package not installed yet, and
    per explicitly approved name the host has nothing of. For a package (first match wins):

    - FAILED: an approved update is offered and the last install of that package failed;
    - MISSING: an approved update is offered (also when a rejected dependency blocks it);
    - INSTALLED_REJECTED: the installed version is rejected and the rejected action is ``block``
      (``allow_as_dependency`` makes it INSTALLED_OTHER, as in AWS);
    - INSTALLED_PENDING_REBOOT: the last install put this version in, the host reports a pending
      reboot and has not booted since that install;
    - INSTALLED: the last install put this version in, or the approved list names it;
    - INSTALLED_OTHER: installed, not approved (nothing approved is pending for it either);
    - NOT_APPLICABLE: an explicitly approved plain name (no wildcard, no version) matching no
      installed package and no offered update.

    *scan* may be the agent's JSON dict. *last_install_outcomes* are the per-package results of
    the host's last install operation (empty when there was none).

    Raises:
        InvalidInput: the scan is malformed or for another OS family than the baseline.
    """
    if not isinstance(scan, PatchScan):
        scan = PatchScan.from_dict(scan)
    if scan.os_family and scan.os_family != baseline.os_family:
        raise InvalidInput(
            f"host {scan.host_id or '?'} reports os_family {scan.os_family!r}; baseline {baseline.name!r} "
            f"is for {baseline.os_family}",
            "evaluate a host with a baseline of its own OS family (baseline_for_host picks it)",
        )
    host = _Host(scan, baseline, now, last_install_outcomes, first_seen)
    updates: dict[str, list[AvailableUpdate]] = {}
    for update in scan.updates:
        updates.setdefault(update.name, []).append(update)
    findings: list[PatchFinding] = []
    seen: set[tuple[str, str]] = set()
    for package in scan.installed:
        if (package.name, package.arch) in seen:
            continue
        seen.add((package.name, package.arch))
        finding = host.package(
            package.name, package.arch, package.version, _take_update(updates, package.name, package.arch)
        )
        if finding is not None:
            findings.append(finding)
    for rest in updates.values():  # updates of packages the scan did not list as installed
        for update in rest:
            if (update.name, update.arch) in seen:
                continue
            seen.add((update.name, update.arch))
            finding = host.package(update.name, update.arch, update.installed_version, update)
            if finding is not None:
                findings.append(finding)
    installed_names = {p.name for p in scan.installed} | {u.name for u in scan.updates if u.installed_version}
    for pattern in baseline.approved:
        if not pattern.is_literal or pattern.name in installed_names:
            continue
        if any(pattern.matches_update(u) for u in scan.updates):
            continue
        if any(
            not r.version and (r.matches_package(pattern.name, "") or r.matches_id(pattern.name))
            for r in baseline.rejected
        ):
            continue  # approved and rejected is rejected: not an approved patch to report
        findings.append(
            host.finding(
                pattern.name,
                "",
                PatchState.NOT_APPLICABLE,
                baseline.compliance_level,
                detail=f"approved by {pattern.text!r}, but nothing on the host is or would be that",
            )
        )
    findings.sort(key=lambda f: (f.name, f.arch, f.state.value))
    return findings


def pending_approval(
    scan: PatchScan, baseline: Baseline, now: datetime, *, first_seen: FirstSeen | None = None
) -> list[tuple[AvailableUpdate, Decision]]:
    """Offered updates the baseline neither approves nor rejects (yet), with why: these are not
    findings (AWS reports their count as AvailableSecurityUpdateCount), but worth showing, since a
    host can look compliant while security updates wait for approval."""
    out = []
    for update in scan.updates:
        decision = decide(update, baseline, now, first_seen=first_seen)
        if not decision.approved and not decision.rejected:
            out.append((update, decision))
    return out


def summarize_pending(
    scan: PatchScan, baseline: Baseline, now: datetime, *, first_seen: FirstSeen | None = None
) -> PendingApproval:
    """:func:`pending_approval` as the report keeps it: each waiting update with the date a rule
    approves it (``Decision.approvable_at``; None when no rule will) and the decision's reason.

    Kept beside the host's summary, so that "compliant" is shown with what is still waiting and
    when it will be approved (docs/patching.md#pending-approval).
    """
    return PendingApproval(
        tuple(
            PendingUpdate(
                name=update.name,
                candidate_version=update.candidate_version,
                installed_version=update.installed_version,
                arch=update.arch,
                classification=update.classification,
                severity=update.severity,
                kb=update.kb,
                advisory_ids=update.advisory_ids,
                approved_at=decision.approvable_at,
                reason=decision.reason,
            )
            for update, decision in pending_approval(scan, baseline, now, first_seen=first_seen)
        )
    )


def summarize(findings: Iterable[PatchFinding], *, host_id: str | None = None) -> HostCompliance:
    """Counts per state, missing patches per severity, non-compliant ones per compliance level.

    The host is compliant when no finding is in a non-compliant state (INSTALLED, INSTALLED_OTHER
    and NOT_APPLICABLE are fine). An empty list is compliant.
    """
    counts = dict.fromkeys(PatchState, 0)
    missing = dict.fromkeys(Severity, 0)
    levels = dict.fromkeys(ComplianceLevel, 0)
    security = 0
    hosts = set()
    for f in findings:
        hosts.add(f.host_id)
        counts[f.state] += 1
        if f.state is PatchState.MISSING:
            missing[f.severity] += 1
        if f.state.non_compliant:
            levels[f.compliance_level] += 1
            security += f.classification is Classification.SECURITY
    if host_id is None:
        if len(hosts) > 1:
            raise InvalidInput(f"findings of several hosts: {', '.join(sorted(hosts))}", "summarize one host at a time")
        host_id = next(iter(hosts), "")
    non_compliant = [level for level, n in levels.items() if n]
    return HostCompliance(
        host_id=host_id,
        compliant=not non_compliant,
        counts=counts,
        missing_by_severity=missing,
        non_compliant_by_level=levels,
        security_non_compliant=security,
        highest_level=max(non_compliant) if non_compliant else None,
    )


# --------------------------------------------------------------------------------------------------
# Patch groups and defaults


@dataclass(frozen=True)
class BaselineChoice:
    baseline: Baseline
    patch_group: str = ""  # "" when the OS family's default applies


def default_baselines(baselines: Iterable[Baseline]) -> dict[str, Baseline]:
    """The default baseline of each OS family: the one marked ``is_default``, else the built-in one.

    Raises:
        Conflict: two baselines of one OS family are both marked default.
    """
    chosen: dict[str, Baseline] = {}
    for b in baselines:
        if not b.is_default:
            continue
        if (other := chosen.get(b.os_family)) is not None and other.name != b.name:
            raise Conflict(
                f"baselines {other.name!r} and {b.name!r} are both the default for {b.os_family}",
                "mark only one baseline per OS family as the default",
            )
        chosen[b.os_family] = b
    return {family: chosen.get(family, BUILTIN_BASELINES[family]) for family in OS_FAMILIES}


def baseline_for_host(
    tags: Mapping[str, str],
    os_family: str,
    assignments: Sequence[BaselineAssignment] = (),
    defaults: Mapping[str, Baseline] | None = None,
) -> BaselineChoice:
    """The baseline a host uses: its patch group's, else its OS family's default.

    Of the assignments for the host's OS family whose selector matches its *tags*, the one with the
    lowest priority wins (AWS allows one patch group per instance; selectors can overlap, so we
    rank them). *tags* are the operator-set ones: patch group selectors never name inventory facts
    (``BaselineAssignment`` refuses them, so none are passed here); the reported OS family picks the
    family. Two matching assignments at the same priority with different baselines are an
    error, never a guess. Without a match: ``defaults[os_family]``, else the built-in baseline.

    Raises:
        Conflict: the best matching assignments tie.
        NotFound: no baseline exists for this OS family.
    """
    matching = sorted(
        (a for a in assignments if a.os_family == os_family and a.selector.matches(tags)), key=lambda a: a.priority
    )
    if matching:
        best = matching[0]
        for other in matching[1:]:
            if other.priority == best.priority and other.baseline.name != best.baseline.name:
                raise Conflict(
                    f"patch groups {best.patch_group!r} and {other.patch_group!r} both match the host at priority "
                    f"{best.priority}, with different baselines",
                    "give the patch groups different priorities, or make their selectors exclusive",
                )
        return BaselineChoice(best.baseline, best.patch_group)
    baseline = (defaults or {}).get(os_family) or BUILTIN_BASELINES.get(os_family)
    if baseline is None:
        raise NotFound(
            f"no patch baseline for OS family {os_family!r}",
            "patching supports " + ", ".join(OS_FAMILIES) + " hosts",
        )
    return BaselineChoice(baseline)


# --------------------------------------------------------------------------------------------------
# Snapshots


def snapshot(
    baseline: Baseline,
    scans: Iterable[PatchScan | Mapping[str, object]],
    now: datetime,
    *,
    first_seen: FirstSeen | None = None,
) -> ApprovedSnapshot:
    """Fix the approved set for one install operation: every installable approved update any of
    *scans* offers, at its exact candidate version, decided at *now*.

    Updates blocked by a rejected dependency (rejected action ``block``) are left out. Hosts
    install only from this set (:meth:`ApprovedSnapshot.for_host`), so all hosts of one operation
    get the same decisions, even if the repositories or the clock move on during the operation.

    Raises:
        InvalidInput: a scan is malformed or of another OS family than the baseline.
    """
    patches: set[ApprovedPatch] = set()
    for raw in scans:
        scan = raw if isinstance(raw, PatchScan) else PatchScan.from_dict(raw)
        if scan.os_family and scan.os_family != baseline.os_family:
            raise InvalidInput(
                f"host {scan.host_id or '?'} reports os_family {scan.os_family!r}; baseline {baseline.name!r} "
                f"is for {baseline.os_family}",
                "take one snapshot per baseline, with the scans of the hosts that use it",
            )
        for update in scan.updates:
            decision = decide(update, baseline, now, first_seen=first_seen)
            if decision.installable:
                patches.add(
                    ApprovedPatch(
                        name=update.name,
                        arch=update.arch,
                        version=update.candidate_version,
                        classification=update.classification,
                        severity=update.severity,
                        compliance_level=decision.compliance_level,
                        kb=update.kb,
                    )
                )
    return ApprovedSnapshot(baseline=baseline, evaluated_at=now, patches=tuple(patches))
