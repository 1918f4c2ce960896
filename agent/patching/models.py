"""What a patch scan and a patch install report, and how those reports travel as JSON.

Every provider (apt, dnf, zypper, softwareupdate, Homebrew, Windows Update) fills the same four
records, so the controller compares hosts without knowing their package manager:

``Package``         something installed now (name, version, architecture)
``Update``          an update the host can take: versions, origin, classification, severity, date
``ScanResult``      one scan: installed packages, available updates, whether a reboot is pending
``InstallOutcome``  what happened to one requested patch after an install and the rescan after it

``to_dict`` gives plain JSON-compatible data (datetimes as ISO 8601 UTC strings); ``from_dict``
checks what it reads and raises ``InvalidInput`` naming the bad field, since these records arrive
over the wire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

from fleetops.common.errors import InvalidInput

Classification = Literal["security", "bugfix", "enhancement", "unknown"]
Severity = Literal["critical", "important", "moderate", "low", "unspecified"]
InstallState = Literal["installed", "failed", "not_applicable"]

CLASSIFICATIONS: Final[tuple[str, ...]] = get_args(Classification)
SEVERITIES: Final[tuple[str, ...]] = get_args(Severity)
INSTALL_STATES: Final[tuple[str, ...]] = get_args(InstallState)

#: Severities from worst to mildest; used to keep the worst one when several advisories apply.
SEVERITY_RANK: Final[dict[str, int]] = {s: i for i, s in enumerate(("critical", "important", "moderate", "low"))}
#: Classifications from most to least urgent, same use.
CLASSIFICATION_RANK: Final[dict[str, int]] = {c: i for i, c in enumerate(("security", "bugfix", "enhancement"))}


def worst_severity(severities: Sequence[str]) -> Severity:
    """The most severe of ``severities``, or ``"unspecified"`` when none is known."""
    known = [s for s in severities if s in SEVERITY_RANK]
    return min(known, key=SEVERITY_RANK.__getitem__) if known else "unspecified"  # type: ignore[return-value]


def most_urgent_classification(classifications: Sequence[str]) -> Classification:
    """The most urgent of ``classifications``, or ``"unknown"`` when none is known."""
    known = [c for c in classifications if c in CLASSIFICATION_RANK]
    return min(known, key=CLASSIFICATION_RANK.__getitem__) if known else "unknown"  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------
# The records


@dataclass(frozen=True)
class Package:
    """An installed package (for Windows, an installed hotfix; for macOS, the OS itself)."""

    name: str
    version: str
    arch: str  # "" when the manager does not say (Homebrew, Windows hotfixes)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "arch": self.arch}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Package:
        """Raises:
        InvalidInput: a field is missing or of the wrong type.
        """
        reader = _Reader(data, "package")
        return cls(name=reader.text("name"), version=reader.text("version"), arch=reader.text("arch"))


@dataclass(frozen=True)
class Update:
    """An update the host can install.

    ``name`` is what :meth:`PatchProvider.install` accepts for it: the package name (apt, dnf,
    zypper packages, Homebrew), the patch name (zypper patches), the label (softwareupdate) or the
    ``KB`` number (Windows; the update id when it has no KB).
    """

    name: str
    installed_version: str | None  # None when not installed yet or the manager cannot tell
    candidate_version: str
    arch: str
    repository: str
    classification: Classification = "unknown"
    severity: Severity = "unspecified"
    release_date: datetime | None = None  # UTC; None where the manager does not publish one (apt)
    advisory_ids: tuple[str, ...] = ()  # RHSA-2024:1234, FEDORA-..., openSUSE-..., CVE ids for zypper
    kb_id: str | None = None  # Windows only: "KB5034441"
    title: str = ""  # human title where the manager has one (Windows, softwareupdate, zypper patches)
    reboot_required: bool = False  # installing it needs a reboot, as far as the manager says

    def __post_init__(self) -> None:
        if self.classification not in CLASSIFICATIONS:
            raise InvalidInput(f"update {self.name!r}: unknown classification {self.classification!r}")
        if self.severity not in SEVERITIES:
            raise InvalidInput(f"update {self.name!r}: unknown severity {self.severity!r}")
        if self.release_date is not None and self.release_date.tzinfo is None:
            raise InvalidInput(f"update {self.name!r}: release_date must carry a time zone")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "installed_version": self.installed_version,
            "candidate_version": self.candidate_version,
            "arch": self.arch,
            "repository": self.repository,
            "classification": self.classification,
            "severity": self.severity,
            "release_date": _format_time(self.release_date),
            "advisory_ids": list(self.advisory_ids),
            "kb_id": self.kb_id,
            "title": self.title,
            "reboot_required": self.reboot_required,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Update:
        """Raises:
        InvalidInput: a field is missing, of the wrong type, or not one of the allowed values.
        """
        reader = _Reader(data, "update")
        return cls(
            name=reader.text("name"),
            installed_version=reader.optional_text("installed_version"),
            candidate_version=reader.text("candidate_version"),
            arch=reader.text("arch"),
            repository=reader.text("repository"),
            classification=reader.choice("classification", CLASSIFICATIONS),  # type: ignore[arg-type]
            severity=reader.choice("severity", SEVERITIES),  # type: ignore[arg-type]
            release_date=reader.optional_time("release_date"),
            advisory_ids=tuple(reader.text_list("advisory_ids")),
            kb_id=reader.optional_text("kb_id"),
            title=reader.text("title", default=""),
            reboot_required=reader.flag("reboot_required", default=False),
        )


@dataclass(frozen=True)
class ScanResult:
    """One scan of one host by one provider."""

    os_family: str  # "linux" | "darwin" | "windows", as in the agent inventory
    provider: str  # "apt" | "dnf" | "yum" | "zypper" | "softwareupdate" | "homebrew" | "windows_update"
    installed: tuple[Package, ...]
    updates: tuple[Update, ...]
    reboot_pending: bool
    reboot_reasons: tuple[str, ...] = ()
    scanned_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def update_named(self, name: str) -> list[Update]:
        """The updates whose ``name`` is ``name`` (several when one package has several architectures)."""
        return [u for u in self.updates if u.name == name]

    def installed_named(self, name: str) -> list[Package]:
        """The installed packages called ``name``."""
        return [p for p in self.installed if p.name == name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "os_family": self.os_family,
            "provider": self.provider,
            "installed": [p.to_dict() for p in self.installed],
            "updates": [u.to_dict() for u in self.updates],
            "reboot_pending": self.reboot_pending,
            "reboot_reasons": list(self.reboot_reasons),
            "scanned_at": _format_time(self.scanned_at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScanResult:
        """Raises:
        InvalidInput: the scan or one of its packages or updates is malformed.
        """
        reader = _Reader(data, "scan result")
        scanned_at = reader.optional_time("scanned_at")
        if scanned_at is None:
            raise InvalidInput("scan result: scanned_at is missing", "send the time of the scan as ISO 8601 UTC")
        return cls(
            os_family=reader.text("os_family"),
            provider=reader.text("provider"),
            installed=tuple(Package.from_dict(item) for item in reader.object_list("installed")),
            updates=tuple(Update.from_dict(item) for item in reader.object_list("updates")),
            reboot_pending=reader.flag("reboot_pending"),
            reboot_reasons=tuple(reader.text_list("reboot_reasons")),
            scanned_at=scanned_at,
        )


@dataclass(frozen=True)
class InstallOutcome:
    """What became of one requested patch."""

    name: str
    state: InstallState
    version_after: str | None  # installed version after the install; None when not installed
    message: str = ""

    def __post_init__(self) -> None:
        if self.state not in INSTALL_STATES:
            raise InvalidInput(f"install outcome {self.name!r}: unknown state {self.state!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "version_after": self.version_after, "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InstallOutcome:
        """Raises:
        InvalidInput: a field is missing, of the wrong type, or the state is unknown.
        """
        reader = _Reader(data, "install outcome")
        return cls(
            name=reader.text("name"),
            state=reader.choice("state", INSTALL_STATES),  # type: ignore[arg-type]
            version_after=reader.optional_text("version_after"),
            message=reader.text("message", default=""),
        )


# --------------------------------------------------------------------------------------------------
# Reading JSON back, field by field

_MISSING: Final = object()
_WIRE_HINT = "send the record as produced by to_dict()"


def _format_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _Reader:
    """Typed access to one JSON object; every failure names the record and the field."""

    def __init__(self, data: Any, what: str) -> None:
        if not isinstance(data, Mapping):
            raise InvalidInput(f"{what}: expected a JSON object, got {type(data).__name__}", _WIRE_HINT)
        self.data = data
        self.what = what

    def _get(self, key: str, default: Any) -> Any:
        value = self.data.get(key, default)
        if value is _MISSING:
            raise InvalidInput(f"{self.what}: field {key!r} is missing", _WIRE_HINT)
        return value

    def _wrong(self, key: str, expected: str, value: Any) -> InvalidInput:
        return InvalidInput(f"{self.what}: field {key!r} must be {expected}, got {value!r}", _WIRE_HINT)

    def text(self, key: str, default: Any = _MISSING) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        return value

    def optional_text(self, key: str) -> str | None:
        value = self._get(key, None)
        if value is not None and not isinstance(value, str):
            raise self._wrong(key, "a string or null", value)
        return value

    def flag(self, key: str, default: Any = _MISSING) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self._wrong(key, "true or false", value)
        return value

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.text(key)
        if value not in allowed:
            raise self._wrong(key, "one of " + ", ".join(allowed), value)
        return value

    def text_list(self, key: str) -> list[str]:
        value = self._get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._wrong(key, "a list of strings", value)
        return value

    def object_list(self, key: str) -> list[Any]:
        value = self._get(key, _MISSING)
        if not isinstance(value, list):
            raise self._wrong(key, "a list", value)
        return value

    def optional_time(self, key: str) -> datetime | None:
        value = self.optional_text(key)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise self._wrong(key, "an ISO 8601 time", value) from None
        if parsed.tzinfo is None:
            raise self._wrong(key, "an ISO 8601 time with a zone (…Z)", value)
        return parsed.astimezone(UTC)
