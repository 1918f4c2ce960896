"""Unit tests of provider detection (fleetops.agent.patching.detect)."""

from __future__ import annotations

import pytest

from fleetops.agent.patching.detect import detect_provider, detect_providers
from fleetops.common.errors import Unavailable


def which_of(*tools: str):
    return lambda name: f"/usr/bin/{name}" if name in tools else None


@pytest.mark.parametrize(
    ("system", "tools", "provider"),
    [
        ("linux", ("apt-get", "dpkg-query", "zypper"), "apt"),
        ("linux", ("dnf", "yum"), "dnf"),
        ("linux", ("yum",), "yum"),
        ("linux", ("zypper",), "zypper"),
        ("darwin", ("brew",), "softwareupdate"),
        ("win32", (), "windows_update"),
    ],
)
def test_detect_provider_by_os_and_tools(system, tools, provider) -> None:
    assert detect_provider(system, which_of(*tools)).name == provider


def test_detect_providers_adds_homebrew_on_macos_only_when_present() -> None:
    assert [p.name for p in detect_providers("darwin", which_of("brew"))] == ["softwareupdate", "homebrew"]
    assert [p.name for p in detect_providers("darwin", which_of())] == ["softwareupdate"]


def test_detect_provider_without_a_package_manager_is_unavailable() -> None:
    with pytest.raises(Unavailable, match="no supported package manager") as raised:
        detect_provider("linux", which_of("pacman"))
    assert raised.value.hint
    with pytest.raises(Unavailable, match="not supported on 'freebsd14'"):
        detect_provider("freebsd14", which_of())
