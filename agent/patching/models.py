"""What a patch scan and a patch install find, as every provider reports them.

Every provider (apt, dnf, zypper, softwareupdate, Homebrew, Windows Update) fills the same four
records, so the controller compares hosts without knowing their package manager:

``Package``         something installed now (name, version, architecture)
``Update``          an update the host can take: versions, origin, classification, severity, date
``ScanResult``      one scan: installed packages, available updates, whether a reboot is pending
``InstallOutcome``  what happened to one requested patch after an install and the rescan after it

Classifications and severities are the shared vocabulary of :mod:`fleetops.common.patching`.
These records never travel as they are: :mod:`fleetops.agent.patching.wire` turns a task's
records into the ``fleetops.v1.PatchReport`` message the agent sends with the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal, get_args

from fleetops.common.errors import InvalidInput
from fleetops.common.patching import Classification, Severity

#: What became of one requested patch; the values of :class:`fleetops.common.patching.InstallStatus`.
InstallState = Literal["installed", "failed", "not_applicable"]
INSTALL_STATES: Final[tuple[str, ...]] = get_args(InstallState)


@dataclass(frozen=True)
class Package:
    """An installed package (for Windows, an installed hotfix; for macOS, the OS itself)."""

    name: str
    version: str
    arch: str  # "" when the manager does not say (Homebrew, Windows hotfixes)


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
    classification: Classification = Classification.OTHER
    severity: Severity = Severity.UNSPECIFIED
    release_date: datetime | None = None  # UTC; None where the manager does not publish one (apt)
    advisory_ids: tuple[str, ...] = ()  # RHSA-2024:1234, FEDORA-..., openSUSE-..., CVE ids for zypper
    kb_id: str | None = None  # Windows only: "KB5034441"
    title: str = ""  # human title where the manager has one (Windows, softwareupdate, zypper patches)
    reboot_required: bool = False  # installing it needs a reboot, as far as the manager says

    def __post_init__(self) -> None:
        if not isinstance(self.classification, Classification):
            raise InvalidInput(f"update {self.name!r}: unknown classification {self.classification!r}")
        if not isinstance(self.severity, Severity):
            raise InvalidInput(f"update {self.name!r}: unknown severity {self.severity!r}")
        if self.release_date is not None and self.release_date.tzinfo is None:
            raise InvalidInput(f"update {self.name!r}: release_date must carry a time zone")


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
