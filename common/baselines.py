"""The baseline document: which patches hosts of one OS family should have (AWS patch baseline).

Operators write it as YAML/JSON (``opsctl patch baseline create -f``), the controller stores it
as JSON and evaluates scans against it; both parse it with :meth:`Baseline.from_dict`, which
refuses unknown keys, so ``opsctl`` refuses a bad file before sending it and the controller
refuses it again (never trusting the client). No gRPC in here.

``PatchPattern``  one entry of an approved or rejected list (``NAME_GLOB[=VERSION_GLOB]`` or an id)
``ApprovalRule``  auto-approval by classification and severity, some days after release
``Baseline``      the document: rules, approved/rejected lists, rejected action, compliance level
"""

from __future__ import annotations

import enum
import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fleetops.common.errors import InvalidInput
from fleetops.common.patching import Classification, ComplianceLevel, RejectedAction, Severity

#: AWS Patch Manager's range for ApproveAfterDays.
MAX_APPROVE_AFTER_DAYS = 360
#: The OS families an agent reports in its inventory (``fleetops.agent.inventory.os_family``).
OS_FAMILIES = ("linux", "windows", "darwin")
MAX_BASELINE_NAME = 128
MAX_DESCRIPTION = 1024
MAX_PATTERNS = 1000
MAX_PATTERN_LENGTH = 256


class OfferedUpdate(Protocol):
    """What a pattern matches an update by (a scan's ``AvailableUpdate`` has these)."""

    @property
    def name(self) -> str: ...
    @property
    def candidate_version(self) -> str: ...
    @property
    def kb(self) -> str: ...
    @property
    def advisory_ids(self) -> tuple[str, ...]: ...


# --------------------------------------------------------------------------------------------------
# Patch patterns (approved and rejected lists)

_GLOB_CHARS = frozenset("*?[")
_NAME_CHARS = re.compile(r"[A-Za-z0-9._+:~*?\[\]!^-]+")
_PATTERN_HINT = (
    "give a package name or glob (openssl, openssl*, libssl[0-9]*), NAME=VERSION with a version glob "
    "(openssl=3.0.*), or an update id (KB5034441, RHSA-2024:1234, USN-6543-1)"
)


def _check_glob(text: str, part: str, where: str, whole: str) -> None:
    if not text:
        raise InvalidInput(f"bad patch pattern {whole!r} in {where}: the {part} is empty", _PATTERN_HINT)
    if not _NAME_CHARS.fullmatch(text):
        bad = next(ch for ch in text if not _NAME_CHARS.fullmatch(ch))
        raise InvalidInput(f"bad patch pattern {whole!r} in {where}: {bad!r} is not allowed", _PATTERN_HINT)
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "]":
            raise InvalidInput(f"bad patch pattern {whole!r} in {where}: ']' without '['", _PATTERN_HINT)
        if ch == "[":
            j = i + 1
            if j < len(text) and text[j] in "!^":
                j += 1
            close = text.find("]", j)
            if close < 0:
                raise InvalidInput(f"bad patch pattern {whole!r} in {where}: unclosed '['", _PATTERN_HINT)
            # No package name or id contains ']', so unlike fnmatch a leading ']' does not join the class.
            if close == j or "[" in text[j:close]:
                raise InvalidInput(f"bad patch pattern {whole!r} in {where}: bad character class", _PATTERN_HINT)
            i = close + 1
            continue
        if ch in "!^":
            raise InvalidInput(f"bad patch pattern {whole!r} in {where}: {ch!r} outside '[...]'", _PATTERN_HINT)
        i += 1


@dataclass(frozen=True)
class PatchPattern:
    """One entry of an approved or rejected list: ``NAME_GLOB`` or ``NAME_GLOB=VERSION_GLOB``.

    Globs are :mod:`fnmatch` globs, matched case-sensitively against package names (``*``, ``?``,
    ``[abc]``, ``[!abc]``). A pattern without ``=`` also matches an update whose KB number or one
    of whose advisory ids (CVE, RHSA, USN...) it matches, case-insensitively. With ``=VERSION``
    it matches a package at a version the version glob matches: the candidate version of an
    update, the installed version of an installed package.
    """

    text: str
    name: str
    version: str = ""

    @classmethod
    def parse(cls, text: Any, where: str = "a patch list") -> PatchPattern:
        if not isinstance(text, str):
            raise InvalidInput(f"bad patch pattern {text!r} in {where}: not a string", _PATTERN_HINT)
        t = text.strip()
        if not t:
            raise InvalidInput(f"empty patch pattern in {where}", _PATTERN_HINT)
        if len(t) > MAX_PATTERN_LENGTH:
            raise InvalidInput(
                f"patch pattern {t[:40]!r}... in {where} is longer than {MAX_PATTERN_LENGTH}", _PATTERN_HINT
            )
        name, eq, version = t.partition("=")
        if "=" in version:
            raise InvalidInput(f"bad patch pattern {t!r} in {where}: more than one '='", _PATTERN_HINT)
        _check_glob(name, "name", where, t)
        if eq:
            _check_glob(version, "version", where, t)
        return cls(t, name, version)

    @property
    def is_literal(self) -> bool:
        """A plain name (or id) without wildcards or version: something a host can lack."""
        return not self.version and not (_GLOB_CHARS & set(self.name))

    def matches_package(self, name: str, version: str) -> bool:
        """Whether the package *name* at *version* is what this pattern names."""
        if not fnmatch.fnmatchcase(name, self.name):
            return False
        return not self.version or fnmatch.fnmatchcase(version, self.version)

    def matches_id(self, ident: str) -> bool:
        """Whether the update id (KB number, CVE, advisory) *ident* is what this pattern names."""
        return bool(ident) and not self.version and fnmatch.fnmatchcase(ident.upper(), self.name.upper())

    def matches_update(self, update: OfferedUpdate) -> bool:
        """Whether the update (at its candidate version) is what this pattern names."""
        if self.matches_package(update.name, update.candidate_version):
            return True
        return any(self.matches_id(i) for i in (update.kb, *update.advisory_ids))


def parse_patterns(items: Any, where: str) -> tuple[PatchPattern, ...]:
    """A list of pattern texts -> patterns; refuses non-lists, bad globs and duplicates."""
    if items is None:
        return ()
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise InvalidInput(f"{where} must be a list of patterns, got {type(items).__name__}", _PATTERN_HINT)
    patterns: list[PatchPattern] = []
    seen: set[str] = set()
    for item in items:
        p = item if isinstance(item, PatchPattern) else PatchPattern.parse(item, where)
        if p.text in seen:
            raise InvalidInput(f"{p.text!r} is given twice in {where}", "list each pattern once")
        seen.add(p.text)
        patterns.append(p)
    if len(patterns) > MAX_PATTERNS:
        raise InvalidInput(f"{where} has {len(patterns)} patterns", f"keep it to {MAX_PATTERNS}; use globs")
    return tuple(patterns)


# --------------------------------------------------------------------------------------------------
# Baselines


def _enum_set(items: Any, parse: Any, what: str) -> frozenset[Any]:
    if items is None:
        return frozenset()
    if isinstance(items, str) or isinstance(items, enum.Enum):
        items = [items]
    if not isinstance(items, Iterable):
        raise InvalidInput(f"{what} must be a list, got {type(items).__name__}", f"e.g. {what}: [security]")
    singular = {"severities": "severity", "classifications": "classification"}.get(what, what)
    return frozenset(parse(item, singular) for item in items)


def _check_days(value: Any) -> int:
    hint = f"approve_after_days is a whole number of days from 0 to {MAX_APPROVE_AFTER_DAYS} (as in AWS)"
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"approve_after_days must be a whole number, got {value!r}", hint)
    if not 0 <= value <= MAX_APPROVE_AFTER_DAYS:
        raise InvalidInput(f"approve_after_days {value} is out of range", hint)
    return value


@dataclass(frozen=True)
class ApprovalRule:
    """Auto-approval: updates of these classifications and severities, this many days after release.

    An empty ``classifications`` or ``severities`` means "any". ``compliance_level`` is the level of
    the patches this rule approves; ``None`` takes the baseline's.
    """

    classifications: frozenset[Classification] = frozenset()
    severities: frozenset[Severity] = frozenset()
    approve_after_days: int = 7
    compliance_level: ComplianceLevel | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "classifications", _enum_set(self.classifications, Classification.parse, "classifications")
        )
        object.__setattr__(self, "severities", _enum_set(self.severities, Severity.parse, "severities"))
        object.__setattr__(self, "approve_after_days", _check_days(self.approve_after_days))
        if self.compliance_level is not None:
            object.__setattr__(
                self, "compliance_level", ComplianceLevel.parse(self.compliance_level, "compliance_level")
            )

    def matches(self, classification: Classification, severity: Severity) -> bool:
        """Whether the filters let an update of this classification and severity through (dates aside)."""
        return (not self.classifications or classification in self.classifications) and (
            not self.severities or severity in self.severities
        )

    def describe(self) -> str:
        classes = ",".join(c.value for c in sorted(self.classifications)) or "any classification"
        sevs = ",".join(s.value for s in sorted(self.severities, reverse=True)) or "any severity"
        return f"{classes} / {sevs}, after {self.approve_after_days} days"

    def to_dict(self) -> dict[str, Any]:
        return {
            "classifications": [c.value for c in sorted(self.classifications, reverse=True)],
            "severities": [s.value for s in sorted(self.severities, reverse=True)],
            "approve_after_days": self.approve_after_days,
            "compliance_level": None if self.compliance_level is None else self.compliance_level.value,
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "rule") -> ApprovalRule:
        _check_keys(d, _RULE_KEYS, where)
        return cls(
            classifications=d.get("classifications"),
            severities=d.get("severities"),
            approve_after_days=d.get("approve_after_days", 7),
            compliance_level=d.get("compliance_level"),
        )


_RULE_KEYS = ("classifications", "severities", "approve_after_days", "compliance_level")
#: The fields of a baseline document.
BASELINE_KEYS = (
    "name",
    "os_family",
    "description",
    "rules",
    "approved_patches",
    "rejected_patches",
    "rejected_action",
    "compliance_level",
    "is_default",
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _check_keys(d: Any, known: tuple[str, ...], where: str) -> None:
    if not isinstance(d, Mapping):
        raise InvalidInput(f"{where} must be a mapping, got {type(d).__name__}", "see docs/patching.md for the format")
    unknown = sorted(str(k) for k in d if k not in known)
    if unknown:
        raise InvalidInput(f"unknown key(s) in {where}: {', '.join(unknown)}", "known keys: " + ", ".join(known))


def validate_baseline_name(name: Any) -> str:
    hint = f"1-{MAX_BASELINE_NAME} letters, digits, '.', '_' or '-', starting with a letter or digit, e.g. prod-linux"
    if not isinstance(name, str) or not name:
        raise InvalidInput("a baseline needs a name", hint)
    if len(name) > MAX_BASELINE_NAME or not _NAME.fullmatch(name):
        raise InvalidInput(f"bad baseline name {name!r}", hint)
    return name


def validate_os_family(os_family: Any) -> str:
    if os_family not in OS_FAMILIES:
        raise InvalidInput(f"unknown os_family {os_family!r}", "use one of: " + ", ".join(OS_FAMILIES))
    return str(os_family)


@dataclass(frozen=True)
class Baseline:
    """Which patches hosts of one OS family should have (AWS patch baseline).

    ``approved_patches`` are approved whatever the rules say, at once; ``rejected_patches`` are
    never approved, whatever the rules and the approved list say (a patch both approved and
    rejected is rejected). ``compliance_level`` is the level of explicitly approved patches, of
    rules without a level of their own and of installed rejected packages.
    """

    name: str
    os_family: str
    description: str = ""
    rules: tuple[ApprovalRule, ...] = ()
    approved_patches: tuple[str, ...] = ()
    rejected_patches: tuple[str, ...] = ()
    rejected_action: RejectedAction = RejectedAction.ALLOW_AS_DEPENDENCY
    compliance_level: ComplianceLevel = ComplianceLevel.UNSPECIFIED
    is_default: bool = False
    approved: tuple[PatchPattern, ...] = field(init=False, repr=False, compare=False)
    rejected: tuple[PatchPattern, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_baseline_name(self.name)
        validate_os_family(self.os_family)
        if not isinstance(self.description, str) or len(self.description) > MAX_DESCRIPTION:
            raise InvalidInput(
                f"the description of baseline {self.name!r} is too long", f"keep it under {MAX_DESCRIPTION}"
            )
        if isinstance(self.rules, (str, bytes, Mapping)) or not isinstance(self.rules, Iterable):
            raise InvalidInput("rules must be a list of approval rules", "rules: [{classifications: [security]}]")
        rules = []
        for i, rule in enumerate(self.rules):
            rules.append(rule if isinstance(rule, ApprovalRule) else ApprovalRule.from_dict(rule, f"rules[{i}]"))
        object.__setattr__(self, "rules", tuple(rules))
        approved = parse_patterns(self.approved_patches, "approved_patches")
        rejected = parse_patterns(self.rejected_patches, "rejected_patches")
        object.__setattr__(self, "approved", approved)
        object.__setattr__(self, "rejected", rejected)
        object.__setattr__(self, "approved_patches", tuple(p.text for p in approved))
        object.__setattr__(self, "rejected_patches", tuple(p.text for p in rejected))
        object.__setattr__(self, "rejected_action", RejectedAction.parse(self.rejected_action))
        object.__setattr__(self, "compliance_level", ComplianceLevel.parse(self.compliance_level, "compliance_level"))
        if not isinstance(self.is_default, bool):
            raise InvalidInput(f"is_default must be true or false, got {self.is_default!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "os_family": self.os_family,
            "description": self.description,
            "rules": [r.to_dict() for r in self.rules],
            "approved_patches": list(self.approved_patches),
            "rejected_patches": list(self.rejected_patches),
            "rejected_action": self.rejected_action.value,
            "compliance_level": self.compliance_level.value,
            "is_default": self.is_default,
        }

    @classmethod
    def from_dict(cls, d: Any) -> Baseline:
        """The inverse of :meth:`to_dict`, also for operators' files: unknown keys are refused."""
        _check_keys(d, BASELINE_KEYS, "baseline")
        for key in ("name", "os_family"):
            if key not in d:
                raise InvalidInput(f"the baseline has no {key}", "a baseline needs at least name and os_family")
        return cls(
            name=d["name"],
            os_family=d["os_family"],
            description=d.get("description") or "",
            rules=d.get("rules") or (),
            approved_patches=d.get("approved_patches") or (),
            rejected_patches=d.get("rejected_patches") or (),
            rejected_action=d.get("rejected_action") or RejectedAction.ALLOW_AS_DEPENDENCY,
            compliance_level=d.get("compliance_level") or ComplianceLevel.UNSPECIFIED,
            is_default=d.get("is_default", False),
        )

    def digest(self) -> str:
        """SHA-256 of the canonical JSON: identifies this exact content (a snapshot records it)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()
