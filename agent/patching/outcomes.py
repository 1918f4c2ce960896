"""The install steps every provider shares: check the request, run it, judge it by a rescan.

:func:`requested_names`     validates and de-duplicates the approved list
:func:`run_installs`        one batch run; if it fails, one run per patch so one bad patch names itself
:func:`judge_by_rescan`     compares the scans before and after into one ``InstallOutcome`` per patch

A package manager's exit status says little about each patch (apt fails the whole batch for one
bad version; dnf and zypper are transactional), so the verdict comes from the rescan: an update
that is no longer offered, or whose candidate version is now installed, was installed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence

from fleetops.agent.patching.interfaces import CommandResult, CommandRunner
from fleetops.agent.patching.models import InstallOutcome, ScanResult, Update
from fleetops.common.errors import InvalidInput

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

#: Says whether a run worked: None when it did, else a one-line reason. May raise Unavailable
#: (for a lock held by another package manager), which stops the whole install.
RunCheck = Callable[[CommandResult], "str | None"]


def requested_names(names: Sequence[str]) -> list[str]:
    """``names`` without repeats, in order.

    Raises:
        InvalidInput: a name is not a string, is empty, or holds control characters.
    """
    seen: dict[str, None] = {}
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput(f"patch name {name!r} is empty", "name each patch as the scan reported it")
        if _CONTROL.search(name):
            raise InvalidInput(f"patch name {name!r} has control characters", "name each patch as the scan reported it")
        seen.setdefault(name, None)
    return list(seen)


async def run_installs(
    runner: CommandRunner,
    specs: Mapping[str, Sequence[str]],
    build_argv: Callable[[list[str]], list[str]],
    check: RunCheck,
    *,
    env: Mapping[str, str],
    timeout: float,
) -> dict[str, str]:
    """Install every patch of ``specs`` (patch name -> package-manager arguments) in one run.

    If that run fails and there was more than one patch, each patch is retried on its own so the
    failure lands on the patch that caused it. Returns the failure reason per patch that failed.

    Raises:
        Unavailable: the package manager is missing, busy, or timed out.
    """
    arguments = [argument for args in specs.values() for argument in args]
    if not arguments:
        return {}
    reason = check(await runner.run(build_argv(arguments), env=env, timeout=timeout))
    if reason is None:
        return {}
    if len(specs) == 1:
        return {name: reason for name in specs}
    failures: dict[str, str] = {}
    for name, args in specs.items():
        single_reason = check(await runner.run(build_argv(list(args)), env=env, timeout=timeout))
        if single_reason is not None:
            failures[name] = single_reason
    return failures


def not_applicable(name: str, before: ScanResult) -> InstallOutcome:
    """The outcome for a requested name the scan offers no update for."""
    installed = before.installed_named(name)
    if installed:
        version = installed[0].version
        return InstallOutcome(
            name, "not_applicable", version, f"no update is available for {name} (installed {version})"
        )
    return InstallOutcome(name, "not_applicable", None, f"{name} is not offered as an update on this host")


def _installed_version(scan: ScanResult, update: Update) -> str | None:
    matches = scan.installed_named(update.name)
    same_arch = [p for p in matches if p.arch == update.arch]
    chosen = same_arch or matches
    return chosen[0].version if chosen else None


def _outcome(
    name: str, wanted: list[Update], before: ScanResult, after: ScanResult, failure: str | None, pending_restart: bool
) -> InstallOutcome:
    still_offered = {u.arch for u in after.update_named(name)}
    tracks_installed = bool(before.installed_named(name))
    done = True
    for update in wanted:
        version_now = _installed_version(after, update)
        if version_now is not None and version_now == update.candidate_version:
            continue
        if update.arch not in still_offered and (version_now is not None or not tracks_installed):
            continue  # no longer offered and, where the manager tracks it, still installed
        done = False
    first = wanted[0]
    version_after = _installed_version(after, first)
    if done:
        note = "installed; it takes effect after a restart" if pending_restart or first.reboot_required else ""
        return InstallOutcome(name, "installed", version_after or first.candidate_version, note)
    if pending_restart and failure is None:
        return InstallOutcome(name, "installed", first.candidate_version, "installed; it completes after a restart")
    if failure is None:
        if tracks_installed and version_after is None:
            failure = f"{name} is no longer installed after the install"
        else:
            failure = (
                f"{name} is still at {version_after or 'its old version'}; {first.candidate_version} was not installed"
            )
    return InstallOutcome(name, "failed", version_after, failure)


def judge_by_rescan(
    requested: Sequence[str],
    before: ScanResult,
    after: ScanResult,
    failures: Mapping[str, str],
    pending_restart: Collection[str] = (),
) -> list[InstallOutcome]:
    """One outcome per requested name, from the scans before and after the install.

    ``failures`` holds the package manager's own reason per failed patch; ``pending_restart`` names
    patches the installer reported done but that finish at the next boot (Windows, macOS).
    """
    outcomes = []
    for name in requested:
        wanted = before.update_named(name)
        if not wanted:
            outcomes.append(not_applicable(name, before))
            continue
        outcomes.append(_outcome(name, wanted, before, after, failures.get(name), name in pending_restart))
    return outcomes
