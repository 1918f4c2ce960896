"""The seams of patching: what a provider offers, how it runs programs, and which one a host gets.

``PatchProvider``   scan the host, install an approved list of updates; one per package manager
``CommandRunner``   runs one argv and returns (exit code, stdout, stderr); tests pass a fake one
``detect_provider`` picks the provider for this host from its OS and the tools on ``PATH``

Reboots are not a provider's business: a scan only reports whether one is pending, and
``fleetops.agent.commands.reboot`` does them.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

from fleetops.common.errors import Unavailable

if TYPE_CHECKING:
    from fleetops.agent.patching.models import InstallOutcome, ScanResult


class CommandResult(NamedTuple):
    """What a finished program left behind."""

    exit_code: int
    stdout: str
    stderr: str


class CommandRunner(Protocol):
    async def run(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> CommandResult:
        """Run ``argv`` (no shell) to completion with ``env`` added to the agent's environment.

        Raises:
            Unavailable: the program is not installed, cannot be started, or ran past ``timeout``
                seconds (it is killed then).
        """
        ...


class PatchProvider(Protocol):
    #: the provider's name as reported in ScanResult.provider
    name: str
    #: "linux" | "darwin" | "windows"
    os_family: str

    async def scan(self) -> ScanResult:
        """List installed packages and available updates, and whether a reboot is pending.

        Raises:
            Unavailable: the package manager failed or is busy (locked); retrying later may work.
            InvalidInput: the package manager's output could not be read.
        """
        ...

    async def install(self, names: list[str]) -> list[InstallOutcome]:
        """Install exactly the updates named (as in ``Update.name``), non-interactively, then rescan.

        Returns one outcome per distinct requested name, in request order. A name the pre-install
        scan does not offer as an update is ``not_applicable`` and never reaches the package
        manager, so nothing outside the list is ever asked for (dependencies the package manager
        pulls in to install a listed update excepted).

        Raises:
            InvalidInput: a name is empty or has control characters; nothing was installed.
            Unavailable: the package manager is missing or busy, or the rescan failed.
        """
        ...


def _linux_provider(which: Callable[[str], str | None], runner: CommandRunner | None) -> PatchProvider:
    # Imported here: each provider module imports this one for the seams above.
    if which("apt-get") and which("dpkg-query"):
        from fleetops.agent.patching.apt import AptProvider

        return AptProvider(runner=runner)
    if which("dnf"):
        from fleetops.agent.patching.dnf import DnfProvider

        return DnfProvider(binary="dnf", runner=runner)
    if which("yum"):
        from fleetops.agent.patching.dnf import DnfProvider

        return DnfProvider(binary="yum", runner=runner)
    if which("zypper"):
        from fleetops.agent.patching.zypper import ZypperProvider

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
        from fleetops.agent.patching.softwareupdate import SoftwareUpdateProvider

        return SoftwareUpdateProvider(runner=runner)
    if system == "win32":
        from fleetops.agent.patching.windows_update import WindowsUpdateProvider

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
        from fleetops.agent.patching.homebrew import HomebrewProvider

        providers.append(HomebrewProvider(runner=runner))
    return providers
