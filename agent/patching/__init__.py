"""Patch management on the agent: scan a host for updates and install an approved list, per package manager.

Modules, from the bottom up:

``models``          Package, Update, ScanResult, InstallOutcome and their JSON form
``interfaces``      the PatchProvider and CommandRunner seams; detect_provider()
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

from fleetops.agent.patching.interfaces import (
    CommandResult,
    CommandRunner,
    PatchProvider,
    detect_provider,
    detect_providers,
)
from fleetops.agent.patching.models import InstallOutcome, Package, ScanResult, Update

__all__ = [
    "CommandResult",
    "CommandRunner",
    "InstallOutcome",
    "Package",
    "PatchProvider",
    "ScanResult",
    "Update",
    "detect_provider",
    "detect_providers",
]
