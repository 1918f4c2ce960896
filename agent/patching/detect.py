"""Which patch providers a host gets, from its OS and the tools on ``PATH``.

Apart from :mod:`fleetops.agent.patching.interfaces` (the seams every provider imports), so the
seams do not import their implementations.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable

from fleetops.agent.patching.apt import AptProvider
from fleetops.agent.patching.dnf import DnfProvider
from fleetops.agent.patching.homebrew import HomebrewProvider
from fleetops.agent.patching.interfaces import CommandRunner, PatchProvider
from fleetops.agent.patching.softwareupdate import SoftwareUpdateProvider
from fleetops.agent.patching.windows_update import WindowsUpdateProvider
from fleetops.agent.patching.zypper import ZypperProvider
from fleetops.common.errors import Unavailable


def _linux_provider(which: Callable[[str], str | None], runner: CommandRunner | None) -> PatchProvider:
    if which("apt-get") and which("dpkg-query"):
        return AptProvider(runner=runner)
    if which("dnf"):
        return DnfProvider(binary="dnf", runner=runner)
    if which("yum"):
        return DnfProvider(binary="yum", runner=runner)
    if which("zypper"):
        return ZypperProvider(runner=runner)
    raise Unavailable(
        "no supported package manager found on this Linux host (looked for apt-get, dnf, yum, zypper)",
        "install one of them, or check the agent's PATH",
    )


def detect_provider(
    system: str = sys.platform,
    which: Callable[[str], str | None] = shutil.which,
    runner: CommandRunner | None = None,
) -> PatchProvider:
    """The operating-system patch provider for a host running ``system`` (a ``sys.platform`` value).

    Linux prefers apt, then dnf, yum and zypper, by which tools ``which`` finds; macOS gets
    softwareupdate (Homebrew is an extra, see :func:`detect_providers`); Windows gets Windows Update.

    Raises:
        Unavailable: no supported package manager is on this host.
    """
    if system.startswith("linux"):
        return _linux_provider(which, runner)
    if system == "darwin":
        return SoftwareUpdateProvider(runner=runner)
    if system == "win32":
        return WindowsUpdateProvider(runner=runner)
    raise Unavailable(f"patching is not supported on {system!r}", "fleetops patches Linux, macOS and Windows hosts")


def detect_providers(
    system: str = sys.platform,
    which: Callable[[str], str | None] = shutil.which,
    runner: CommandRunner | None = None,
) -> list[PatchProvider]:
    """Every provider that applies to this host: the OS one first, then Homebrew on macOS if present.

    Raises:
        Unavailable: no supported package manager is on this host.
    """
    providers = [detect_provider(system, which, runner)]
    if system == "darwin" and which("brew"):
        providers.append(HomebrewProvider(runner=runner))
    return providers
