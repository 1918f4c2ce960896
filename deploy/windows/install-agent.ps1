<#
.SYNOPSIS
    Registers the fleetops agent as a Windows service (LocalSystem, automatic start, restart on
    failure), optionally registering the host with the controller first.

.DESCRIPTION
    STATUS: NOT WORKING YET - kept so the install layout is settled. As of fleetops 0.1.0:
      * fleetops-agent.exe (the pip console-script launcher) does not speak the Service Control
        Manager protocol, so SCM reports error 1053 and stops it about 30 s after every start,
        until the agent gains a Windows service mode or is run under a service wrapper;
      * `fleetops-agent run` uses asyncio loop.add_signal_handler, which Windows does not
        implement (NotImplementedError);
      * `fleetops-agent register` writes certificates with os.fchmod, which Python 3.11 lacks on
        Windows (AttributeError).
    See deploy/README.md. The steps below are what the installer does once those are fixed.

    Layout: fleetops in a virtualenv at -InstallDir (fleetops-agent.exe in its Scripts folder),
    state in -StateDir (agent.json, host.key, host.pem, ca.pem), readable by SYSTEM and
    Administrators only because host.key is the host's private key.

.EXAMPLE
    .\install-agent.ps1 -Controller fleet.example.com:7443 -ActivationId ID -ActivationCode CODE -CaFingerprint SHA256
#>
[CmdletBinding()]
param(
    [string]$InstallDir = "C:\Program Files\fleetops",
    [string]$StateDir = "C:\ProgramData\fleetops-agent",
    [string]$ServiceName = "fleetops-agent",
    # Give all four to register the host before installing the service:
    [string]$Controller,
    [string]$ActivationId,
    [string]$ActivationCode,
    [string]$CaFingerprint
)
$ErrorActionPreference = "Stop"

$principal = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    throw "run this script from an elevated PowerShell"
}

$exe = Join-Path $InstallDir "Scripts\fleetops-agent.exe"
if (-not (Test-Path $exe)) {
    throw "$exe not found: create the virtualenv first (py -3.11 -m venv `"$InstallDir`"; & `"$InstallDir\Scripts\pip.exe`" install fleetops-0.1.0-py3-none-any.whl)"
}

# The state directory before anything is written into it: C:\ProgramData lets Users read what
# is created below it, so drop inheritance and grant SYSTEM (S-1-5-18) and Administrators
# (S-1-5-32-544) alone.
New-Item -ItemType Directory -Force -Path $StateDir | Out-Null
& icacls.exe $StateDir /inheritance:r /grant:r "*S-1-5-18:(OI)(CI)F" "*S-1-5-32-544:(OI)(CI)F" | Out-Null
if ($LASTEXITCODE -ne 0) { throw "icacls failed on $StateDir" }

if ($Controller) {
    & $exe --state-dir $StateDir register --controller $Controller --activation-id $ActivationId `
        --activation-code $ActivationCode --ca-fingerprint $CaFingerprint
    if ($LASTEXITCODE -ne 0) { throw "fleetops-agent register failed (exit $LASTEXITCODE); see the message above" }
}
if (-not (Test-Path (Join-Path $StateDir "agent.json"))) {
    throw "this host is not registered: run again with -Controller, -ActivationId, -ActivationCode and -CaFingerprint"
}

if (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue) {
    throw "service $ServiceName already exists; remove it first: Stop-Service $ServiceName; sc.exe delete $ServiceName"
}
New-Service -Name $ServiceName `
    -BinaryPathName "`"$exe`" --state-dir `"$StateDir`" run" `
    -DisplayName "fleetops agent" `
    -Description "Connects this host to its fleetops controller (outbound mutual TLS; opens no port)." `
    -StartupType Automatic | Out-Null

# Restart 5 s after the first and second failure, 60 s after later ones; forget failures after a
# day. failureflag 1 also counts "stopped with a non-zero exit code" as a failure. SCM cannot
# exempt one exit code: unlike the systemd unit (RestartPreventExitStatus=78), a revoked host
# (exit 78) is restarted and exits 78 again; stop and disable the service, then register again.
& sc.exe failure $ServiceName reset= 86400 actions= restart/5000/restart/5000/restart/60000 | Out-Null
& sc.exe failureflag $ServiceName 1 | Out-Null

Start-Service -Name $ServiceName
Get-Service -Name $ServiceName
