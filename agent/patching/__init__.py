"""Patch management on the agent: scan a host for updates and install an approved list, per package manager.

Modules, from the bottom up:

``models``          Package, Update, ScanResult, InstallOutcome (the providers' records)
``interfaces``      the PatchProvider and CommandRunner seams
``detect``          detect_provider(s): which providers this host gets
``wire``            the records -> the fleetops.v1.PatchReport message the task writes
``task``            ``fleetops-agent patch scan|install``: the task behind opsctl patch
``process``         the real CommandRunner (child processes, C locale)
``diagnostics``     the errors raised about a tool's failure or unreadable output
``outcomes``        install steps every provider shares: validate, run, judge by rescan
``rpm``             RPM names and versions, shared by dnf/yum and zypper
``apt``             Debian/Ubuntu (dpkg-query, apt-get)
``dnf``             RHEL family (rpm, dnf4/dnf5 or yum, updateinfo advisories, needs-restarting)
``zypper``          SUSE (rpm, zypper list-updates/list-patches XML)
``softwareupdate``  macOS system updates (softwareupdate)
``homebrew``        Homebrew formulae and casks
``windows_update``  Windows Update Agent COM API through PowerShell

Rebooting is not done here; scans only report whether a reboot is pending.
"""

from fleetops.agent.patching.interfaces import CommandResult, CommandRunner, PatchProvider
from fleetops.agent.patching.models import InstallOutcome, Package, ScanResult, Update

__all__ = [
    "CommandResult",
    "CommandRunner",
    "InstallOutcome",
    "Package",
    "PatchProvider",
    "ScanResult",
    "Update",
]
