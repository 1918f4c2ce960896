"""The patch report: what an agent's patch task found and did, in one schema for every process.

The agent fills it from its providers' records, sends it as the ``fleetops.v1.PatchReport``
message in the invocation's result (agent/patching/wire.py converts to the message,
controller/rpc/patch_report.py converts back to these types); the controller evaluates it
against the host's baseline and keeps the scan in the host's report row, in the JSON form of
``to_dict``/``from_dict`` (that storage form also reads rows kept by earlier controllers).
No gRPC in here.

``InstalledPackage``  something installed now (name, version, architecture)
``AvailableUpdate``   an update the host's package manager offers
``PatchScan``         one scan: installed packages, offered updates, whether a reboot is pending
``InstallOutcome``    what the install did to one approved patch
``RebootState``       what became of a reboot after an install
``PatchReport``       one task's report: the scan (after the install), the outcomes, the reboot
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fleetops.common.errors import InvalidInput
from fleetops.common.patching import (
    Classification,
    ComplianceLevel,
    InstallStatus,
    Severity,
    iso,
    parse_time,
)


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
    """Words of stored scans we do not know (rows of earlier releases) become the neutral value."""
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
    agent knows them (used for the rejected-patches action). ``title`` is the package manager's
    human title (Windows, softwareupdate, zypper patches); ``reboot_required`` whether installing
    it needs a reboot, as far as the package manager says.
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
    title: str = ""
    reboot_required: bool = False

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
            title=_get(d, "title", str, "", w),
            reboot_required=_get(d, "reboot_required", bool, False, w),
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
            "release_date": iso(self.release_date),
            "advisory_ids": list(self.advisory_ids),
            "kb": self.kb,
            "dependencies": list(self.dependencies),
            "title": self.title,
            "reboot_required": self.reboot_required,
        }


@dataclass(frozen=True)
class PatchScan:
    """What an agent found when it looked at its host's packages.

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
        """Read a stored scan (:meth:`to_dict`). Rows kept by earlier releases hold the agent's own
        JSON: unknown keys are ignored, unknown classification/severity words become
        ``other``/``unspecified``; a value of the wrong type raises :class:`InvalidInput`."""
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
            "scanned_at": iso(self.scanned_at),
            "booted_at": iso(self.booted_at),
        }


def _install_status(value: Any) -> InstallStatus:
    if isinstance(value, InstallStatus):
        return value
    try:
        return InstallStatus(str(value).lower())
    except ValueError:
        raise InvalidInput(f"unknown install status {value!r}", "use installed, failed or not_applicable") from None


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
        object.__setattr__(self, "status", _install_status(self.status))
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
            "at": iso(self.at) if self.at else None,
            "message": self.message,
            "classification": self.classification.value,
            "severity": self.severity.value,
            "compliance_level": self.compliance_level.value if self.compliance_level else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InstallOutcome:
        """Read a stored outcome (rows of earlier releases may name the status ``state``).

        Raises:
            InvalidInput: not a mapping, no name, or an unknown status.
        """
        if not isinstance(d, Mapping) or not isinstance(d.get("name"), str) or not d.get("name"):
            raise InvalidInput("an install outcome must be a mapping with a name")
        return cls(
            name=d["name"],
            status=_install_status(d.get("status") or d.get("state")),
            version=str(d.get("version") or ""),
            arch=str(d.get("arch") or ""),
            at=d.get("at"),
            message=str(d.get("message") or ""),
            classification=d.get("classification") or Classification.OTHER,
            severity=d.get("severity") or Severity.UNSPECIFIED,
            compliance_level=d.get("compliance_level"),
        )


class RebootState(enum.Enum):
    """What became of a reboot after an install (a scan reboots nothing: ``NOT_NEEDED``)."""

    NOT_NEEDED = "not_needed"
    #: The install left a reboot pending and the policy is if-needed: the agent reboots the host.
    REQUESTED = "requested"
    #: A reboot is pending but the operation's policy is never.
    PENDING_POLICY_NEVER = "pending_policy_never"
    #: A reboot is pending but this install installed nothing (something else made it pending).
    PENDING_NOTHING_INSTALLED = "pending_nothing_installed"

    @property
    def describe(self) -> str:
        """The words an operator reads in the task's summary."""
        return _REBOOT_WORDS[self]


_REBOOT_WORDS = {
    RebootState.NOT_NEEDED: "not needed",
    RebootState.REQUESTED: "requested",
    RebootState.PENDING_POLICY_NEVER: "pending (policy never)",
    RebootState.PENDING_NOTHING_INSTALLED: "pending (nothing installed)",
}
OPERATIONS = ("scan", "install")


@dataclass(frozen=True)
class PatchReport:
    """One patch task's report: the scan (after the install, for an install), the outcomes, the reboot.

    Every install outcome is kept, ``not_applicable`` ones included (the approved patch was not
    offered on this host); the controller evaluates the installed and failed ones.
    """

    operation: str
    scan: PatchScan
    outcomes: tuple[InstallOutcome, ...] = ()
    reboot: RebootState = RebootState.NOT_NEEDED

    def __post_init__(self) -> None:
        if self.operation not in OPERATIONS:
            raise InvalidInput(
                f"unknown patch operation {self.operation!r}", "a patch report is of a scan or an install"
            )
        object.__setattr__(self, "outcomes", tuple(self.outcomes))

    @property
    def installed(self) -> int:
        return sum(o.status is InstallStatus.INSTALLED for o in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(o.status is InstallStatus.FAILED for o in self.outcomes)

    def evaluated_outcomes(self) -> tuple[InstallOutcome, ...]:
        """The outcomes compliance is judged by: installed and failed ones."""
        return tuple(o for o in self.outcomes if o.status is not InstallStatus.NOT_APPLICABLE)

    def to_dict(self) -> dict[str, Any]:
        """The stored form (the controller keeps it with the invocation)."""
        return {
            "operation": self.operation,
            "scan": self.scan.to_dict(),
            "outcomes": [o.to_dict() for o in self.outcomes],
            "reboot": self.reboot.value,
        }

    @classmethod
    def from_dict(cls, d: Any, *, host_id: str = "") -> PatchReport:
        """The inverse of :meth:`to_dict`.

        Raises:
            InvalidInput: not a stored report, or a field of the wrong type or value.
        """
        if not isinstance(d, Mapping) or not isinstance(d.get("scan"), Mapping):
            raise InvalidInput("the stored patch report has no scan", "it was not written by this controller")
        outcomes = d.get("outcomes") or ()
        if isinstance(outcomes, (str, bytes, Mapping)) or not isinstance(outcomes, Iterable):
            raise InvalidInput("report field 'outcomes' must be a list")
        try:
            reboot = RebootState(d.get("reboot") or RebootState.NOT_NEEDED.value)
        except ValueError:
            raise InvalidInput(f"report field 'reboot' has an unknown value {d.get('reboot')!r}") from None
        return cls(
            operation=str(d.get("operation") or ""),
            scan=PatchScan.from_dict(d["scan"], host_id=host_id),
            outcomes=tuple(InstallOutcome.from_dict(o) for o in outcomes),
            reboot=reboot,
        )
