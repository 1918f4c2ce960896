"""The platform factory picks the implementation for the OS the agent runs on."""

from __future__ import annotations

from pathlib import Path

from fleetops.agent.commands import detect
from fleetops.agent.commands.posix import PosixPlatform
from fleetops.agent.commands.windows import WindowsPlatform


def test_posix_hosts_get_the_posix_platform(tmp_path: Path) -> None:
    platform = detect.current_platform(tmp_path / "scripts", os_name="posix")
    assert isinstance(platform, PosixPlatform)
    assert platform.reboot_exit_code == 194


def test_windows_hosts_get_the_windows_platform(tmp_path: Path) -> None:
    platform = detect.current_platform(tmp_path / "scripts", os_name="nt")
    assert isinstance(platform, WindowsPlatform)
    assert platform.reboot_exit_code == 3010
