"""Homebrew patching on macOS: outdated formulae and casks, upgraded by name.

Scan
    ``brew list --versions --formula`` and ``--cask`` for what is installed (the last version
    listed counts); ``brew outdated --json=v2`` for updates. Old Homebrew printed a cask's
    ``installed_versions`` as one comma-separated string, newer ones a list; both are read.
    Pinned formulae are left out (``brew upgrade`` skips them). Homebrew has no classification,
    severity or release date: ``other``, ``unspecified``, ``None``. Casks whose installed and
    current versions are equal (``latest``) are left out: there is nothing to upgrade to.
    ``brew update`` runs first when ``refresh=True``.

Install
    ``brew upgrade --formula NAME ...`` and ``brew upgrade --cask NAME ...`` for exactly the approved
    names, with auto-update and cleanup hints off. Homebrew refuses to run as root; an agent running
    as root passes ``user=`` (the owner of the Homebrew prefix) and every command runs through
    ``sudo -u USER -H``.

Reboot pending
    Never: Homebrew packages do not need one.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any, Final

from fleetops.agent.patching.diagnostics import command_failed, command_text, last_lines, unreadable_output
from fleetops.agent.patching.interfaces import CommandResult, CommandRunner
from fleetops.agent.patching.models import InstallOutcome, Package, ScanResult, Update
from fleetops.agent.patching.outcomes import judge_by_rescan, requested_names, run_installs
from fleetops.agent.patching.process import C_LOCALE, SubprocessRunner
from fleetops.common.errors import Unavailable

OUTDATED_ARGV: Final = ("brew", "outdated", "--json=v2")
LIST_FORMULAE_ARGV: Final = ("brew", "list", "--versions", "--formula")
LIST_CASKS_ARGV: Final = ("brew", "list", "--versions", "--cask")
REFRESH_ARGV: Final = ("brew", "update", "--quiet")
BREW_ENV: Final = {
    **C_LOCALE,
    "HOMEBREW_NO_AUTO_UPDATE": "1",
    "HOMEBREW_NO_ENV_HINTS": "1",
    "HOMEBREW_NO_ANALYTICS": "1",
    "HOMEBREW_NO_INSTALL_CLEANUP": "1",
    "NONINTERACTIVE": "1",
}
FORMULA: Final = "formula"
CASK: Final = "cask"


def parse_list_versions(text: str, command: str = command_text(LIST_FORMULAE_ARGV)) -> list[Package]:
    """Installed formulae or casks from ``brew list --versions``: "name [(!)] version [version...]".

    Raises:
        InvalidInput: a line has a name but no version.
    """
    packages = []
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = [f for f in raw.split() if f != "(!)"]  # "(!)": installed but its formula/cask is gone
        if not fields:
            continue
        if len(fields) < 2:
            raise unreadable_output(command, f"line {number} has no version: {raw.strip()!r}")
        packages.append(Package(fields[0], fields[-1], ""))
    return packages


def _versions(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(", ") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ValueError(f"installed_versions is neither a string nor a list of strings: {value!r}")


def parse_outdated(text: str) -> list[Update]:
    """Updates from ``brew outdated --json=v2``.

    Raises:
        InvalidInput: the text is not JSON, lacks the "formulae"/"casks" lists, or an entry lacks
            its name or versions.
    """
    command = command_text(OUTDATED_ARGV)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise unreadable_output(command, f"not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(document, dict) or not all(isinstance(document.get(k), list) for k in ("formulae", "casks")):
        raise unreadable_output(command, "expected an object with 'formulae' and 'casks' lists")
    updates = []
    for kind, key in ((FORMULA, "formulae"), (CASK, "casks")):
        for entry in document[key]:
            try:
                name, current = entry["name"], entry["current_version"]
                installed = _versions(entry["installed_versions"])
                if not isinstance(name, str) or not isinstance(current, str):
                    raise ValueError("name and current_version must be strings")
            except (KeyError, TypeError, ValueError) as exc:
                raise unreadable_output(command, f"a {kind} entry is malformed ({exc}): {entry!r}") from None
            if entry.get("pinned") or (installed and installed[-1] == current):
                continue
            updates.append(
                Update(
                    name=name,
                    installed_version=installed[-1] if installed else None,
                    candidate_version=current,
                    arch="",
                    repository=kind,
                )
            )
    return updates


class HomebrewProvider:
    """Upgrades Homebrew formulae and casks.

    Args:
        runner: runs the programs (a fake in tests).
        refresh: run ``brew update`` before each scan.
        user: run brew as this user (through sudo), for an agent running as root.
    """

    name = "homebrew"
    os_family = "darwin"

    def __init__(
        self,
        runner: CommandRunner | None = None,
        refresh: bool = True,
        user: str | None = None,
        scan_timeout: float = 900.0,
        install_timeout: float = 3600.0,
    ) -> None:
        self.runner: CommandRunner = runner or SubprocessRunner()
        self.refresh = refresh
        self.user = user
        self.scan_timeout = scan_timeout
        self.install_timeout = install_timeout

    def argv(self, brew_argv: Sequence[str]) -> list[str]:
        """``brew_argv`` as run: through ``sudo -u USER -H`` when a user is configured."""
        prefix = ["sudo", "-u", self.user, "-H", "--"] if self.user else []
        return [*prefix, *brew_argv]

    def _upgrade_argv(self, kind: str, names: list[str]) -> list[str]:
        return self.argv(["brew", "upgrade", f"--{kind}", *names])

    async def _stdout(self, brew_argv: Sequence[str]) -> str:
        result = await self.runner.run(self.argv(brew_argv), env=BREW_ENV, timeout=self.scan_timeout)
        if result.exit_code != 0:
            _raise_if_root(result)
            raise command_failed(command_text(brew_argv), result)
        return result.stdout

    async def scan(self) -> ScanResult:
        """Raises:
        Unavailable: brew failed or refuses to run as root.
        InvalidInput: its output could not be read.
        """
        return await self._scan(self.refresh)

    async def _scan(self, refresh: bool) -> ScanResult:
        if refresh:
            await self._stdout(REFRESH_ARGV)
        installed = parse_list_versions(await self._stdout(LIST_FORMULAE_ARGV))
        installed += parse_list_versions(await self._stdout(LIST_CASKS_ARGV), command_text(LIST_CASKS_ARGV))
        updates = parse_outdated(await self._stdout(OUTDATED_ARGV))
        return ScanResult("darwin", self.name, tuple(installed), tuple(updates), False, ())

    async def install(self, names: list[str]) -> list[InstallOutcome]:
        """Raises:
        InvalidInput: a name is empty or has control characters.
        Unavailable: brew is missing or refuses to run, or a scan failed.
        """
        requested = requested_names(names)
        if not requested:
            return []
        before = await self._scan(self.refresh)
        failures: dict[str, str] = {}
        for kind in (FORMULA, CASK):
            specs = {n: [n] for n in requested if any(u.repository == kind for u in before.update_named(n))}
            failures |= await run_installs(
                self.runner,
                specs,
                functools.partial(self._upgrade_argv, kind),
                _install_failure,
                env=BREW_ENV,
                timeout=self.install_timeout,
            )
        after = await self._scan(False)
        return judge_by_rescan(requested, before, after, failures)


def _raise_if_root(result: CommandResult) -> None:
    if "as root" in result.stderr:
        raise Unavailable(
            f"brew refuses to run as root: {last_lines(result.stderr, 1)}",
            "configure the Homebrew provider with user= set to the owner of the Homebrew prefix",
        )


def _install_failure(result: CommandResult) -> str | None:
    if result.exit_code == 0:
        return None
    _raise_if_root(result)
    detail = last_lines(result.stderr) or last_lines(result.stdout) or "no output"
    return f"brew upgrade failed (exit {result.exit_code}): {detail}"
