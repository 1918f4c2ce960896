"""SUSE patching with zypper: package updates and SUSE patches (advisories), read from zypper's XML.

Scan
    ``rpm -qa`` for installed packages; ``zypper --xmlout list-updates`` for package updates (newer
    zypper says the installed version as ``edition-old``; otherwise rpm does) and ``zypper --xmlout
    list-patches`` for the needed patches. Each needed patch is an update of its own, named by the
    patch name (``openSUSE-Leap-16.0-112``, ``SUSE-SLE-SERVER-12-SP2-2017-99``) with its category,
    severity, issue date, CVE ids and whether it asks for a reboot. Package updates carry no
    classification (zypper does not link them to patches in this output): ``other``.

    Category mapping: security -> security, recommended -> bugfix, optional and feature ->
    enhancement, anything else -> other.

Install
    ``zypper --non-interactive install name=edition ... patch:NAME ...`` for exactly the approved
    packages (at the scanned version) and patches; then a rescan decides each outcome.

Reboot pending
    ``zypper needs-rebooting`` exits 102, or ``/run/reboot-needed`` exists (zypper writes it after
    applying a patch that asks for a reboot).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from fleetops.agent.patching.diagnostics import command_failed, command_text, last_lines, unreadable_output
from fleetops.agent.patching.interfaces import CommandResult, CommandRunner
from fleetops.agent.patching.models import InstallOutcome, ScanResult, Update
from fleetops.agent.patching.outcomes import judge_by_rescan, requested_names, run_installs
from fleetops.agent.patching.process import C_LOCALE, SubprocessRunner
from fleetops.agent.patching.rpm import RPM_QUERY_ARGV, normalize_evr, parse_rpm_query
from fleetops.common.errors import Unavailable
from fleetops.common.patching import Classification, Severity

log = logging.getLogger(__name__)

ZYPPER: Final = ("zypper", "--non-interactive")
LIST_UPDATES_ARGV: Final = (*ZYPPER, "--no-refresh", "--xmlout", "list-updates")
LIST_PATCHES_ARGV: Final = (*ZYPPER, "--no-refresh", "--xmlout", "list-patches")
REFRESH_ARGV: Final = (*ZYPPER, "refresh")
NEEDS_REBOOTING_ARGV: Final = ("zypper", "needs-rebooting")
INSTALL_ARGV_PREFIX: Final = (*ZYPPER, "--no-refresh", "install", "--auto-agree-with-licenses", "--no-recommends")
REBOOT_NEEDED_PATH: Final = Path("/run/reboot-needed")

# zypper exit codes (zypper(8), EXIT CODES)
EXIT_ZYPP_LOCKED: Final = 7
EXIT_INF_REBOOT_NEEDED: Final = 102
EXIT_INF_RESTART_NEEDED: Final = 103  # zypper itself was updated
EXIT_INF_REPOS_SKIPPED: Final = 106
_LISTING_OK: Final = frozenset({0, EXIT_INF_REPOS_SKIPPED})
_INSTALL_OK: Final = frozenset({0, EXIT_INF_REBOOT_NEEDED, EXIT_INF_RESTART_NEEDED})

_CATEGORIES: Final[dict[str, Classification]] = {
    "security": Classification.SECURITY,
    "recommended": Classification.BUGFIX,
    "optional": Classification.ENHANCEMENT,
    "feature": Classification.ENHANCEMENT,
}
_SEVERITIES: Final[dict[str, Severity]] = {
    "critical": Severity.CRITICAL,
    "important": Severity.IMPORTANT,
    "moderate": Severity.MODERATE,
    "low": Severity.LOW,
}
_PATCH_PREFIX: Final = "patch:"


def _update_elements(text: str, command: str) -> list[ElementTree.Element]:
    """The ``<update>`` elements of a zypper ``--xmlout`` answer.

    Raises:
        InvalidInput: the text is not XML or not a zypper ``<stream>`` with an update list.
        Unavailable: zypper reported an error message in the stream.
    """
    if not text.strip():
        raise unreadable_output(command, "it printed nothing")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise unreadable_output(command, f"not well-formed XML ({exc})") from None
    if root.tag != "stream":
        raise unreadable_output(command, f"the root element is <{root.tag}>, not <stream>")
    errors = [m.text or "" for m in root.iter("message") if m.get("type") == "error"]
    if errors:
        raise Unavailable(
            f"`{command}` reported: {'; '.join(e.strip() for e in errors)}", "fix the zypper error and retry"
        )
    update_list = root.find("update-status/update-list")
    if update_list is None:
        if root.find("update-status") is not None:
            return []
        raise unreadable_output(command, "no <update-status> element")
    return list(update_list.iter("update"))


def _required(element: ElementTree.Element, attribute: str, command: str) -> str:
    value = element.get(attribute)
    if not value:
        raise unreadable_output(command, f"an <update> has no {attribute!r} attribute")
    return value


def _repository(element: ElementTree.Element) -> str:
    source = element.find("source")
    if source is None:
        return ""
    return source.get("alias") or source.get("url") or ""


def parse_list_updates(text: str, installed: dict[tuple[str, str], str] | None = None) -> list[Update]:
    """Package updates from ``zypper --xmlout list-updates``.

    ``installed`` ((name, arch) -> version, from rpm) gives the installed version when zypper is too
    old to print ``edition-old``.

    Raises:
        InvalidInput: the XML is malformed or an update lacks name, edition or arch.
        Unavailable: zypper reported an error.
    """
    command = command_text(LIST_UPDATES_ARGV)
    installed = installed or {}
    updates = []
    for element in _update_elements(text, command):
        if element.get("kind", "package") != "package":
            continue
        name, arch = _required(element, "name", command), _required(element, "arch", command)
        old = element.get("edition-old")
        updates.append(
            Update(
                name=name,
                installed_version=normalize_evr(old) if old else installed.get((name, arch)),
                candidate_version=normalize_evr(_required(element, "edition", command)),
                arch=arch,
                repository=_repository(element),
                title=(element.findtext("summary") or "").strip(),
            )
        )
    return updates


def _issue_date(element: ElementTree.Element) -> datetime | None:
    issued = element.find("issue-date")
    if issued is None:
        return None
    stamp = issued.get("time_t") or issued.get("time")
    try:
        return datetime.fromtimestamp(int(stamp), UTC) if stamp else None
    except (ValueError, OverflowError, OSError):
        return None


def parse_list_patches(text: str) -> list[Update]:
    """Needed patches from ``zypper --xmlout list-patches`` (status ``needed``; others are applied or not relevant).

    Raises:
        InvalidInput: the XML is malformed or a patch lacks a name.
        Unavailable: zypper reported an error.
    """
    command = command_text(LIST_PATCHES_ARGV)
    patches = []
    for element in _update_elements(text, command):
        if element.get("kind") != "patch" or element.get("status", "needed") != "needed":
            continue
        name = _required(element, "name", command)
        cves = [i.get("id", "") for i in element.iter("issue") if i.get("type") == "cve" and i.get("id")]
        patches.append(
            Update(
                name=name,
                installed_version=None,
                candidate_version=element.get("edition", ""),
                arch=element.get("arch", "noarch"),
                repository=_repository(element),
                classification=_CATEGORIES.get(element.get("category", "").lower(), Classification.OTHER),
                severity=_SEVERITIES.get(element.get("severity", "").lower(), Severity.UNSPECIFIED),
                release_date=_issue_date(element),
                advisory_ids=(name, *dict.fromkeys(cves)),
                title=(element.findtext("summary") or "").strip(),
                reboot_required=element.get("restart") == "true",
            )
        )
    return patches


def is_patch(update: Update) -> bool:
    """Whether ``update`` is a SUSE patch: :func:`parse_list_patches` lists a patch's own name first
    among its advisory ids, and package updates have none."""
    return update.advisory_ids[:1] == (update.name,)


def install_spec(update: Update) -> str:
    """The ``zypper install`` argument for ``update``: ``patch:NAME`` or ``name=edition``."""
    if is_patch(update):
        return _PATCH_PREFIX + update.name
    return f"{update.name}={update.candidate_version}"


class ZypperProvider:
    """Patches SUSE Linux Enterprise and openSUSE hosts with zypper.

    Args:
        runner: runs the programs (a fake in tests).
        refresh: run ``zypper refresh`` before each scan.
        reboot_needed_path: the file zypper leaves when an applied patch wants a reboot.
    """

    name = "zypper"
    os_family = "linux"

    def __init__(
        self,
        runner: CommandRunner | None = None,
        refresh: bool = True,
        reboot_needed_path: Path = REBOOT_NEEDED_PATH,
        scan_timeout: float = 900.0,
        install_timeout: float = 3600.0,
    ) -> None:
        self.runner: CommandRunner = runner or SubprocessRunner()
        self.refresh = refresh
        self.reboot_needed_path = reboot_needed_path
        self.scan_timeout = scan_timeout
        self.install_timeout = install_timeout

    async def _run(self, argv: Sequence[str], ok: frozenset[int] = _LISTING_OK) -> str:
        result = await self.runner.run(list(argv), env=C_LOCALE, timeout=self.scan_timeout)
        if result.exit_code not in ok:
            _raise_if_locked(result)
            raise command_failed(command_text(argv), result)
        if result.exit_code == EXIT_INF_REPOS_SKIPPED:
            log.warning("%s: some repositories were skipped: %s", command_text(argv), last_lines(result.stderr, 2))
        return result.stdout

    async def scan(self) -> ScanResult:
        """Raises:
        Unavailable: zypper or rpm failed, or the zypp database is locked.
        InvalidInput: their output could not be read.
        """
        return await self._scan(self.refresh)

    async def _scan(self, refresh: bool) -> ScanResult:
        if refresh:
            await self._run(REFRESH_ARGV)
        installed = parse_rpm_query(await self._run(RPM_QUERY_ARGV, frozenset({0})))
        versions = {(p.name, p.arch): p.version for p in installed}
        updates = parse_list_updates(await self._run(LIST_UPDATES_ARGV), versions)
        patches = parse_list_patches(await self._run(LIST_PATCHES_ARGV))
        pending, reasons = await self._reboot_state()
        return ScanResult("linux", self.name, tuple(installed), (*patches, *updates), pending, reasons)

    async def _reboot_state(self) -> tuple[bool, tuple[str, ...]]:
        reasons = []
        try:
            result = await self.runner.run(list(NEEDS_REBOOTING_ARGV), env=C_LOCALE, timeout=self.scan_timeout)
            if result.exit_code == EXIT_INF_REBOOT_NEEDED:
                reasons.append("zypper needs-rebooting: core libraries or services were updated")
        except Unavailable as exc:
            log.debug("zypper needs-rebooting unavailable: %s", exc)
        if self.reboot_needed_path.exists():
            reasons.append(f"{self.reboot_needed_path} exists")
        return bool(reasons), tuple(reasons)

    async def install(self, names: list[str]) -> list[InstallOutcome]:
        """Raises:
        InvalidInput: a name is empty or has control characters.
        Unavailable: zypper is missing or locked, or a scan failed.
        """
        requested = requested_names(names)
        if not requested:
            return []
        before = await self._scan(self.refresh)
        specs = {name: [install_spec(u) for u in before.update_named(name)] for name in requested}
        specs = {name: args for name, args in specs.items() if args}
        failures = await run_installs(
            self.runner,
            specs,
            lambda args: [*INSTALL_ARGV_PREFIX, *args],
            _install_failure,
            env=C_LOCALE,
            timeout=self.install_timeout,
        )
        after = await self._scan(False)
        return judge_by_rescan(requested, before, after, failures)


def _raise_if_locked(result: CommandResult) -> None:
    if result.exit_code == EXIT_ZYPP_LOCKED:
        raise Unavailable(
            f"the zypp database is locked: {last_lines(result.stderr, 2)}",
            "another zypper, YaST or PackageKit run holds the lock; retry when it has finished",
        )


def _install_failure(result: CommandResult) -> str | None:
    if result.exit_code in _INSTALL_OK:
        return None
    _raise_if_locked(result)
    detail = last_lines(result.stderr) or last_lines(result.stdout) or "no output"
    return f"zypper install failed (exit {result.exit_code}): {detail}"
