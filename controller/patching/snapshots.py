"""The approved set fixed at the start of an install operation (AWS "patch baseline snapshot")."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fleetops.common.baselines import Baseline
from fleetops.common.errors import InvalidInput
from fleetops.common.patch_report import PatchScan
from fleetops.common.patching import Classification, ComplianceLevel, Severity, iso, parse_time, utc


@dataclass(frozen=True, order=True)
class ApprovedPatch:
    """One (package, architecture, version) a snapshot approves for installation."""

    name: str
    arch: str
    version: str
    classification: Classification = field(default=Classification.OTHER, compare=False)
    severity: Severity = field(default=Severity.UNSPECIFIED, compare=False)
    compliance_level: ComplianceLevel = field(default=ComplianceLevel.UNSPECIFIED, compare=False)
    kb: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arch": self.arch,
            "version": self.version,
            "classification": self.classification.value,
            "severity": self.severity.value,
            "compliance_level": self.compliance_level.value,
            "kb": self.kb,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ApprovedPatch:
        return cls(
            name=d["name"],
            arch=d.get("arch", ""),
            version=d["version"],
            classification=Classification.parse(d.get("classification", "other")),
            severity=Severity.parse(d.get("severity", "unspecified")),
            compliance_level=ComplianceLevel.parse(d.get("compliance_level", "unspecified")),
            kb=d.get("kb", ""),
        )


@dataclass(frozen=True)
class ApprovedSnapshot:
    """The approved set fixed at the start of an install operation (AWS "patch baseline snapshot").

    Holds a copy of the baseline, the evaluation time and the exact (name, arch, version) triples
    approved then, so every host of one operation installs from the same set however long the
    operation takes and whatever the repositories publish meanwhile. Immutable: the patches are a
    sorted tuple, the baseline a frozen copy.
    """

    baseline: Baseline
    evaluated_at: datetime
    patches: tuple[ApprovedPatch, ...] = ()
    _index: frozenset[tuple[str, str, str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "evaluated_at", utc(self.evaluated_at))
        object.__setattr__(self, "patches", tuple(sorted(set(self.patches))))
        object.__setattr__(self, "_index", frozenset((p.name, p.arch, p.version) for p in self.patches))

    def approves(self, name: str, version: str, arch: str = "") -> bool:
        """Whether *name* at exactly *version* (and *arch*, when the snapshot records one) is in the set."""
        return (name, arch, version) in self._index or (name, "", version) in self._index

    def for_host(self, scan: PatchScan) -> tuple[ApprovedPatch, ...]:
        """The patches of this set that the host's scan offers at exactly the approved version."""
        wanted = {(u.name, u.arch, u.candidate_version) for u in scan.updates}
        wanted |= {(n, "", v) for n, _a, v in wanted}
        return tuple(p for p in self.patches if (p.name, p.arch, p.version) in wanted)

    def digest(self) -> str:
        """Identifies this snapshot's content (baseline, time, set)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline.to_dict(),
            "baseline_digest": self.baseline.digest(),
            "evaluated_at": iso(self.evaluated_at),
            "patches": [p.to_dict() for p in self.patches],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ApprovedSnapshot:
        baseline = Baseline.from_dict(d["baseline"])
        if d.get("baseline_digest") not in (None, baseline.digest()):
            raise InvalidInput(
                f"snapshot of baseline {baseline.name!r} does not match its recorded digest",
                "the stored snapshot was altered; take a new one",
            )
        evaluated_at = parse_time(d.get("evaluated_at"), "evaluated_at")
        if evaluated_at is None:
            raise InvalidInput("the snapshot has no evaluated_at", "a snapshot records when it was evaluated")
        return cls(baseline, evaluated_at, tuple(ApprovedPatch.from_dict(p) for p in d.get("patches", ())))
