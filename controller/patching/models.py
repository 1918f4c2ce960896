"""Domain objects of patching: baselines, what an agent's scan reports, findings and snapshots.

Everything here is plain data with validation; the decisions (what is approved, which state a
patch is in, which baseline a host uses) live in :mod:`fleetops.controller.patching.evaluation`.
The model follows AWS Systems Manager Patch Manager; docs/patching.md says where and how we differ.

Every constructor validates and normalises its input (lists become tuples, enum names become
enums), so an object that exists is valid; invalid input raises :class:`InvalidInput` with a hint.
Baselines, scans, findings, summaries and snapshots round-trip through plain JSON data with
``to_dict()``/``from_dict()``: baselines are stored as JSON and read from operators' YAML/JSON
files (``from_dict`` refuses unknown keys there), scans come from agents (``from_dict`` tolerates
unknown keys and values there, so a newer agent does not break an older controller).
"""

from __future__ import annotations

import enum
import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from fleetops.common.errors import InvalidInput
from fleetops.common.selectors import Selector

#: AWS Patch Manager's range for ApproveAfterDays.
MAX_APPROVE_AFTER_DAYS = 360
#: The OS families an agent reports in its inventory (``fleetops.agent.inventory.os_family``).
OS_FAMILIES = ("linux", "windows", "darwin")
MAX_BASELINE_NAME = 128
MAX_DESCRIPTION = 1024
MAX_PATTERNS = 1000
MAX_PATTERN_LENGTH = 256

_E = TypeVar("_E", bound="_Ranked")


def utc(moment: datetime) -> datetime:
    """*moment* as an aware UTC datetime; a naive one is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else utc(moment).isoformat().replace("+00:00", "Z")


def parse_time(value: Any, what: str) -> datetime | None:
    """An ISO 8601 text (a date alone means its midnight UTC), epoch seconds, or None/"" -> aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    elif isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return parse_time(date.fromisoformat(text), what)
            return utc(datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00")))
        except ValueError:
            pass
    raise InvalidInput(
        f"{what} must be an ISO 8601 time, got {value!r}", "write times like 2025-11-09T18:00:00Z or 2025-11-09"
    )


# --------------------------------------------------------------------------------------------------
# Enums


#: Other words accepted for members (RHSA/MSRC say important/moderate; many tools say high/medium).
_ALIASES: Mapping[str, Mapping[str, str]] = {
    "Severity": {
        "": "unspecified",
        "none": "unspecified",
        "unknown": "unspecified",
        "medium": "moderate",
        "high": "important",
    },
}


class _Ranked(enum.Enum):
    """An enum whose members are ordered by declaration, lowest first, and parse case-insensitively."""

    @property
    def rank(self) -> int:
        return list(type(self)).index(self)

    def _ranks(self, other: object) -> tuple[int, int] | None:
        if not isinstance(other, _Ranked) or type(other) is not type(self):
            return None
        return self.rank, other.rank

    def __lt__(self, other: object) -> bool:
        ranks = self._ranks(other)
        return NotImplemented if ranks is None else ranks[0] < ranks[1]

    def __le__(self, other: object) -> bool:
        ranks = self._ranks(other)
        return NotImplemented if ranks is None else ranks[0] <= ranks[1]

    def __gt__(self, other: object) -> bool:
        ranks = self._ranks(other)
        return NotImplemented if ranks is None else ranks[0] > ranks[1]

    def __ge__(self, other: object) -> bool:
        ranks = self._ranks(other)
        return NotImplemented if ranks is None else ranks[0] >= ranks[1]

    @classmethod
    def parse(cls: type[_E], text: Any, what: str = "") -> _E:
        """The member named *text* (case-insensitive; a few aliases), else :class:`InvalidInput`."""
        if isinstance(text, cls):
            return text
        what = what or cls.__name__.lower()
        key = text.strip().lower().replace("-", "_") if isinstance(text, str) else None
        aliases = _ALIASES.get(cls.__name__, {})
        if key is not None:
            key = aliases.get(key, key)
            for member in cls:
                if member.value == key:
                    return member
        choices = ", ".join(m.value for m in cls)
        raise InvalidInput(f"unknown {what} {text!r}", f"use one of: {choices}")


class Classification(_Ranked):
    """What kind of update a patch is, in one vocabulary for every package manager.

    Agents map their own words onto these (docs/patching.md has the table): RPM advisories
    ``security``/``bugfix``/``enhancement``; APT's security pocket is ``security``, other pockets
    ``bugfix``; Windows ``SecurityUpdates`` -> ``security``, ``CriticalUpdates``/``Updates``/
    ``UpdateRollups``/``ServicePacks`` -> ``bugfix``, ``FeaturePacks``/``Upgrades`` -> ``enhancement``,
    the rest ``other``. Declared from least to most urgent.
    """

    OTHER = "other"
    ENHANCEMENT = "enhancement"
    BUGFIX = "bugfix"
    SECURITY = "security"


class Severity(_Ranked):
    """The vendor's severity of a patch (RHSA/MSRC scale), lowest first: ``UNSPECIFIED < LOW < ... < CRITICAL``."""

    UNSPECIFIED = "unspecified"
    LOW = "low"
    MODERATE = "moderate"
    IMPORTANT = "important"
    CRITICAL = "critical"


class ComplianceLevel(_Ranked):
    """How bad it is that an approved patch is not in place (AWS ``ComplianceLevel``), lowest first."""

    UNSPECIFIED = "unspecified"
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class RejectedAction(enum.Enum):
    """What happens to packages on a baseline's rejected list (AWS ``RejectedPatchesAction``)."""

    #: Never installed by fleetops except when another package needs them; installed rejected
    #: packages are compliant (INSTALLED_OTHER). The default, as in AWS.
    ALLOW_AS_DEPENDENCY = "allow_as_dependency"
    #: Never installed, nor anything that needs them; installed rejected packages are INSTALLED_REJECTED.
    BLOCK = "block"

    @classmethod
    def parse(cls, text: Any) -> RejectedAction:
        if isinstance(text, cls):
            return text
        if isinstance(text, str):
            key = text.strip().lower().replace("-", "_")
            for member in cls:
                if member.value == key:
                    return member
        raise InvalidInput(f"unknown rejected_action {text!r}", "use block or allow_as_dependency")


class PatchState(enum.Enum):
    """The state of one patch on one host (AWS ``PatchComplianceDataState``)."""

    INSTALLED = "installed"
    INSTALLED_OTHER = "installed_other"
    INSTALLED_PENDING_REBOOT = "installed_pending_reboot"
    INSTALLED_REJECTED = "installed_rejected"
    MISSING = "missing"
    FAILED = "failed"
    NOT_APPLICABLE = "not_applicable"

    @property
    def compliant(self) -> bool:
        """INSTALLED and INSTALLED_OTHER. NOT_APPLICABLE is neither compliant nor non-compliant."""
        return self in (PatchState.INSTALLED, PatchState.INSTALLED_OTHER)

    @property
    def non_compliant(self) -> bool:
        """Every state but INSTALLED, INSTALLED_OTHER and NOT_APPLICABLE makes the host non-compliant."""
        return not self.compliant and self is not PatchState.NOT_APPLICABLE

    @classmethod
    def parse(cls, text: Any) -> PatchState:
        if isinstance(text, cls):
            return text
        if isinstance(text, str):
            key = text.strip().lower()
            for member in cls:
                if member.value == key or member.name.lower() == key:
                    return member
        raise InvalidInput(f"unknown patch state {text!r}", "use one of: " + ", ".join(m.value for m in cls))


class InstallStatus(enum.Enum):
    INSTALLED = "installed"
    FAILED = "failed"


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

    def matches_update(self, update: AvailableUpdate) -> bool:
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
_BASELINE_KEYS = (
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
        _check_keys(d, _BASELINE_KEYS, "baseline")
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


#: Used for an OS family when no stored baseline is its default. As AWS's predefined baselines
#: (security updates rated critical/important, seven days after release), with compliance levels set.
BUILTIN_BASELINES: Mapping[str, Baseline] = {
    "linux": Baseline(
        name="fleetops-default-linux",
        os_family="linux",
        description="Security updates rated critical or important, and bug fixes, 7 days after release.",
        rules=(
            ApprovalRule(
                classifications=frozenset({Classification.SECURITY}),
                severities=frozenset({Severity.CRITICAL, Severity.IMPORTANT}),
                approve_after_days=7,
                compliance_level=ComplianceLevel.HIGH,
            ),
            ApprovalRule(
                classifications=frozenset({Classification.BUGFIX}),
                approve_after_days=7,
                compliance_level=ComplianceLevel.MEDIUM,
            ),
        ),
        is_default=True,
    ),
    "windows": Baseline(
        name="fleetops-default-windows",
        os_family="windows",
        description="Security updates rated critical or important, 7 days after release.",
        rules=(
            ApprovalRule(
                classifications=frozenset({Classification.SECURITY}),
                severities=frozenset({Severity.CRITICAL, Severity.IMPORTANT}),
                approve_after_days=7,
                compliance_level=ComplianceLevel.HIGH,
            ),
        ),
        is_default=True,
    ),
    "darwin": Baseline(
        name="fleetops-default-darwin",
        os_family="darwin",
        description="Security updates, 7 days after release.",
        rules=(
            ApprovalRule(
                classifications=frozenset({Classification.SECURITY}),
                approve_after_days=7,
                compliance_level=ComplianceLevel.HIGH,
            ),
        ),
        is_default=True,
    ),
}


@dataclass(frozen=True)
class BaselineAssignment:
    """A patch group: hosts whose tags match ``selector`` use ``baseline`` (for its OS family).

    Where several assignments match a host, the lowest ``priority`` wins (see
    :func:`~fleetops.controller.patching.evaluation.baseline_for_host`).
    """

    patch_group: str
    selector: Selector
    baseline: Baseline
    priority: int = 100

    def __post_init__(self) -> None:
        if not isinstance(self.patch_group, str) or not _NAME.fullmatch(self.patch_group):
            raise InvalidInput(
                f"bad patch group name {self.patch_group!r}", "use letters, digits, '.', '_' or '-', e.g. web-prod"
            )
        if isinstance(self.selector, str):
            object.__setattr__(self, "selector", Selector.parse(self.selector))
        if facts := self.selector.fact_keys:  # like AWS's Patch Group tag: set by operators, never by hosts
            raise InvalidInput(
                f"patch group {self.patch_group!r} selects by {', '.join(facts)}, which hosts report themselves; "
                "a patch group selects operator-set tags only",
                "the baseline's OS family already picks hosts by the OS they report; to split a family (by version, "
                "say), tag the hosts (opsctl hosts tag HOST os-version=12) and select the tag",
            )
        if isinstance(self.priority, bool) or not isinstance(self.priority, int) or self.priority < 0:
            raise InvalidInput(
                f"bad priority {self.priority!r} for patch group {self.patch_group!r}",
                "priority is a whole number >= 0; the lowest matching one wins",
            )

    @property
    def os_family(self) -> str:
        return self.baseline.os_family


def check_assignments(assignments: Iterable[BaselineAssignment]) -> None:
    """Refuse a patch group registered twice for one OS family, or two groups of one family at one priority.

    AWS: a patch group is registered with at most one baseline per OS. Unique priorities make
    :func:`~fleetops.controller.patching.evaluation.baseline_for_host` never have to guess.
    """
    groups: dict[tuple[str, str], BaselineAssignment] = {}
    priorities: dict[tuple[str, int], BaselineAssignment] = {}
    for a in assignments:
        if (clash := groups.get((a.os_family, a.patch_group))) is not None:
            raise InvalidInput(
                f"patch group {a.patch_group!r} is registered twice for {a.os_family} "
                f"(baselines {clash.baseline.name!r} and {a.baseline.name!r})",
                "a patch group has one baseline per OS family; deregister the other first",
            )
        if (clash := priorities.get((a.os_family, a.priority))) is not None:
            raise InvalidInput(
                f"patch groups {clash.patch_group!r} and {a.patch_group!r} both have priority {a.priority} "
                f"for {a.os_family}",
                "give each patch group of an OS family its own priority (the lowest matching one wins)",
            )
        groups[(a.os_family, a.patch_group)] = a
        priorities[(a.os_family, a.priority)] = a


# --------------------------------------------------------------------------------------------------
# What an agent reports (the scan), and what came of the last install


def _get(d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any, where: str) -> Any:
    value = d.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) and kind is not bool:
        raise InvalidInput(f"scan field '{where}{key}' has the wrong type: {value!r}")
    if not isinstance(value, kind):
        raise InvalidInput(f"scan field '{where}{key}' has the wrong type: {type(value).__name__}")
    return value


def _str_list(d: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = d.get(key) or ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidInput(f"scan field '{where}{key}' must be a list of strings")
    out = []
    for item in value:
        if not isinstance(item, str):
            raise InvalidInput(f"scan field '{where}{key}' must be a list of strings, got {item!r}")
        out.append(item)
    return tuple(out)


def _lenient(parse: Any, value: Any, default: Any) -> Any:
    """Agents' words we do not know (a newer agent) become the neutral value instead of failing the scan."""
    try:
        return parse(value) if value not in (None, "") else default
    except InvalidInput:
        return default


@dataclass(frozen=True)
class InstalledPackage:
    name: str
    version: str
    arch: str = ""

    @classmethod
    def from_dict(cls, d: Any, where: str = "") -> InstalledPackage:
        if not isinstance(d, Mapping):
            raise InvalidInput(f"scan field '{where}' must be a mapping, got {type(d).__name__}")
        name = _get(d, "name", str, "", where + ".")
        if not name:
            raise InvalidInput(f"scan field '{where}.name' is empty")
        return cls(name, _get(d, "version", str, "", where + "."), _get(d, "arch", str, "", where + "."))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "arch": self.arch}


@dataclass(frozen=True)
class AvailableUpdate:
    """An update the host's package manager offers: ``name`` from ``installed_version`` to ``candidate_version``.

    ``installed_version`` is empty for a package that is not installed yet (a Windows update, a
    package the update brings in). ``release_date`` None means the repository does not say (APT).
    ``dependencies`` names packages installing this update would also install or upgrade, when the
    agent knows them (used for the rejected-patches action).
    """

    name: str
    candidate_version: str
    installed_version: str = ""
    arch: str = ""
    repository: str = ""
    classification: Classification = Classification.OTHER
    severity: Severity = Severity.UNSPECIFIED
    release_date: datetime | None = None
    advisory_ids: tuple[str, ...] = ()
    kb: str = ""
    dependencies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "classification", Classification.parse(self.classification))
        object.__setattr__(self, "severity", Severity.parse(self.severity))
        object.__setattr__(self, "release_date", parse_time(self.release_date, "release_date"))
        object.__setattr__(self, "advisory_ids", tuple(self.advisory_ids))
        object.__setattr__(self, "dependencies", tuple(self.dependencies))

    @classmethod
    def from_dict(cls, d: Any, where: str = "") -> AvailableUpdate:
        if not isinstance(d, Mapping):
            raise InvalidInput(f"scan field '{where}' must be a mapping, got {type(d).__name__}")
        w = where + "."
        name = _get(d, "name", str, "", w)
        if not name:
            raise InvalidInput(f"scan field '{w}name' is empty")
        return cls(
            name=name,
            candidate_version=_get(d, "candidate_version", str, "", w),
            installed_version=_get(d, "installed_version", str, "", w),
            arch=_get(d, "arch", str, "", w),
            repository=_get(d, "repository", str, "", w),
            classification=_lenient(Classification.parse, d.get("classification"), Classification.OTHER),
            severity=_lenient(Severity.parse, d.get("severity"), Severity.UNSPECIFIED),
            release_date=parse_time(d.get("release_date"), f"scan field '{w}release_date'"),
            advisory_ids=_str_list(d, "advisory_ids", w),
            kb=_get(d, "kb", str, "", w),
            dependencies=_str_list(d, "dependencies", w),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "installed_version": self.installed_version,
            "candidate_version": self.candidate_version,
            "arch": self.arch,
            "repository": self.repository,
            "classification": self.classification.value,
            "severity": self.severity.value,
            "release_date": _iso(self.release_date),
            "advisory_ids": list(self.advisory_ids),
            "kb": self.kb,
            "dependencies": list(self.dependencies),
        }


@dataclass(frozen=True)
class PatchScan:
    """What an agent reports after looking at its host's packages (the JSON the agent sends, parsed).

    ``booted_at`` (optional) lets the controller tell that a host rebooted after an install even
    when something else has made a reboot pending again since.
    """

    os_family: str
    provider: str = ""
    installed: tuple[InstalledPackage, ...] = ()
    updates: tuple[AvailableUpdate, ...] = ()
    reboot_pending: bool = False
    reboot_reasons: tuple[str, ...] = ()
    host_id: str = ""
    scanned_at: datetime | None = None
    booted_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "installed", tuple(self.installed))
        object.__setattr__(self, "updates", tuple(self.updates))
        object.__setattr__(self, "reboot_reasons", tuple(self.reboot_reasons))
        object.__setattr__(self, "scanned_at", parse_time(self.scanned_at, "scanned_at"))
        object.__setattr__(self, "booted_at", parse_time(self.booted_at, "booted_at"))

    @classmethod
    def from_dict(cls, d: Any, *, host_id: str = "") -> PatchScan:
        """Parse an agent's scan. Unknown keys are ignored, unknown classification/severity words
        become ``other``/``unspecified``; a value of the wrong type raises :class:`InvalidInput`."""
        if not isinstance(d, Mapping):
            raise InvalidInput(f"a scan must be a mapping, got {type(d).__name__}")
        installed_raw = d.get("installed") or ()
        updates_raw = d.get("updates") or ()
        for key, raw in (("installed", installed_raw), ("updates", updates_raw)):
            if isinstance(raw, (str, bytes, Mapping)) or not isinstance(raw, Iterable):
                raise InvalidInput(f"scan field '{key}' must be a list")
        return cls(
            os_family=_get(d, "os_family", str, "", ""),
            provider=_get(d, "provider", str, "", ""),
            installed=tuple(InstalledPackage.from_dict(p, f"installed[{i}]") for i, p in enumerate(installed_raw)),
            updates=tuple(AvailableUpdate.from_dict(u, f"updates[{i}]") for i, u in enumerate(updates_raw)),
            reboot_pending=_get(d, "reboot_pending", bool, False, ""),
            reboot_reasons=_str_list(d, "reboot_reasons", ""),
            host_id=host_id or _get(d, "host_id", str, "", ""),
            scanned_at=parse_time(d.get("scanned_at"), "scan field 'scanned_at'"),
            booted_at=parse_time(d.get("booted_at"), "scan field 'booted_at'"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "host_id": self.host_id,
            "os_family": self.os_family,
            "provider": self.provider,
            "installed": [p.to_dict() for p in self.installed],
            "updates": [u.to_dict() for u in self.updates],
            "reboot_pending": self.reboot_pending,
            "reboot_reasons": list(self.reboot_reasons),
            "scanned_at": _iso(self.scanned_at),
            "booted_at": _iso(self.booted_at),
        }


@dataclass(frozen=True)
class InstallOutcome:
    """What the last install operation did to one package on the host.

    ``version`` is the version it installed or tried to install. Classification, severity and
    compliance level are those of the approved patch (copied from the snapshot), when known.
    """

    name: str
    status: InstallStatus
    version: str = ""
    arch: str = ""
    at: datetime | None = None
    message: str = ""
    classification: Classification = Classification.OTHER
    severity: Severity = Severity.UNSPECIFIED
    compliance_level: ComplianceLevel | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.status, InstallStatus):
            try:
                object.__setattr__(self, "status", InstallStatus(str(self.status).lower()))
            except ValueError:
                raise InvalidInput(f"unknown install status {self.status!r}", "use installed or failed") from None
        object.__setattr__(self, "at", parse_time(self.at, "at"))
        object.__setattr__(self, "classification", Classification.parse(self.classification))
        object.__setattr__(self, "severity", Severity.parse(self.severity))
        if self.compliance_level is not None:
            object.__setattr__(self, "compliance_level", ComplianceLevel.parse(self.compliance_level))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "version": self.version,
            "arch": self.arch,
            "at": _iso(self.at) if self.at else None,
            "message": self.message,
            "classification": self.classification.value,
            "severity": self.severity.value,
            "compliance_level": self.compliance_level.value if self.compliance_level else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InstallOutcome:
        """Parse an outcome (also the agent's form, whose ``state`` names the status).

        Raises:
            InvalidInput: not a mapping, no name, or an unknown status.
        """
        if not isinstance(d, Mapping) or not isinstance(d.get("name"), str) or not d.get("name"):
            raise InvalidInput("an install outcome must be a mapping with a name")
        return cls(
            name=d["name"],
            status=d.get("status") or d.get("state") or "",
            version=str(d.get("version") or ""),
            arch=str(d.get("arch") or ""),
            at=d.get("at"),
            message=str(d.get("message") or ""),
            classification=d.get("classification") or Classification.OTHER,
            severity=d.get("severity") or Severity.UNSPECIFIED,
            compliance_level=d.get("compliance_level"),
        )


# --------------------------------------------------------------------------------------------------
# Findings and summaries


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
            "approved_at": _iso(self.approved_at),
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
            "next_approval_at": _iso(self.next_approval_at),
            "updates": [u.to_dict() for u in self.updates],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PendingApproval:
        return cls(tuple(PendingUpdate.from_dict(u) for u in d.get("updates", ())))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------------------------------
# Snapshots


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
            "evaluated_at": _iso(self.evaluated_at),
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
