"""macOS patching with softwareupdate(8): Apple's OS, Safari, XProtect and Command Line Tools updates.

Scan
    ``softwareupdate --list`` (``--no-scan`` reuses the last scan when ``refresh=False``), in the
    format of macOS 10.15 and later::

        * Label: macOS Sonoma 14.6.1-23G93
            Title: macOS Sonoma 14.6.1, Version: 14.6.1, Size: 6327722K, Recommended: YES, Action: restart,

    Each entry is an update named by its label (what ``--install`` takes). ``Action: restart`` or
    ``shut down`` marks it as needing a reboot. Apple publishes no classification or severity
    here: titles naming a "Security Update" or "Security Response" are ``security``, everything
    else ``other``; the release date is unknown. The pre-10.15 layout is refused with a clear error.
    The installed "package" is macOS itself (``sw_vers -productVersion``, ``uname -m``).

Install
    ``softwareupdate --install --no-scan --agree-to-license LABEL ...``: exactly the approved labels,
    never ``--all``, never ``--restart``. Updates that need a restart report ``installed`` with a
    note once softwareupdate succeeded; they finish at the next boot, which is not this module's job.
    On Apple silicon, OS updates may require an administrator's credentials; they then fail here.

Reboot pending
    macOS exposes no pending-reboot flag that softwareupdate reports; always ``False``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from fleetops.agent.patching.diagnostics import command_failed, command_text, last_lines, unreadable_output
from fleetops.agent.patching.interfaces import CommandResult, CommandRunner
from fleetops.agent.patching.models import InstallOutcome, Package, ScanResult, Update
from fleetops.agent.patching.outcomes import judge_by_rescan, requested_names, run_installs
from fleetops.agent.patching.process import C_LOCALE, SubprocessRunner
from fleetops.common.patching import Classification

LIST_ARGV: Final = ("softwareupdate", "--list")
INSTALL_ARGV_PREFIX: Final = ("softwareupdate", "--install", "--no-scan", "--agree-to-license")
OS_VERSION_ARGV: Final = ("sw_vers", "-productVersion")
ARCH_ARGV: Final = ("uname", "-m")

_NO_UPDATES: Final = "No new software available."
_FOUND: Final = "Software Update found the following new or updated software:"
_LABEL = re.compile(r"^\s*[*-] Label: (?P<label>.+?)\s*$")
_OLD_ENTRY = re.compile(r"^\s+[*-] \S")  # macOS 10.14 and older: "   * Label-1.0" without "Label:"
_KEYS = "Title|Version|Size|Recommended|Action|Deferred"
_FIELD = re.compile(rf"(?P<key>{_KEYS}): (?P<value>.*?),?\s*(?=(?:{_KEYS}): |$)")
_SECURITY_TITLE = re.compile(r"Security (Update|Response)", re.IGNORECASE)


def parse_softwareupdate_list(text: str, os_version: str | None = None) -> list[Update]:
    """The updates in ``softwareupdate --list`` output (stdout and stderr together).

    ``os_version`` becomes the installed version of macOS updates (titles starting "macOS").

    Raises:
        InvalidInput: the output is empty, in the pre-10.15 layout, or an entry lacks its Title line.
    """
    command = command_text(LIST_ARGV)
    lines = text.splitlines()
    if _NO_UPDATES in text and _FOUND not in text:
        return []
    if _FOUND not in text:
        first = next((line.strip() for line in lines if line.strip()), "nothing")
        raise unreadable_output(command, f"neither a list of updates nor {_NO_UPDATES!r}; it said {first!r}")
    updates = []
    for index, line in enumerate(lines):
        label = _LABEL.match(line)
        if label is None:
            if _OLD_ENTRY.match(line) and "Label:" not in line and "Title:" not in line:
                raise unreadable_output(
                    command, "this is the layout of macOS 10.14 and older, which fleetops does not read"
                )
            continue
        details = lines[index + 1] if index + 1 < len(lines) else ""
        fields = {m["key"]: m["value"].strip() for m in _FIELD.finditer(details.strip())}
        if "Title" not in fields:
            raise unreadable_output(command, f"the entry {label['label']!r} has no 'Title:' line after it")
        title = fields["Title"]
        updates.append(
            Update(
                name=label["label"],
                installed_version=os_version if title.startswith("macOS") else None,
                candidate_version=fields.get("Version", ""),
                arch="",
                repository="Apple Software Update",
                classification=Classification.SECURITY if _SECURITY_TITLE.search(title) else Classification.OTHER,
                title=title,
                reboot_required=fields.get("Action", "").lower() in ("restart", "shut down"),
            )
        )
    return updates


class SoftwareUpdateProvider:
    """Patches macOS with Apple's softwareupdate tool.

    Args:
        runner: runs the programs (a fake in tests).
        refresh: ask Apple's servers on each scan (otherwise reuse the last scan's results).
    """

    name = "softwareupdate"
    os_family = "darwin"

    def __init__(
        self,
        runner: CommandRunner | None = None,
        refresh: bool = True,
        scan_timeout: float = 900.0,
        install_timeout: float = 7200.0,
    ) -> None:
        self.runner: CommandRunner = runner or SubprocessRunner()
        self.refresh = refresh
        self.scan_timeout = scan_timeout
        self.install_timeout = install_timeout

    async def _output(self, argv: Sequence[str]) -> CommandResult:
        result = await self.runner.run(list(argv), env=C_LOCALE, timeout=self.scan_timeout)
        if result.exit_code != 0:
            raise command_failed(command_text(argv), result)
        return result

    async def scan(self) -> ScanResult:
        """Raises:
        Unavailable: softwareupdate, sw_vers or uname failed.
        InvalidInput: softwareupdate's output could not be read.
        """
        return await self._scan(self.refresh)

    async def _scan(self, refresh: bool) -> ScanResult:
        os_version = (await self._output(OS_VERSION_ARGV)).stdout.strip()
        arch = (await self._output(ARCH_ARGV)).stdout.strip()
        listing = await self._output([*LIST_ARGV, *([] if refresh else ["--no-scan"])])
        updates = parse_softwareupdate_list(listing.stdout + "\n" + listing.stderr, os_version or None)
        installed = (Package("macOS", os_version, arch),) if os_version else ()
        return ScanResult("darwin", self.name, installed, tuple(updates), False, ())

    async def install(self, names: list[str]) -> list[InstallOutcome]:
        """Raises:
        InvalidInput: a name is empty or has control characters.
        Unavailable: softwareupdate is missing, or a scan failed.
        """
        requested = requested_names(names)
        if not requested:
            return []
        before = await self._scan(self.refresh)
        specs = {name: [name] for name in requested if before.update_named(name)}
        failures = await run_installs(
            self.runner,
            specs,
            lambda labels: [*INSTALL_ARGV_PREFIX, *labels],
            _install_failure,
            env=C_LOCALE,
            timeout=self.install_timeout,
        )
        after = await self._scan(False)
        needs_restart = {
            n for n in specs if n not in failures and any(u.reboot_required for u in before.update_named(n))
        }
        return judge_by_rescan(requested, before, after, failures, needs_restart)


def _install_failure(result: CommandResult) -> str | None:
    if result.exit_code == 0:
        return None
    detail = last_lines(result.stderr) or last_lines(result.stdout) or "no output"
    return f"softwareupdate --install failed (exit {result.exit_code}): {detail}"
