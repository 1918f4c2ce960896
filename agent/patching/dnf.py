"""RHEL-family patching with dnf (dnf4 and dnf5) or yum, classified by the repositories' advisories.

Scan
    ``rpm -qa`` for installed packages; ``dnf -q check-update`` for available updates (exit 100
    means there are some, 0 none); ``dnf -q updateinfo list --updates`` maps advisories (RHSA,
    RHBA, RHEA, FEDORA-..., ALSA, RLSA, ELSA) to the packages they update, with their type and, for
    security advisories, severity. dnf5 prints the issue date in that list; for dnf4 and yum it
    comes from ``updateinfo info --updates`` (if that output cannot be read the dates stay unknown,
    the scan does not fail). An update takes the most urgent type and worst severity of the
    advisories naming its package and architecture; one no advisory names is ``other``.
    Packages under "Obsoleting Packages" replace installed ones under another name and are left out.

Install
    ``dnf -y upgrade name-[epoch:]version-release.arch ...`` for exactly the approved packages at
    the versions the pre-install scan saw (``yum -y update [epoch:]name-version-release.arch``),
    without new weak dependencies; then a rescan decides each outcome.

Reboot pending
    ``needs-restarting -r`` (dnf-utils/yum-utils; ``dnf needs-restarting -r`` when the standalone
    tool is missing) exits 1 and lists the core packages updated since boot.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from fleetops.agent.patching.diagnostics import command_failed, command_text, last_lines, unreadable_output
from fleetops.agent.patching.interfaces import CommandResult, CommandRunner
from fleetops.agent.patching.models import InstallOutcome, ScanResult, Update
from fleetops.agent.patching.outcomes import judge_by_rescan, requested_names, run_installs
from fleetops.agent.patching.process import C_LOCALE, SubprocessRunner
from fleetops.agent.patching.rpm import (
    RPM_QUERY_ARGV,
    looks_like_evr,
    normalize_evr,
    parse_rpm_query,
    split_name_arch,
    split_nevra,
)
from fleetops.common.errors import InvalidInput, Unavailable
from fleetops.common.patching import Classification, Severity, most_urgent_classification, worst_severity

log = logging.getLogger(__name__)

Binary = Literal["dnf", "yum"]

#: Lines dnf and yum print around their tables (plugins, mirrors, subscription-manager, notices).
_NOISE_PREFIXES: Final = (
    "Last metadata expiration check",
    "Loaded plugins",
    "Loading mirror speeds",
    "Determining fastest mirrors",
    "* ",
    "Security: ",
    "Updating and loading repositories",
    "Repositories loaded",
    "Updating Subscription Management repositories",
    "Unable to read consumer identity",
    "This system is",
    "Update notice ",
    "You should report this problem",
    "updateinfo list done",
)

_SEVERITIES: Final[dict[str, Severity]] = {
    "critical": Severity.CRITICAL,
    "important": Severity.IMPORTANT,
    "moderate": Severity.MODERATE,
    "low": Severity.LOW,
}
_TYPES: Final[dict[str, Classification]] = {
    "security": Classification.SECURITY,
    "bugfix": Classification.BUGFIX,
    "enhancement": Classification.ENHANCEMENT,
    "newpackage": Classification.ENHANCEMENT,
    "unknown": Classification.OTHER,
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}(:\d{2})?$")
_INFO_FIELD = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?)\s*:\s+(.*?)\s*$")
_INFO_TITLE_SEVERITY = re.compile(r"^\s+(Critical|Important|Moderate|Low): \S")


def _is_noise(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith(_NOISE_PREFIXES)


def _parse_time(date: str, time: str = "00:00:00") -> datetime | None:
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(f"{date} {time}", fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


# --------------------------------------------------------------------------------------------------
# check-update


@dataclass(frozen=True)
class AvailableUpdate:
    """One row of ``check-update``."""

    name: str
    arch: str
    evr: str
    repository: str


def parse_check_update(text: str, exit_code: int, command: str = "dnf -q check-update") -> list[AvailableUpdate]:
    """The rows of ``dnf check-update`` / ``yum check-update`` output.

    Rows wrapped by yum after a long name (the version on the next line) are joined; everything
    from "Obsoleting Packages" on is skipped.

    Raises:
        InvalidInput: the exit code says there are updates (100) but no row could be read.
    """
    rows = []
    unread = []
    held: str | None = None
    for raw in text.splitlines():
        if raw.startswith("Obsoleting Packages"):
            break
        if _is_noise(raw):
            continue
        fields = raw.split()
        if held is not None:
            fields, held = [held, *fields], None
        if len(fields) == 1 and split_name_arch(fields[0]):
            held = fields[0]
            continue
        name_arch = split_name_arch(fields[0])
        if len(fields) >= 3 and name_arch and looks_like_evr(fields[1]):
            rows.append(AvailableUpdate(name_arch[0], name_arch[1], normalize_evr(fields[1]), fields[2]))
        else:
            unread.append(raw.strip())
    if exit_code == 100 and not rows:
        first = unread[0] if unread else "no output"
        raise unreadable_output(
            command, f"it reported updates (exit 100) but no row was readable; first line: {first!r}"
        )
    if unread:
        log.debug("%s: skipped %d unreadable line(s), first %r", command, len(unread), unread[0])
    return rows


# --------------------------------------------------------------------------------------------------
# updateinfo


@dataclass(frozen=True)
class AdvisoryPackage:
    """One row of ``updateinfo list``: an advisory and a package version it updates."""

    advisory_id: str
    classification: Classification
    severity: Severity
    name: str
    evr: str
    arch: str
    issued: datetime | None


def _advisory_type(token: str, command: str) -> tuple[Classification, Severity]:
    lowered = token.lower()
    if lowered.endswith("/sec."):  # dnf4/yum: "Important/Sec."
        return Classification.SECURITY, _SEVERITIES.get(lowered[: -len("/sec.")], Severity.UNSPECIFIED)
    if lowered in _TYPES:
        return _TYPES[lowered], Severity.UNSPECIFIED
    raise unreadable_output(command, f"unknown advisory type {token!r}")


def parse_updateinfo_list(text: str, command: str = "dnf -q updateinfo list --updates") -> list[AdvisoryPackage]:
    """The rows of ``updateinfo list``, in any of its layouts.

    dnf4 and yum: ``ADVISORY  TYPE-or-Severity/Sec.  NEVRA`` (``-v`` adds the issue date);
    dnf5: a header, then ``ADVISORY  TYPE  SEVERITY  NEVRA  ISSUED``. A leading one-letter status
    column (``--all``) is ignored.

    Raises:
        InvalidInput: a row has an unknown advisory type, or the output is not empty yet holds no row.
    """
    rows = []
    unread = []
    for raw in text.splitlines():
        if _is_noise(raw):
            continue
        fields = raw.split()
        if fields and len(fields[0]) == 1 and fields[0].isalpha():
            fields = fields[1:]
        nevra_at = next((i for i in (2, 3) if i < len(fields) and split_nevra(fields[i])), None)
        if nevra_at is None:
            if not (fields[:2] == ["Name", "Type"]):  # the dnf5 header
                unread.append(raw.strip())
            continue
        classification, severity = _advisory_type(fields[1], command)
        if nevra_at == 3:  # dnf5 has a severity column for every type
            severity = _SEVERITIES.get(fields[2].lower(), severity)
        nevra = split_nevra(fields[nevra_at])
        assert nevra is not None
        rest = fields[nevra_at + 1 :]
        issued = (
            _parse_time(*rest[:2])
            if rest and _DATE.match(rest[0]) and (len(rest) < 2 or _TIME.match(rest[1]))
            else None
        )
        rows.append(AdvisoryPackage(fields[0], classification, severity, nevra.name, nevra.evr, nevra.arch, issued))
    if unread and not rows:
        raise unreadable_output(command, f"no advisory row was readable; first line: {unread[0]!r}")
    return rows


@dataclass(frozen=True)
class AdvisoryDetails:
    """What ``updateinfo info`` adds about one advisory."""

    classification: Classification
    severity: Severity
    issued: datetime | None


def parse_updateinfo_info(text: str, command: str = "dnf -q updateinfo info --updates") -> dict[str, AdvisoryDetails]:
    """Type, severity and issue date per advisory from dnf4/yum ``updateinfo info`` blocks.

    Raises:
        InvalidInput: the output holds text but no "Update ID" field.
    """
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    title_severity = ""
    meaningful = False
    for raw in text.splitlines():
        if _is_noise(raw) or set(raw.strip()) == {"="}:
            continue
        meaningful = True
        title = _INFO_TITLE_SEVERITY.match(raw)
        if title:  # "  Moderate: systemd security update", the banner above a block
            title_severity = title.group(1)
        match = _INFO_FIELD.match(raw)
        if match is None:
            continue
        key, value = match.group(1).lower(), match.group(2)
        if key == "update id":
            current = found.setdefault(value, {"severity": title_severity})
            title_severity = ""
        elif current is not None and key in ("type", "severity", "issued", "updated"):
            current[key] = value
    if meaningful and not found:
        raise unreadable_output(command, "no 'Update ID' field found")
    details = {}
    for advisory_id, fields in found.items():
        classification, severity = _advisory_type(fields.get("type", "unknown"), command)
        severity = _SEVERITIES.get(fields.get("severity", "").lower(), severity)
        stamp = (fields.get("issued") or fields.get("updated") or "").split()
        issued = _parse_time(*stamp[:2]) if stamp and _DATE.match(stamp[0]) else None
        details[advisory_id] = AdvisoryDetails(classification, severity, issued)
    return details


# --------------------------------------------------------------------------------------------------
# needs-restarting


def parse_needs_restarting(result: CommandResult) -> tuple[bool, tuple[str, ...]] | None:
    """Reboot state from ``needs-restarting -r``: (pending, reasons), or None when it did not say.

    Exit 1 counts only together with its text: ``dnf`` also exits 1 for an unknown subcommand.
    """
    text = result.stdout
    packages = tuple(line.strip()[2:].strip() for line in text.splitlines() if line.strip().startswith("* "))
    if result.exit_code == 1 and (packages or "Reboot is required" in text):
        return True, tuple(f"{package} was updated since boot" for package in packages) or ("needs-restarting -r",)
    if result.exit_code == 0:
        return False, ()
    return None


# --------------------------------------------------------------------------------------------------
# The provider


def _merge(
    rows: Sequence[AvailableUpdate],
    installed: dict[tuple[str, str], str],
    advisories: Sequence[AdvisoryPackage],
    details: dict[str, AdvisoryDetails],
) -> list[Update]:
    by_package: dict[tuple[str, str], list[AdvisoryPackage]] = defaultdict(list)
    for advisory in advisories:
        by_package[advisory.name, advisory.arch].append(advisory)
    updates = []
    for row in rows:
        found = by_package.get((row.name, row.arch), [])
        extra = [details[a.advisory_id] for a in found if a.advisory_id in details]
        dates = [d for d in [a.issued for a in found] + [e.issued for e in extra] if d is not None]
        updates.append(
            Update(
                name=row.name,
                installed_version=installed.get((row.name, row.arch)),
                candidate_version=row.evr,
                arch=row.arch,
                repository=row.repository,
                classification=most_urgent_classification([a.classification for a in found]),
                severity=worst_severity([a.severity for a in found] + [e.severity for e in extra]),
                release_date=max(dates) if dates else None,
                advisory_ids=tuple(sorted({a.advisory_id for a in found})),
            )
        )
    return updates


class DnfProvider:
    """Patches RHEL, CentOS, Rocky, Alma, Oracle, Amazon Linux and Fedora hosts with dnf or yum.

    Args:
        binary: "dnf" (dnf4 or dnf5) or "yum" (yum 3 on EL7 and older).
        runner: runs the programs (a fake in tests).
        refresh: make dnf/yum fetch fresh repository metadata for each scan.
    """

    os_family = "linux"

    def __init__(
        self,
        binary: Binary = "dnf",
        runner: CommandRunner | None = None,
        refresh: bool = False,
        scan_timeout: float = 900.0,
        install_timeout: float = 3600.0,
    ) -> None:
        if binary not in ("dnf", "yum"):
            raise InvalidInput(f"unknown RPM package manager {binary!r}", "use 'dnf' or 'yum'")
        self.binary: Binary = binary
        self.name: str = binary
        self.runner: CommandRunner = runner or SubprocessRunner()
        self.refresh = refresh
        self.scan_timeout = scan_timeout
        self.install_timeout = install_timeout

    # -- commands --------------------------------------------------------------------------------

    def check_update_argv(self) -> list[str]:
        refresh = ["--refresh"] if self.refresh and self.binary == "dnf" else []
        return [self.binary, "-q", *refresh, "check-update"]

    def updateinfo_argv(self, what: str) -> list[str]:
        # dnf takes --updates; yum 3 spells the same filter as the word "updates".
        scope = "--updates" if self.binary == "dnf" else "updates"
        return [self.binary, "-q", "updateinfo", what, scope]

    def install_argv(self, specs: list[str]) -> list[str]:
        if self.binary == "dnf":
            return ["dnf", "-y", "--setopt=install_weak_deps=False", "upgrade", *specs]
        return ["yum", "-y", "update", *specs]

    def install_spec(self, update: Update) -> str:
        """The package spec pinning ``update`` to its candidate version."""
        if self.binary == "dnf":
            return f"{update.name}-{update.candidate_version}.{update.arch}"
        epoch, colon, version_release = update.candidate_version.rpartition(":")
        return f"{epoch}{colon}{update.name}-{version_release}.{update.arch}"

    async def _run(self, argv: Sequence[str], timeout: float | None = None) -> CommandResult:
        return await self.runner.run(list(argv), env=C_LOCALE, timeout=timeout or self.scan_timeout)

    # -- scan ------------------------------------------------------------------------------------

    async def scan(self) -> ScanResult:
        """Raises:
        Unavailable: rpm or dnf/yum failed (a repository unreachable, the rpm database locked).
        InvalidInput: their output could not be read.
        """
        result = await self._run(RPM_QUERY_ARGV)
        if result.exit_code != 0:
            raise command_failed("rpm -qa", result)
        installed = parse_rpm_query(result.stdout)
        installed_versions = {(p.name, p.arch): p.version for p in installed}

        argv = self.check_update_argv()
        result = await self._run(argv)
        if result.exit_code not in (0, 100):
            raise command_failed(command_text(argv), result)
        rows = parse_check_update(result.stdout, result.exit_code, command_text(argv))

        advisories: list[AdvisoryPackage] = []
        details: dict[str, AdvisoryDetails] = {}
        if rows:
            advisories = await self._advisories()
            if advisories and not any(a.issued for a in advisories):
                details = await self._advisory_details()
        pending, reasons = await self._reboot_state()
        updates = _merge(rows, installed_versions, advisories, details)
        return ScanResult("linux", self.name, tuple(installed), tuple(updates), pending, reasons)

    async def _advisories(self) -> list[AdvisoryPackage]:
        argv = self.updateinfo_argv("list")
        result = await self._run(argv)
        if result.exit_code != 0:
            raise command_failed(command_text(argv), result)
        return parse_updateinfo_list(result.stdout, command_text(argv))

    async def _advisory_details(self) -> dict[str, AdvisoryDetails]:
        argv = self.updateinfo_argv("info")
        try:
            result = await self._run(argv)
            if result.exit_code != 0:
                raise command_failed(command_text(argv), result)
            return parse_updateinfo_info(result.stdout, command_text(argv))
        except (InvalidInput, Unavailable) as exc:
            log.warning("advisory dates unknown: %s", exc)
            return {}

    async def _reboot_state(self) -> tuple[bool, tuple[str, ...]]:
        for argv in (["needs-restarting", "-r"], [self.binary, "needs-restarting", "-r"]):
            try:
                result = await self._run(argv)
            except Unavailable:
                continue
            state = parse_needs_restarting(result)
            if state is not None:
                return state
            log.debug(
                "%s gave no answer (exit %d): %s", command_text(argv), result.exit_code, last_lines(result.stderr)
            )
        log.warning("reboot state unknown: needs-restarting is missing or failed (install dnf-utils or yum-utils)")
        return False, ()

    # -- install ---------------------------------------------------------------------------------

    async def install(self, names: list[str]) -> list[InstallOutcome]:
        """Raises:
        InvalidInput: a name is empty or has control characters.
        Unavailable: dnf/yum is missing, or a scan failed.
        """
        requested = requested_names(names)
        if not requested:
            return []
        before = await self.scan()
        specs = {name: [self.install_spec(u) for u in before.update_named(name)] for name in requested}
        specs = {name: args for name, args in specs.items() if args}
        failures = await run_installs(
            self.runner, specs, self.install_argv, _install_failure, env=C_LOCALE, timeout=self.install_timeout
        )
        after = await self.scan()
        return judge_by_rescan(requested, before, after, failures)


def _install_failure(result: CommandResult) -> str | None:
    if result.exit_code == 0:
        return None
    detail = last_lines(result.stderr) or last_lines(result.stdout) or "no output"
    return f"install failed (exit {result.exit_code}): {detail}"
