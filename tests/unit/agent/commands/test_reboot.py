"""Unit tests of the rebooters, by the argv they run (nothing reboots here)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from fleetops.agent.commands.reboot import CommandRebooter, SystemRebooter
from fleetops.common.errors import InvalidInput, Unavailable


class Runner:
    """Records argvs; answers with the given exit statuses (or raises them) in order."""

    def __init__(self, *outcomes: int | Exception) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> int:
        self.calls.append(list(argv))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@pytest.mark.parametrize(
    ("system", "argv"),
    [
        ("linux", ["systemctl", "reboot"]),
        ("darwin", ["shutdown", "-r", "now"]),
        ("freebsd14", ["shutdown", "-r", "now"]),
        ("win32", ["shutdown", "/r", "/t", "0"]),
    ],
)
def test_system_rebooter_uses_the_os_command(system: str, argv: list[str]) -> None:
    runner = Runner(0)
    SystemRebooter(system, runner).reboot()
    assert runner.calls == [argv]


def test_linux_falls_back_to_shutdown_without_systemd() -> None:
    runner = Runner(FileNotFoundError(2, "No such file or directory", "systemctl"), 0)
    SystemRebooter("linux", runner).reboot()
    assert runner.calls == [["systemctl", "reboot"], ["shutdown", "-r", "now"]]


def test_windows_falls_back_to_restart_computer() -> None:
    runner = Runner(1, 0)
    SystemRebooter("win32", runner).reboot()
    assert runner.calls[1] == ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", "Restart-Computer -Force"]


def test_a_reboot_that_cannot_happen_is_reported() -> None:
    runner = Runner(1, PermissionError(13, "Permission denied"))
    with pytest.raises(Unavailable, match="could not reboot the host: systemctl reboot exited with 1; shutdown: "):
        SystemRebooter("linux", runner).reboot()


def test_command_rebooter_runs_the_configured_command() -> None:
    runner = Runner(0)
    CommandRebooter(["touch", "/tmp/rebooted"], runner).reboot()
    assert runner.calls == [["touch", "/tmp/rebooted"]]
    with pytest.raises(Unavailable, match="false exited with 1"):
        CommandRebooter(["false"], Runner(1)).reboot()
    with pytest.raises(InvalidInput):
        CommandRebooter([])
