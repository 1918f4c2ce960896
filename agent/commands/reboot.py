"""Rebooting the host when a script asks for it (exit 194 on POSIX, 3010 on Windows).

``SystemRebooter`` uses the OS's own command; ``CommandRebooter`` runs a configured command
instead (tests, and the agent's future ``--reboot-command``). Both take a ``runner`` so tests
check the argv without rebooting anything.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Protocol

from fleetops.common.errors import InvalidInput, Unavailable

# Runs an argv and returns its exit status. Raises OSError when the program cannot be started.
Runner = Callable[[Sequence[str]], int]

REBOOT_COMMAND_TIMEOUT = 120.0


def run_command(argv: Sequence[str]) -> int:
    """Run ``argv`` to completion, quietly.

    Raises:
        OSError: the program cannot be started.
        subprocess.TimeoutExpired: it ran longer than REBOOT_COMMAND_TIMEOUT.
    """
    completed = subprocess.run(
        list(argv), stdin=subprocess.DEVNULL, capture_output=True, timeout=REBOOT_COMMAND_TIMEOUT, check=False
    )
    return completed.returncode


class Rebooter(Protocol):
    def reboot(self) -> None:
        """Start rebooting the host; returns once the reboot is under way.

        Raises:
            Unavailable: no way of rebooting worked; the host keeps running.
        """


def reboot_commands(system: str) -> list[list[str]]:
    """The commands that reboot a host running ``system`` (a ``sys.platform`` value), best first."""
    if system.startswith("linux"):
        # systemctl asks systemd for an orderly reboot; shutdown covers hosts without systemd.
        return [["systemctl", "reboot"], ["shutdown", "-r", "now"]]
    if system == "win32":
        return [
            ["shutdown", "/r", "/t", "0"],
            ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", "Restart-Computer -Force"],
        ]
    return [["shutdown", "-r", "now"]]  # macOS and the BSDs


def _try_in_order(commands: Sequence[Sequence[str]], runner: Runner) -> None:
    failures: list[str] = []
    for argv in commands:
        try:
            status = runner(argv)
        except (OSError, subprocess.SubprocessError) as exc:
            failures.append(f"{argv[0]}: {exc}")
            continue
        if status == 0:
            return
        failures.append(f"{' '.join(argv)} exited with {status}")
    raise Unavailable(
        "could not reboot the host: " + "; ".join(failures),
        "check that the agent runs as root (Administrator on Windows) and can reboot this host",
    )


class SystemRebooter:
    """Reboots with the operating system's own command, falling back to the next one on failure."""

    def __init__(self, system: str = sys.platform, runner: Runner = run_command) -> None:
        self.commands = reboot_commands(system)
        self._runner = runner

    def reboot(self) -> None:
        _try_in_order(self.commands, self._runner)


class CommandRebooter:
    """Runs a configured command instead of rebooting (tests; ``--reboot-command`` later).

    Raises:
        InvalidInput: ``argv`` is empty.
    """

    def __init__(self, argv: Sequence[str], runner: Runner = run_command) -> None:
        if not argv:
            raise InvalidInput("the reboot command is empty", "give the program to run and its arguments")
        self.argv = list(argv)
        self._runner = runner

    def reboot(self) -> None:
        _try_in_order([self.argv], self._runner)
