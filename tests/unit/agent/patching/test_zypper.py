"""Unit tests of the zypper provider against zypper XML recorded on SLES 12 SP1 and openSUSE Leap 16.0."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetops.agent.patching.rpm import RPM_QUERY_ARGV
from fleetops.agent.patching.zypper import (
    INSTALL_ARGV_PREFIX,
    LIST_PATCHES_ARGV,
    LIST_UPDATES_ARGV,
    NEEDS_REBOOTING_ARGV,
    REFRESH_ARGV,
    ZypperProvider,
    parse_list_patches,
    parse_list_updates,
)
from fleetops.common.errors import InvalidInput, Unavailable
from fleetops.common.patching import Classification, Severity

EMPTY_LIST = "<?xml version='1.0'?>\n<stream>\n<update-status version=\"0.6\">\n<update-list>\n</update-list>\n</update-status>\n</stream>\n"  # noqa: E501


def test_list_updates_recorded_on_sles_12_sp1(fixture_text) -> None:
    updates = parse_list_updates(
        fixture_text("zypper", "list-updates-sle12sp1.xml"), {("bind-libs", "x86_64"): "9.9.6P1-28.1"}
    )
    assert [(u.name, u.candidate_version, u.arch) for u in updates] == [
        ("SUSEConnect", "0.2.33-7.1", "x86_64"),
        ("bind-libs", "9.9.6P1-35.1", "x86_64"),
        ("bind-utils", "9.9.6P1-35.1", "x86_64"),
    ]
    assert updates[1].installed_version == "9.9.6P1-28.1"  # this zypper prints no edition-old: rpm says
    assert updates[0].installed_version is None
    assert updates[0].repository == "SLE12-SP1-x86_64-Update"
    assert updates[2].title == "Utilities to query and test DNS"
    assert all(u.classification == Classification.OTHER for u in updates)


def test_list_updates_recorded_on_leap_16_has_the_old_edition(fixture_text) -> None:
    updates = parse_list_updates(fixture_text("zypper", "list-updates-leap16.xml"))
    kernel = updates[0]
    assert (kernel.name, kernel.installed_version, kernel.candidate_version) == (
        "kernel-default",
        "6.12.0-160000.7.1",
        "6.12.0-160000.8.1",
    )
    assert kernel.repository == "https-download.opensuse.org-4bc031d9" and len(updates) == 4


def test_list_patches_recorded_on_leap_16(fixture_text) -> None:
    qemu, kernel = parse_list_patches(fixture_text("zypper", "list-patches-security-leap16-excerpt.xml"))
    assert qemu.name == "openSUSE-Leap-16.0-112" and qemu.title == "Security update for qemu"
    assert (qemu.classification, qemu.severity) == (Classification.SECURITY, Severity.IMPORTANT)
    assert qemu.release_date == datetime(2025, 12, 18, 12, 42, 3, tzinfo=UTC)
    assert qemu.advisory_ids == ("openSUSE-Leap-16.0-112", "CVE-2025-11234", "CVE-2025-12464")
    assert qemu.reboot_required is False and kernel.reboot_required is True
    assert kernel.release_date == datetime(2025, 12, 19, 17, 38, 16, tzinfo=UTC)


def test_patch_categories_and_statuses() -> None:
    text = (
        "<stream><update-status version='0.6'><update-list>"
        "<update kind='patch' name='p1' status='needed' category='recommended' severity='moderate'/>"
        "<update kind='patch' name='p2' status='applied' category='security' severity='critical'/>"
        "<update kind='patch' name='p3' status='needed' category='optional' severity='low'/>"
        "<update kind='patch' name='p4' status='needed' category='yast'/>"
        "</update-list></update-status></stream>"
    )
    patches = parse_list_patches(text)
    assert [(p.name, p.classification, p.severity) for p in patches] == [
        ("p1", Classification.BUGFIX, Severity.MODERATE),
        ("p3", Classification.ENHANCEMENT, Severity.LOW),
        ("p4", Classification.OTHER, Severity.UNSPECIFIED),
    ]


def test_empty_lists_mean_nothing_to_do() -> None:
    assert parse_list_updates(EMPTY_LIST) == [] and parse_list_patches(EMPTY_LIST) == []
    assert parse_list_patches("<stream><update-status version='0.6'/></stream>") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "printed nothing"),
        ("<stream><update-status>", "not well-formed XML"),
        ("<html><body>proxy error</body></html>", "not <stream>"),
        ("<stream><message type='info'>Loading</message></stream>", "no <update-status>"),
        ("<stream><update-status><update-list><update kind='package' edition='1' arch='x86_64'/>"
         "</update-list></update-status></stream>", "no 'name' attribute"),
    ],
)  # fmt: skip
def test_malformed_xml_is_a_clear_error(text, message) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_list_updates(text)


def test_an_error_message_in_the_stream_is_unavailable() -> None:
    text = "<stream><message type='error'>Repository 'Main' is invalid.</message></stream>"
    with pytest.raises(Unavailable, match="Repository 'Main' is invalid"):
        parse_list_patches(text)


# -- the provider, with a fake runner --------------------------------------------------------------

RPM = "qemu-guest-agent.aarch64 10.0.4-160000.1.1\nbash.aarch64 5.2.37-160000.2.2\n"


def scripted(runner, fixture_text, updates=None, patches=None):
    runner.on(*RPM_QUERY_ARGV, stdout=RPM)
    runner.on(*LIST_UPDATES_ARGV, stdout=updates or fixture_text("zypper", "list-updates-leap16.xml"))
    runner.on(*LIST_PATCHES_ARGV, stdout=patches or fixture_text("zypper", "list-patches-security-leap16-excerpt.xml"))
    return runner


async def test_scan_lists_patches_then_packages_and_reads_reboot_state(runner, fixture_text, tmp_path: Path) -> None:
    scripted(runner, fixture_text).on(*REFRESH_ARGV).on(*NEEDS_REBOOTING_ARGV, exit_code=102)
    (tmp_path / "reboot-needed").write_text("")
    scan = await ZypperProvider(runner=runner, reboot_needed_path=tmp_path / "reboot-needed").scan()
    assert runner.calls[0][0] == list(REFRESH_ARGV)
    assert [u.name for u in scan.updates][:3] == ["openSUSE-Leap-16.0-112", "openSUSE-Leap-16.0-113", "kernel-default"]
    assert scan.reboot_pending and len(scan.reboot_reasons) == 2


async def test_a_locked_zypp_is_unavailable(runner, tmp_path: Path) -> None:
    runner.on(*REFRESH_ARGV, exit_code=7, stderr="System management is locked by the application with pid 1 (zypper).")
    with pytest.raises(Unavailable, match="locked") as raised:
        await ZypperProvider(runner=runner, reboot_needed_path=tmp_path / "none").scan()
    assert "retry" in raised.value.hint


async def test_install_names_patches_and_pinned_packages_only(runner, fixture_text, tmp_path: Path) -> None:
    runner.on(*RPM_QUERY_ARGV, stdout=RPM, times=1)
    runner.on(*RPM_QUERY_ARGV, stdout=RPM.replace("10.0.4-160000.1.1", "10.0.7-160000.1.1"))
    runner.on(*LIST_UPDATES_ARGV, stdout=fixture_text("zypper", "list-updates-leap16.xml"), times=1)
    runner.on(*LIST_UPDATES_ARGV, stdout=EMPTY_LIST)
    runner.on(*LIST_PATCHES_ARGV, stdout=fixture_text("zypper", "list-patches-security-leap16-excerpt.xml"), times=1)
    runner.on(*LIST_PATCHES_ARGV, stdout=EMPTY_LIST)
    runner.on(*NEEDS_REBOOTING_ARGV, exit_code=0)
    runner.on(*INSTALL_ARGV_PREFIX, exit_code=102)  # 102: installed, a reboot is needed

    provider = ZypperProvider(runner=runner, refresh=False, reboot_needed_path=tmp_path / "none")
    outcomes = await provider.install(["openSUSE-Leap-16.0-113", "qemu-guest-agent", "vim"])

    assert runner.argvs("zypper", "--non-interactive", "--no-refresh", "install") == [
        [*INSTALL_ARGV_PREFIX, "patch:openSUSE-Leap-16.0-113", "qemu-guest-agent=10.0.7-160000.1.1"]
    ]
    assert [(o.name, o.state) for o in outcomes] == [
        ("openSUSE-Leap-16.0-113", "installed"),
        ("qemu-guest-agent", "installed"),
        ("vim", "not_applicable"),
    ]
    assert outcomes[0].message == "installed; it takes effect after a restart"
    assert outcomes[1].version_after == "10.0.7-160000.1.1"


async def test_a_capability_that_cannot_be_found_fails_that_patch(runner, fixture_text, tmp_path: Path) -> None:
    scripted(runner, fixture_text).on(*NEEDS_REBOOTING_ARGV, exit_code=0)
    runner.on(*INSTALL_ARGV_PREFIX, exit_code=104, stderr="No provider of 'qemu-guest-agent=10.0.7-160000.1.1' found.")
    provider = ZypperProvider(runner=runner, refresh=False, reboot_needed_path=tmp_path / "none")
    (outcome,) = await provider.install(["qemu-guest-agent"])
    assert outcome.state == "failed" and outcome.version_after == "10.0.4-160000.1.1"
    assert (
        outcome.message
        == "zypper install failed (exit 104): No provider of 'qemu-guest-agent=10.0.7-160000.1.1' found."
    )
