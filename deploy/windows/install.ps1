<#
.SYNOPSIS
    Installs the fleetops agent as the Windows service "fleetops-agent" (LocalSystem, automatic
    start, restarted on failure), or removes it.

.DESCRIPTION
    Run from deploy\windows in a fleetops checkout or release (it reads ..\agent-requirements.txt),
    in an elevated PowerShell. It
      * makes the virtualenv -InstallDir with -Python (3.11 or newer) and installs the fleetops wheel
        without its dependencies, then the agent's own (the controller's stay off the host), from
        PyPI or, with -FindLinks, only from that folder (offline);
      * creates -StateDir readable by SYSTEM and Administrators only (it holds the host's key);
      * registers the host when given -Controller, -ActivationId, -ActivationCode and -CaFingerprint;
      * registers the service: `fleetops-agent service` (fleetops.agent.winservice) speaks the Service
        Control Manager's protocol and stops gracefully on STOP and at shutdown. Its command line runs
        the base interpreter with the virtualenv's packages (fleetops-agent-service.py, written here):
        a virtualenv's python.exe is a launcher that runs the interpreter as a child process, and the
        SCM only talks to the process it started;
      * sets recovery: restart 5 s after the first and second failure, 60 s after later ones.
    The agent logs to agent.log in -StateDir. -Uninstall stops and deletes the service and the
    virtualenv; with -Purge also the state directory (register again afterwards). See docs/install.md.

.EXAMPLE
    .\install.ps1 -Wheel fleetops-0.1.0-py3-none-any.whl -Controller fleet.example.com:7443 -ActivationId ID -ActivationCode CODE -CaFingerprint SHA256
.EXAMPLE
    .\install.ps1 -Uninstall -Purge
#>
[CmdletBinding()]
param(
    [string]$Wheel,
    [string]$Python = "py.exe",
    [string]$FindLinks,
    [string]$InstallDir = "C:\Program Files\fleetops-agent",
    [string]$StateDir = "C:\ProgramData\fleetops-agent",
    [string]$ServiceName = "fleetops-agent",
    [string]$Controller,
    [string]$ActivationId,
    [string]$ActivationCode,
    [string]$CaFingerprint,
    [switch]$Uninstall,
    [switch]$Purge
)
$ErrorActionPreference = "Stop"

$principal = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    throw "run this script from an elevated PowerShell"
}

function Remove-AgentService {
    if (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue) {
        # STOP reaches Agent.request_stop: results are journaled, sessions hung up.
        Stop-Service -Name $ServiceName -ErrorAction SilentlyContinue
        & sc.exe delete $ServiceName | Out-Null
        if ($LASTEXITCODE -ne 0) { throw "sc.exe delete $ServiceName failed (exit $LASTEXITCODE)" }
    }
}

if ($Uninstall) {
    Remove-AgentService
    if (Test-Path $InstallDir) { Remove-Item -Recurse -Force $InstallDir }
    if ($Purge -and (Test-Path $StateDir)) { Remove-Item -Recurse -Force $StateDir }
    Write-Output "removed the fleetops agent$(if ($Purge) { " and its state in $StateDir" })"
    return
}

if (-not $Wheel -or -not (Test-Path $Wheel)) {
    throw "give the fleetops wheel with -Wheel FILE (build it: py -3.11 -m pip wheel --no-deps -w dist .)"
}
$pythonArgs = @()
if ((Split-Path -Leaf $Python) -eq "py.exe") { $pythonArgs = @("-3") }
& $Python @pythonArgs -c "import sys; sys.exit(sys.version_info < (3, 11))"
if ($LASTEXITCODE -ne 0) { throw "$Python is not Python 3.11 or newer: pass -Python C:\path\to\python.exe" }

# A fresh virtualenv each time (an upgrade replaces the service too).
Remove-AgentService
if (Test-Path $InstallDir) { Remove-Item -Recurse -Force $InstallDir }
& $Python @pythonArgs -m venv $InstallDir
if ($LASTEXITCODE -ne 0) { throw "could not create the virtualenv $InstallDir" }
$venvPython = Join-Path $InstallDir "Scripts\python.exe"
$pipArgs = @("-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-warn-conflicts")
if ($FindLinks) { $pipArgs += @("--no-index", "--find-links", $FindLinks) }
& $venvPython @pipArgs --no-deps $Wheel
if ($LASTEXITCODE -ne 0) { throw "pip could not install $Wheel" }
& $venvPython @pipArgs -r (Join-Path $PSScriptRoot "..\agent-requirements.txt")
if ($LASTEXITCODE -ne 0) { throw "pip could not install the agent's requirements" }

# The state directory before anything is written into it: C:\ProgramData lets Users read what
# is created below it, so drop inheritance and grant SYSTEM (S-1-5-18) and Administrators
# (S-1-5-32-544) alone.
New-Item -ItemType Directory -Force -Path $StateDir | Out-Null
& icacls.exe $StateDir /inheritance:r /grant:r "*S-1-5-18:(OI)(CI)F" "*S-1-5-32-544:(OI)(CI)F" | Out-Null
if ($LASTEXITCODE -ne 0) { throw "icacls failed on $StateDir" }

$agentExe = Join-Path $InstallDir "Scripts\fleetops-agent.exe"
if ($Controller) {
    & $agentExe --state-dir $StateDir register --controller $Controller --activation-id $ActivationId `
        --activation-code $ActivationCode --ca-fingerprint $CaFingerprint
    if ($LASTEXITCODE -ne 0) { throw "fleetops-agent register failed (exit $LASTEXITCODE); see the message above" }
}

$basePython = (& $venvPython -c "import sys; print(sys._base_executable)").Trim()
$sitePackages = Join-Path $InstallDir "Lib\site-packages"
$launcher = Join-Path $InstallDir "fleetops-agent-service.py"
@"
# Written by install.ps1: the fleetops-agent service's entry point (see the script's description).
import site
import sys

site.addsitedir(r"$sitePackages")  # the virtualenv's packages, with pywin32's .pth (its DLLs)
from fleetops.agent.cli import main

sys.exit(main(sys.argv[1:]))
"@ | Set-Content -Encoding UTF8 -Path $launcher

New-Service -Name $ServiceName `
    -BinaryPathName "`"$basePython`" `"$launcher`" --state-dir `"$StateDir`" service" `
    -DisplayName "fleetops agent" `
    -Description "Connects this host to its fleetops controller (outbound mutual TLS; opens no port)." `
    -StartupType Automatic | Out-Null

# Restart 5 s after the first and second failure, 60 s after later ones; forget failures after a
# day. failureflag 1 also counts "stopped with an error" (the agent reports
# ERROR_SERVICE_SPECIFIC_ERROR and its exit code) as a failure. A revoked host stops cleanly
# instead, so it is not restarted only to be refused again (as RestartPreventExitStatus=78 does
# for the systemd unit): register it again, then Start-Service.
& sc.exe failure $ServiceName reset= 86400 actions= restart/5000/restart/5000/restart/60000 | Out-Null
if ($LASTEXITCODE -ne 0) { throw "sc.exe failure $ServiceName failed (exit $LASTEXITCODE)" }
& sc.exe failureflag $ServiceName 1 | Out-Null

if (Test-Path (Join-Path $StateDir "agent.json")) {
    Start-Service -Name $ServiceName
    Get-Service -Name $ServiceName
} else {
    Write-Output "installed; this host is not registered yet. Register it, then start the service:"
    Write-Output "  & `"$agentExe`" --state-dir `"$StateDir`" register --controller HOST:PORT --activation-id ID --activation-code CODE --ca-fingerprint SHA256"
    Write-Output "  Start-Service $ServiceName"
}
