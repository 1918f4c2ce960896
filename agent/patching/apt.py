"""Debian and Ubuntu patching with apt: dpkg-query for what is installed, apt-get to simulate and install.

Scan
    ``apt-get update`` (unless ``refresh=False``), ``dpkg-query -W`` for installed packages, then
    ``apt-get --simulate --with-new-pkgs upgrade``: every ``Inst name [old] (new origins [arch])``
    line with an old version is an available update. Packages the simulation would newly install
    (no ``[old]``) are dependencies, not updates, and are left out; packages apt keeps back are
    not listed by the simulation either (``apt-get install`` of them would still work).

Classification (apt has no advisories, so it comes from the pocket an update is published in)
    ``security``     any origin is a security pocket: ``Debian-Security:12/bookworm-security``,
                     ``Ubuntu:22.04/jammy-security``
    ``bugfix``       otherwise, any origin is an ``-updates`` pocket (Ubuntu SRUs, Debian stable-updates)
    ``enhancement``  otherwise, any origin is a ``-backports`` pocket
    ``other``        anything else, including Debian point releases (``Debian:12.15/stable``), which
                     mix bug and security fixes that apt does not tell apart
    Severity is ``unspecified`` and the release date ``None``: apt publishes neither.

Install
    ``apt-get install --only-upgrade pkg:arch=candidate ...`` with ``DEBIAN_FRONTEND=noninteractive``
    and dpkg told to keep existing config files, for exactly the approved packages at the versions
    the pre-install scan saw; then a rescan decides each outcome.

Reboot pending
    ``/var/run/reboot-required`` exists (written by update-notifier/unattended-upgrades hooks); the
    packages in ``/var/run/reboot-required.pkgs`` are the reasons.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from fleetops.agent.patching.diagnostics import command_failed, command_text, last_lines, unreadable_output
from fleetops.agent.patching.interfaces import CommandResult, CommandRunner
from fleetops.agent.patching.models import InstallOutcome, Package, ScanResult, Update
from fleetops.agent.patching.outcomes import judge_by_rescan, requested_names, run_installs
from fleetops.agent.patching.process import C_LOCALE, SubprocessRunner
from fleetops.common.errors import Unavailable
from fleetops.common.patching import Classification

log = logging.getLogger(__name__)

DPKG_QUERY_ARGV: Final = (
    "dpkg-query",
    "-W",
    "-f",
    "${Package}\\t${Version}\\t${Architecture}\\t${db:Status-Abbrev}\\n",
)
SIMULATE_UPGRADE_ARGV: Final = (
    "apt-get", "--simulate", "--with-new-pkgs", "-o", "Debug::NoLocking=1",
    "-o", "APT::Get::Show-User-Simulation-Note=false", "upgrade",
)  # fmt: skip
REFRESH_ARGV: Final = ("apt-get", "update", "-q")
LOCK_WAIT_SECONDS: Final = 300
INSTALL_ARGV_PREFIX: Final = (
    "apt-get", "install", "-y", "-q", "--only-upgrade", "--no-install-recommends",
    "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
    "-o", f"DPkg::Lock::Timeout={LOCK_WAIT_SECONDS}",
)  # fmt: skip
#: Environment for apt: no prompts from debconf or apt-listchanges, untranslated output.
APT_ENV: Final = {**C_LOCALE, "DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none"}
REBOOT_REQUIRED_PATH: Final = Path("/var/run/reboot-required")

_INST = re.compile(
    r"^Inst (?P<name>\S+) (?:\[(?P<old>[^\]]*)\] )?\((?P<new>\S+)(?: (?P<origins>.*?))? \[(?P<arch>[^\]]+)\]\)(?: .*)?$"
)
_SUMMARY = re.compile(r"^\d+ upgraded, \d+ newly installed, \d+ to remove and \d+ not upgraded\.$", re.MULTILINE)
_LOCKED = re.compile(r"Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock")


# --------------------------------------------------------------------------------------------------
# Parsers (pure; tested against recorded output)


def parse_dpkg_query(text: str) -> list[Package]:
    """Installed packages from ``dpkg-query -W`` with :data:`DPKG_QUERY_ARGV`'s format.

    Only packages whose status is "installed" (second letter of ``db:Status-Abbrev`` is ``i``)
    count; removed packages with config files left (``rc``) and half-installed ones do not.

    Raises:
        InvalidInput: a line does not have the four tab-separated fields, or nothing is listed.
    """
    command = command_text(DPKG_QUERY_ARGV)
    packages = []
    rows = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 4 or not fields[0] or len(fields[3].strip()) < 2:
            raise unreadable_output(
                command, f"line {number} is not 'package<TAB>version<TAB>arch<TAB>status': {line!r}"
            )
        rows += 1
        name, version, arch, status = fields
        if status[1] == "i" and version:
            packages.append(Package(name, version, arch))
    if rows == 0:
        raise unreadable_output(command, "it listed no packages")
    return packages


def classify_origins(origins: Sequence[str]) -> Classification:
    """The classification of an update published in ``origins`` ("Label:version/suite" each); see the module doc."""
    suites = [origin.rpartition("/")[2].lower() for origin in origins]
    labels = [origin.partition(":")[0].lower() for origin in origins]
    if any(s.endswith("-security") for s in suites) or any(label.endswith("-security") for label in labels):
        return Classification.SECURITY
    if any(s.endswith("-updates") for s in suites):
        return Classification.BUGFIX
    if any(s.endswith("-backports") for s in suites):
        return Classification.ENHANCEMENT
    return Classification.OTHER


def parse_simulated_upgrade(text: str) -> list[Update]:
    """Available updates from ``apt-get --simulate upgrade`` output (its ``Inst`` lines).

    Raises:
        InvalidInput: the summary line ("N upgraded, ...") is missing, or an ``Inst`` line is malformed.
    """
    command = command_text(SIMULATE_UPGRADE_ARGV)
    if not _SUMMARY.search(text):
        raise unreadable_output(command, "the summary line 'N upgraded, N newly installed, ...' is missing")
    updates = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith("Inst "):
            continue
        match = _INST.match(line.rstrip())
        if match is None:
            raise unreadable_output(command, f"line {number} is not 'Inst name [old] (new origin [arch])': {line!r}")
        if match["old"] is None:
            continue  # a new dependency, not an update of something installed
        origins = [o.strip() for o in (match["origins"] or "").split(",") if o.strip()]
        updates.append(
            Update(
                name=match["name"].partition(":")[0],
                installed_version=match["old"],
                candidate_version=match["new"],
                arch=match["arch"],
                repository=", ".join(origins),
                classification=classify_origins(origins),
            )
        )
    return updates


def read_reboot_required(path: Path = REBOOT_REQUIRED_PATH) -> tuple[bool, tuple[str, ...]]:
    """Whether ``path`` says a reboot is pending, and why (the packages in ``path``.pkgs)."""
    if not path.exists():
        return False, ()
    pkgs_path = path.with_name(path.name + ".pkgs")
    try:
        names = pkgs_path.read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        names = []
    reasons = tuple(f"{name} was updated" for name in dict.fromkeys(names))
    return True, reasons or (f"{path} exists",)


def install_spec(update: Update) -> str:
    """The ``apt-get install`` argument pinning ``update`` to its candidate: ``name:arch=version``."""
    qualifier = "" if update.arch in ("all", "") else f":{update.arch}"
    return f"{update.name}{qualifier}={update.candidate_version}"


# --------------------------------------------------------------------------------------------------
# The provider


class AptProvider:
    """Patches Debian and Ubuntu hosts with apt-get and dpkg.

    Args:
        runner: runs the programs (a fake in tests).
        refresh: run ``apt-get update`` before each scan.
        reboot_required_path: the flag file for a pending reboot.
    """

    name = "apt"
    os_family = "linux"

    def __init__(
        self,
        runner: CommandRunner | None = None,
        refresh: bool = True,
        reboot_required_path: Path = REBOOT_REQUIRED_PATH,
        scan_timeout: float = 900.0,
        install_timeout: float = 3600.0,
    ) -> None:
        self.runner: CommandRunner = runner or SubprocessRunner()
        self.refresh = refresh
        self.reboot_required_path = reboot_required_path
        self.scan_timeout = scan_timeout
        self.install_timeout = install_timeout

    async def _run(self, argv: Sequence[str], timeout: float | None = None) -> CommandResult:
        return await self.runner.run(list(argv), env=APT_ENV, timeout=timeout or self.scan_timeout)

    async def _checked(self, argv: Sequence[str]) -> str:
        result = await self._run(argv)
        if result.exit_code != 0:
            _raise_if_locked(result)
            raise command_failed(command_text(argv), result)
        return result.stdout

    async def scan(self) -> ScanResult:
        """Raises:
        Unavailable: apt-get or dpkg-query failed, or the package database is locked.
        InvalidInput: their output could not be read.
        """
        return await self._scan(refresh=self.refresh)

    async def _scan(self, refresh: bool) -> ScanResult:
        if refresh:
            await self._checked(REFRESH_ARGV)
        installed = parse_dpkg_query(await self._checked(DPKG_QUERY_ARGV))
        updates = parse_simulated_upgrade(await self._checked(SIMULATE_UPGRADE_ARGV))
        pending, reasons = read_reboot_required(self.reboot_required_path)
        return ScanResult("linux", self.name, tuple(installed), tuple(updates), pending, reasons)

    async def install(self, names: list[str]) -> list[InstallOutcome]:
        """Raises:
        InvalidInput: a name is empty or has control characters.
        Unavailable: apt is missing or locked, or a scan failed.
        """
        requested = requested_names(names)
        if not requested:
            return []
        before = await self._scan(refresh=self.refresh)
        specs = {name: [install_spec(u) for u in before.update_named(name)] for name in requested}
        specs = {name: args for name, args in specs.items() if args}
        failures = await run_installs(
            self.runner,
            specs,
            lambda args: [*INSTALL_ARGV_PREFIX, *args],
            install_failure_reason,
            env=APT_ENV,
            timeout=self.install_timeout,
        )
        after = await self._scan(refresh=False)
        return judge_by_rescan(requested, before, after, failures)


def _raise_if_locked(result: CommandResult) -> None:
    if _LOCKED.search(result.stderr):
        raise Unavailable(
            f"the dpkg/apt database is locked by another process: {last_lines(result.stderr, 2)}",
            "another apt, dpkg or unattended-upgrades run holds the lock; retry when it has finished",
        )


def install_failure_reason(result: CommandResult) -> str | None:
    """None when ``apt-get install`` worked, else one line with its ``E:`` errors.

    Raises:
        Unavailable: the dpkg/apt database is locked by another process.
    """
    if result.exit_code == 0:
        return None
    _raise_if_locked(result)
    errors = [line[3:].strip() for line in result.stderr.splitlines() if line.startswith("E: ")]
    detail = "; ".join(errors) or last_lines(result.stderr) or last_lines(result.stdout) or "no output"
    return f"apt-get install failed (exit {result.exit_code}): {detail}"
