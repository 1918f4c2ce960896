"""Windows patching through the Windows Update Agent COM API, driven by PowerShell scripts kept here.

Scan (:data:`SCAN_SCRIPT`)
    ``Microsoft.Update.Session`` -> ``CreateUpdateSearcher().Search("IsInstalled=0 and
    Type='Software' and IsHidden=0")``; per update the script emits its id, title, KB numbers,
    MSRC severity, categories, last deployment change time and whether it needs a reboot, plus the
    installed hotfixes (``Win32_QuickFixEngineering``) and the pending-reboot registry evidence, as
    one JSON object that :func:`parse_scan_json` reads.

    An update is named ``KB<number>`` (its update id when it has no KB). Classification comes from
    its Windows classification category:
        Security Updates                                           -> security
        Critical Updates, Updates, Update Rollups, Service Packs   -> bugfix
        Feature Packs, Upgrades, Tools, Definition Updates, Drivers -> enhancement
        none of these                                              -> other
    Severity is the MSRC severity (Critical, Important, Moderate, Low), ``unspecified`` when
    Microsoft gives none (non-security updates). The release date is ``LastDeploymentChangeTime``.

Install (:data:`INSTALL_SCRIPT`)
    The approved names travel in the ``FLEETOPS_WU_TARGETS`` environment variable (JSON); the
    script selects exactly the updates whose KB or update id is listed, accepts their EULAs,
    downloads them with ``UpdateDownloader`` and installs them with ``UpdateInstaller``, never
    rebooting, and reports each update's result code. A rescan then decides each outcome; an update
    Windows installed but that finishes at the next boot is ``installed`` with a note.

Reboot pending
    Any of ``HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\RebootPending``,
    ``HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update\\RebootRequired``
    or a non-empty ``PendingFileRenameOperations`` value under Session Manager.

Scripts run as ``powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand``
so no quoting survives the Windows command line.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from fleetops.agent.patching.diagnostics import command_failed, last_lines, unreadable_output
from fleetops.agent.patching.interfaces import CommandRunner
from fleetops.agent.patching.models import InstallOutcome, Package, ScanResult, Update
from fleetops.agent.patching.outcomes import judge_by_rescan, requested_names
from fleetops.agent.patching.process import SubprocessRunner
from fleetops.common.patching import Classification, Severity

SCAN_SCRIPT: Final = r"""
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$reasons = @()
foreach ($key in @(
    'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending',
    'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired')) {
    if (Test-Path -LiteralPath $key) { $reasons += $key }
}
$sessionManager = 'HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager'
$renames = Get-ItemProperty -LiteralPath $sessionManager -Name PendingFileRenameOperations -ErrorAction SilentlyContinue
if ($renames -and $renames.PendingFileRenameOperations) { $reasons += "$sessionManager\PendingFileRenameOperations" }
$session = New-Object -ComObject Microsoft.Update.Session
$session.ClientApplicationID = 'fleetops'
$searcher = $session.CreateUpdateSearcher()
$found = $searcher.Search("IsInstalled=0 and Type='Software' and IsHidden=0")
$updates = @(foreach ($u in $found.Updates) {
    $changed = $null
    if ($u.LastDeploymentChangeTime) { $changed = $u.LastDeploymentChangeTime.ToUniversalTime().ToString('o') }
    [ordered]@{
        UpdateID = [string]$u.Identity.UpdateID
        RevisionNumber = [int]$u.Identity.RevisionNumber
        Title = [string]$u.Title
        KBArticleIDs = @($u.KBArticleIDs | ForEach-Object { [string]$_ })
        MsrcSeverity = $u.MsrcSeverity
        Categories = @($u.Categories | ForEach-Object { [string]$_.Name })
        LastDeploymentChangeTime = $changed
        RebootRequired = ($u.InstallationBehavior.RebootBehavior -ne 0)
    }
})
$installed = @(Get-CimInstance -ClassName Win32_QuickFixEngineering | ForEach-Object {
    [ordered]@{ HotFixID = [string]$_.HotFixID }
})
$current = Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
$osVersion = '{0}.{1}' -f [Environment]::OSVersion.Version.ToString(3), $current.UBR
[ordered]@{
    OSVersion = $osVersion
    Updates = $updates
    Installed = $installed
    RebootPending = ($reasons.Count -gt 0)
    RebootReasons = @($reasons)
} | ConvertTo-Json -Depth 6 -Compress
"""

INSTALL_SCRIPT: Final = r"""
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$targets = @(ConvertFrom-Json $env:FLEETOPS_WU_TARGETS)
$session = New-Object -ComObject Microsoft.Update.Session
$session.ClientApplicationID = 'fleetops'
$searcher = $session.CreateUpdateSearcher()
$found = $searcher.Search("IsInstalled=0 and Type='Software' and IsHidden=0")
$selected = New-Object -ComObject Microsoft.Update.UpdateColl
$targetOf = @{}
foreach ($u in $found.Updates) {
    $keys = @([string]$u.Identity.UpdateID) + @($u.KBArticleIDs | ForEach-Object { 'KB' + $_ })
    $hits = @($keys | Where-Object { $targets -contains $_ })
    if ($hits.Count -gt 0) {
        if (-not $u.EulaAccepted) { $u.AcceptEula() }
        [void]$selected.Add($u)
        $targetOf[[string]$u.Identity.UpdateID] = $hits[0]
    }
}
$results = @()
if ($selected.Count -gt 0) {
    $downloader = $session.CreateUpdateDownloader()
    $downloader.Updates = $selected
    [void]$downloader.Download()
    $installer = $session.CreateUpdateInstaller()
    $installer.Updates = $selected
    $outcome = $installer.Install()
    for ($i = 0; $i -lt $selected.Count; $i++) {
        $u = $selected.Item($i)
        $r = $outcome.GetUpdateResult($i)
        $results += [ordered]@{
            Target = $targetOf[[string]$u.Identity.UpdateID]
            Title = [string]$u.Title
            ResultCode = [int]$r.ResultCode
            HResult = [int]$r.HResult
            RebootRequired = [bool]$r.RebootRequired
        }
    }
}
[ordered]@{ Results = @($results) } | ConvertTo-Json -Depth 4 -Compress
"""

POWERSHELL: Final = ("powershell.exe", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-EncodedCommand")
TARGETS_VARIABLE: Final = "FLEETOPS_WU_TARGETS"

_CLASSIFICATIONS: Final[dict[str, Classification]] = {
    "security updates": Classification.SECURITY,
    "critical updates": Classification.BUGFIX,
    "updates": Classification.BUGFIX,
    "update rollups": Classification.BUGFIX,
    "service packs": Classification.BUGFIX,
    "feature packs": Classification.ENHANCEMENT,
    "upgrades": Classification.ENHANCEMENT,
    "tools": Classification.ENHANCEMENT,
    "definition updates": Classification.ENHANCEMENT,
    "drivers": Classification.ENHANCEMENT,
}
_SEVERITIES: Final[dict[str, Severity]] = {
    "critical": Severity.CRITICAL,
    "important": Severity.IMPORTANT,
    "moderate": Severity.MODERATE,
    "low": Severity.LOW,
}
#: IUpdateInstallationResult.ResultCode (OperationResultCode)
_RESULT_NAMES: Final = {
    0: "not started",
    1: "in progress",
    2: "succeeded",
    3: "succeeded with errors",
    4: "failed",
    5: "aborted",
}
_SUCCEEDED: Final = frozenset({2, 3})


def powershell_argv(script: str) -> list[str]:
    """The argv running ``script`` with Windows PowerShell (``-EncodedCommand``: UTF-16LE, base64)."""
    return [*POWERSHELL, base64.b64encode(script.encode("utf-16-le")).decode("ascii")]


def _json_object(text: str, what: str) -> dict[str, Any]:
    stripped = text.strip().lstrip("\ufeff")
    if not stripped:
        raise unreadable_output(what, "it printed nothing")
    try:
        document = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise unreadable_output(what, f"not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(document, dict):
        raise unreadable_output(what, f"expected a JSON object, got {type(document).__name__}")
    return document


def _as_list(value: Any) -> list[Any]:
    """ConvertTo-Json turns a one-element array into the element and an empty one into null."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _strings(value: Any, field: str, what: str) -> list[str]:
    items = _as_list(value)
    if not all(isinstance(item, str | int) for item in items):
        raise unreadable_output(what, f"{field} must be a list of strings, got {value!r}")
    return [str(item) for item in items]


def _time(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise unreadable_output(what, f"LastDeploymentChangeTime {value!r} is not an ISO 8601 time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _update(entry: Any, what: str) -> Update:
    if not isinstance(entry, dict) or not isinstance(entry.get("Title"), str):
        raise unreadable_output(what, f"an update has no Title: {entry!r}")
    kbs = ["KB" + kb.removeprefix("KB") for kb in _strings(entry.get("KBArticleIDs"), "KBArticleIDs", what)]
    update_id = entry.get("UpdateID")
    name = kbs[0] if kbs else update_id
    if not isinstance(name, str) or not name:
        raise unreadable_output(what, f"the update {entry['Title']!r} has neither a KB number nor an UpdateID")
    categories = _strings(entry.get("Categories"), "Categories", what)
    classes = [_CLASSIFICATIONS[c.lower()] for c in categories if c.lower() in _CLASSIFICATIONS]
    products = [c for c in categories if c.lower() not in _CLASSIFICATIONS]
    severity = entry.get("MsrcSeverity")
    revision = entry.get("RevisionNumber")
    return Update(
        name=name,
        installed_version=None,
        candidate_version=str(revision) if isinstance(revision, int) else "",
        arch="",
        repository=", ".join(products) or "Windows Update",
        classification=classes[0] if classes else Classification.OTHER,
        severity=_SEVERITIES.get(severity.lower(), Severity.UNSPECIFIED)
        if isinstance(severity, str)
        else Severity.UNSPECIFIED,
        release_date=_time(entry.get("LastDeploymentChangeTime"), what),
        advisory_ids=tuple(kbs),
        kb_id=kbs[0] if kbs else None,
        title=entry["Title"],
        reboot_required=entry.get("RebootRequired") is True,
    )


def parse_scan_json(text: str) -> ScanResult:
    """A scan from :data:`SCAN_SCRIPT`'s JSON output.

    Raises:
        InvalidInput: the output is not the script's JSON object, or an update lacks a title or name.
    """
    what = "the Windows Update scan script"
    document = _json_object(text, what)
    if "Updates" not in document:
        raise unreadable_output(what, "the 'Updates' list is missing")
    updates = tuple(_update(entry, what) for entry in _as_list(document["Updates"]))
    installed = [
        Package(entry["HotFixID"], "", "")
        for entry in _as_list(document.get("Installed"))
        if isinstance(entry, dict) and isinstance(entry.get("HotFixID"), str) and entry["HotFixID"]
    ]
    if isinstance(document.get("OSVersion"), str) and document["OSVersion"]:
        installed.insert(0, Package("Windows", document["OSVersion"], ""))
    reasons = tuple(_strings(document.get("RebootReasons"), "RebootReasons", what))
    return ScanResult(
        "windows",
        "windows_update",
        tuple(installed),
        updates,
        bool(reasons) or document.get("RebootPending") is True,
        reasons,
    )


@dataclass(frozen=True)
class InstallReport:
    """What :data:`INSTALL_SCRIPT` says about the targets it selected."""

    failures: dict[str, str]  # target -> reason
    needs_restart: set[str]  # installed, finishing at the next boot
    reported: set[str]  # every target the script selected


def parse_install_json(text: str) -> InstallReport:
    """The per-target results of :data:`INSTALL_SCRIPT`.

    Raises:
        InvalidInput: the output is not the script's JSON object.
    """
    what = "the Windows Update install script"
    document = _json_object(text, what)
    report = InstallReport({}, set(), set())
    for entry in _as_list(document.get("Results")):
        if not isinstance(entry, dict) or not isinstance(entry.get("Target"), str):
            raise unreadable_output(what, f"a result has no Target: {entry!r}")
        target, code = entry["Target"], entry.get("ResultCode")
        report.reported.add(target)
        if code in _SUCCEEDED:
            if entry.get("RebootRequired") is True:
                report.needs_restart.add(target)
            continue
        hresult = entry.get("HResult")
        detail = f" (HRESULT 0x{hresult & 0xFFFFFFFF:08X})" if isinstance(hresult, int) and hresult else ""
        name = _RESULT_NAMES.get(code) if isinstance(code, int) else None
        report.failures[target] = f"Windows Update {name or f'result {code!r}'}{detail}"
    return report


class WindowsUpdateProvider:
    """Patches Windows through the Windows Update Agent (Windows Update, Microsoft Update or WSUS, as configured).

    Args:
        runner: runs PowerShell (a fake in tests).
    """

    name = "windows_update"
    os_family = "windows"

    def __init__(
        self, runner: CommandRunner | None = None, scan_timeout: float = 1800.0, install_timeout: float = 7200.0
    ) -> None:
        self.runner: CommandRunner = runner or SubprocessRunner()
        self.scan_timeout = scan_timeout
        self.install_timeout = install_timeout

    async def scan(self) -> ScanResult:
        """Raises:
        Unavailable: PowerShell or the Windows Update Agent failed (service stopped, no network, no rights).
        InvalidInput: the script's output could not be read.
        """
        result = await self.runner.run(powershell_argv(SCAN_SCRIPT), env={}, timeout=self.scan_timeout)
        if result.exit_code != 0:
            raise command_failed(
                "the Windows Update scan script",
                result,
                "check that the wuauserv service runs and the agent is an administrator",
            )
        return parse_scan_json(result.stdout)

    async def install(self, names: list[str]) -> list[InstallOutcome]:
        """Raises:
        InvalidInput: a name is empty or has control characters.
        Unavailable: PowerShell or the Windows Update Agent failed, or a scan failed.
        """
        requested = requested_names(names)
        if not requested:
            return []
        before = await self.scan()
        targets = [name for name in requested if before.update_named(name)]
        failures: dict[str, str] = {}
        needs_restart: set[str] = set()
        if targets:
            result = await self.runner.run(
                powershell_argv(INSTALL_SCRIPT),
                env={TARGETS_VARIABLE: json.dumps(targets)},
                timeout=self.install_timeout,
            )
            if result.exit_code != 0:
                detail = last_lines(result.stderr) or "no output"
                failures = dict.fromkeys(
                    targets, f"the Windows Update install script failed (exit {result.exit_code}): {detail}"
                )
            else:
                report = parse_install_json(result.stdout)
                failures, needs_restart = report.failures, report.needs_restart
                for target in targets:
                    if target not in report.reported:
                        failures[target] = "Windows Update did not select this update for installation"
        after = await self.scan()
        return judge_by_rescan(requested, before, after, failures, needs_restart)
