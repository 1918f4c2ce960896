"""The host's package manager for agent updates: dpkg (the agent's Debian package, docs/install.md)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

PACKAGE = "fleetops-agent"
INSTALL_TIMEOUT = 600


class NotInstalledAsPackage(Exception):
    """This agent was not installed from the Debian package: it cannot update itself."""


class InstallFailed(Exception):
    """dpkg refused or failed; ``str()`` carries the end of its output."""


def _run(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False)


def installed_version() -> str:
    """The installed package's Debian version (0.1.0-1).

    Raises:
        NotInstalledAsPackage: no dpkg, or the package is not installed.
    """
    try:
        result = _run(["dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", PACKAGE])
    except FileNotFoundError:
        raise NotInstalledAsPackage("this host has no dpkg: update the agent the way it was installed") from None
    status, _, version = result.stdout.strip().partition(" ")
    if result.returncode != 0 or status != "installed" or not version:
        raise NotInstalledAsPackage(
            f"the {PACKAGE} package is not installed: this agent was installed another way; update it that way"
        )
    return version


def architecture() -> str:
    return _run(["dpkg", "--print-architecture"]).stdout.strip()


def file_name(version: str, arch: str) -> str:
    """The release file of a Debian version (as scripts/build_agent_deb.py names it)."""
    return f"{PACKAGE}_{version.split(':', 1)[-1]}_{arch}.deb"


def install(package: Path) -> None:
    """``dpkg -i PACKAGE`` (upgrade or downgrade; dependencies are those already installed).

    Raises:
        InstallFailed: dpkg failed (its last output lines in the message).
    """
    for _ in range(60):  # another dpkg (unattended-upgrades, a patch run) may hold the lock
        result = _run(["dpkg", "-i", str(package)], timeout=INSTALL_TIMEOUT)
        if result.returncode == 0:
            return
        if "lock" not in result.stderr:
            break
        time.sleep(2)
    tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
    raise InstallFailed(f"dpkg -i {package.name} failed: {' / '.join(tail)}")
