"""What the controller concludes from a host's scan: findings, compliance summaries, pending approvals.

Kept as JSON in the host's report row (``to_dict``/``from_dict`` are that storage form);
:mod:`fleetops.controller.patching.evaluation` makes them, :mod:`fleetops.controller.patching.store`
reads them back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fleetops.common.patching import (
    Classification,
    ComplianceLevel,
    PatchState,
    Severity,
    iso,
    parse_time,
)


@dataclass(frozen=True)
class PatchFinding:
    """The state of one patch (package, or update id) on one host, from one scan."""

    host_id: str
    name: str
    state: PatchState
    installed_version: str = ""
    candidate_version: str = ""
    arch: str = ""
    classification: Classification = Classification.OTHER
    severity: Severity = Severity.UNSPECIFIED
    compliance_level: ComplianceLevel = ComplianceLevel.UNSPECIFIED
    kb: str = ""
    advisory_ids: tuple[str, ...] = ()
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "host_id": self.host_id,
            "name": self.name,
            "arch": self.arch,
            "state": self.state.value,
            "installed_version": self.installed_version,
            "candidate_version": self.candidate_version,
            "classification": self.classification.value,
            "severity": self.severity.value,
            "compliance_level": self.compliance_level.value,
            "kb": self.kb,
            "advisory_ids": list(self.advisory_ids),
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PatchFinding:
        return cls(
            host_id=d.get("host_id", ""),
            name=d["name"],
            arch=d.get("arch", ""),
            state=PatchState.parse(d["state"]),
            installed_version=d.get("installed_version", ""),
            candidate_version=d.get("candidate_version", ""),
            classification=Classification.parse(d.get("classification", "other")),
            severity=Severity.parse(d.get("severity", "unspecified")),
            compliance_level=ComplianceLevel.parse(d.get("compliance_level", "unspecified")),
            kb=d.get("kb", ""),
            advisory_ids=tuple(d.get("advisory_ids", ())),
            detail=d.get("detail", ""),
        )


@dataclass(frozen=True)
class HostCompliance:
    """One host's patch compliance from one scan (AWS ``InstancePatchState``); kept per scan as history.

    ``counts`` has every state; ``missing_by_severity`` counts MISSING patches by vendor severity;
    ``non_compliant_by_level`` counts every non-compliant finding by compliance level;
    ``highest_level`` is the worst level among them (None when compliant).
    """

    host_id: str
    compliant: bool
    counts: Mapping[PatchState, int]
    missing_by_severity: Mapping[Severity, int]
    non_compliant_by_level: Mapping[ComplianceLevel, int]
    security_non_compliant: int = 0
    highest_level: ComplianceLevel | None = None

    def count(self, state: PatchState) -> int:
        return self.counts.get(state, 0)

    @property
    def non_compliant_count(self) -> int:
        return sum(n for s, n in self.counts.items() if s.non_compliant)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host_id": self.host_id,
            "compliant": self.compliant,
            "counts": {s.value: self.counts.get(s, 0) for s in PatchState},
            "missing_by_severity": {s.value: self.missing_by_severity.get(s, 0) for s in Severity},
            "non_compliant_by_level": {c.value: self.non_compliant_by_level.get(c, 0) for c in ComplianceLevel},
            "security_non_compliant": self.security_non_compliant,
            "highest_level": None if self.highest_level is None else self.highest_level.value,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HostCompliance:
        level = d.get("highest_level")
        return cls(
            host_id=d.get("host_id", ""),
            compliant=bool(d["compliant"]),
            counts={PatchState.parse(k): int(v) for k, v in d.get("counts", {}).items()},
            missing_by_severity={Severity.parse(k): int(v) for k, v in d.get("missing_by_severity", {}).items()},
            non_compliant_by_level={
                ComplianceLevel.parse(k): int(v) for k, v in d.get("non_compliant_by_level", {}).items()
            },
            security_non_compliant=int(d.get("security_non_compliant", 0)),
            highest_level=None if level is None else ComplianceLevel.parse(level),
        )


@dataclass(frozen=True)
class PendingUpdate:
    """An offered update the baseline neither approves nor rejects at the evaluation time.

    ``approved_at`` is when an approve-after-days rule approves it (``Decision.approvable_at``);
    None when no rule will: none matches it, or its release date is unknown. ``reason`` is the
    decision's own words (which rule waits, or that nothing matches).
    """

    name: str
    candidate_version: str
    installed_version: str = ""
    arch: str = ""
    classification: Classification = Classification.OTHER
    severity: Severity = Severity.UNSPECIFIED
    kb: str = ""
    advisory_ids: tuple[str, ...] = ()
    approved_at: datetime | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "classification", Classification.parse(self.classification))
        object.__setattr__(self, "severity", Severity.parse(self.severity))
        object.__setattr__(self, "advisory_ids", tuple(self.advisory_ids))
        object.__setattr__(self, "approved_at", parse_time(self.approved_at, "approved_at"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arch": self.arch,
            "installed_version": self.installed_version,
            "candidate_version": self.candidate_version,
            "classification": self.classification.value,
            "severity": self.severity.value,
            "kb": self.kb,
            "advisory_ids": list(self.advisory_ids),
            "approved_at": iso(self.approved_at),
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PendingUpdate:
        return cls(
            name=d["name"],
            arch=d.get("arch", ""),
            installed_version=d.get("installed_version", ""),
            candidate_version=d.get("candidate_version", ""),
            classification=Classification.parse(d.get("classification", "other")),
            severity=Severity.parse(d.get("severity", "unspecified")),
            kb=d.get("kb", ""),
            advisory_ids=tuple(d.get("advisory_ids", ())),
            approved_at=d.get("approved_at"),
            reason=d.get("reason", ""),
        )


@dataclass(frozen=True)
class PendingApproval:
    """What a host's scan offers that its baseline does not approve yet: not findings (nothing
    approved is missing), but the reason a compliant host may still be waiting for updates.

    ``updates`` are sorted by approval date (dated first, the earliest first), then the most
    urgent first (classification, then severity), then by name.
    """

    updates: tuple[PendingUpdate, ...] = ()

    def __post_init__(self) -> None:
        ordered = sorted(
            self.updates,
            key=lambda u: (
                u.approved_at is None,
                u.approved_at or _EPOCH,
                -u.classification.rank,
                -u.severity.rank,
                u.name,
                u.arch,
            ),
        )
        object.__setattr__(self, "updates", tuple(ordered))

    @property
    def count(self) -> int:
        return len(self.updates)

    @property
    def undated(self) -> int:
        """How many no rule will approve (as the baseline and the known dates stand)."""
        return sum(1 for u in self.updates if u.approved_at is None)

    @property
    def next_approval_at(self) -> datetime | None:
        """The earliest date a rule approves one of them (None when none has a date)."""
        return self.updates[0].approved_at if self.updates else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "undated": self.undated,
            "next_approval_at": iso(self.next_approval_at),
            "updates": [u.to_dict() for u in self.updates],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PendingApproval:
        return cls(tuple(PendingUpdate.from_dict(u) for u in d.get("updates", ())))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
