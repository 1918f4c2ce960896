"""The patch vocabulary every process shares: classifications, severities, levels, states.

The agent maps each package manager's words onto :class:`Classification` and :class:`Severity`;
the controller's baselines approve by them and its findings are in :class:`PatchState` and
:class:`ComplianceLevel`; ``opsctl`` prints them. One definition each, no gRPC in here (the wire
carries the lowercase ``value`` of each member). docs/patching.md has the table of words.

``_Ranked`` enums are ordered by declaration, lowest first, and parse case-insensitively (with a
few aliases); :func:`worst_severity` and :func:`most_urgent_classification` pick the one that
matters when several advisories apply to one update.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from fleetops.common.errors import InvalidInput

_E = TypeVar("_E", bound="_Ranked")


def utc(moment: datetime) -> datetime:
    """*moment* as an aware UTC datetime; a naive one is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    """*moment* as ISO 8601 UTC text ending in ``Z`` (None stays None)."""
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
    """What an install did to one approved patch."""

    INSTALLED = "installed"
    FAILED = "failed"
    #: The approved patch is not offered on this host: nothing was done.
    NOT_APPLICABLE = "not_applicable"


def worst_severity(severities: Iterable[Severity]) -> Severity:
    """The most severe of *severities*, or ``UNSPECIFIED`` when there are none."""
    return max(severities, default=Severity.UNSPECIFIED)


def most_urgent_classification(classifications: Iterable[Classification]) -> Classification:
    """The most urgent of *classifications*, or ``OTHER`` when there are none."""
    return max(classifications, default=Classification.OTHER)
