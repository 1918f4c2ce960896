"""The seams of patching: what a provider offers and how it runs programs.

``PatchProvider``   scan the host, install an approved list of updates; one per package manager
``CommandRunner``   runs one argv and returns (exit code, stdout, stderr); tests pass a fake one

Which provider a host gets is :mod:`fleetops.agent.patching.detect` (it imports the providers,
which import this module: the seams stay below the implementations).

Reboots are not a provider's business: a scan only reports whether one is pending, and
``fleetops.agent.commands.reboot`` does them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

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
