"""Unit tests of the macOS softwareupdate provider against output recorded on macOS 10.15 and 12 (Monterey)."""

from __future__ import annotations

import pytest

from fleetops.agent.patching.softwareupdate import (
    ARCH_ARGV,
    INSTALL_ARGV_PREFIX,
    LIST_ARGV,
    OS_VERSION_ARGV,
    SoftwareUpdateProvider,
    parse_softwareupdate_list,
)
from fleetops.common.errors import InvalidInput, Unavailable
from fleetops.common.patching import Classification, Severity


def test_list_recorded_on_monterey(fixture_text) -> None:
    safari, monterey, sonoma = parse_softwareupdate_list(
        fixture_text("softwareupdate", "list-monterey-munki.txt"), "12.7.5"
    )
    assert (safari.name, safari.title, safari.candidate_version) == ("Safari17.6MontereyAuto-17.6", "Safari", "17.6")
    assert safari.installed_version is None and safari.reboot_required is False
    assert (monterey.name, monterey.candidate_version, monterey.installed_version) == (
        "macOS Monterey 12.7.6-21H1320",
        "12.7.6",
        "12.7.5",
    )
    assert monterey.reboot_required and sonoma.title == "macOS Sonoma 14.6.1"
    assert {u.classification for u in (safari, monterey, sonoma)} == {Classification.OTHER}
    assert sonoma.severity == Severity.UNSPECIFIED and sonoma.release_date is None


def test_list_recorded_on_catalina(fixture_text) -> None:
    updates = parse_softwareupdate_list(fixture_text("softwareupdate", "list-catalina-salt.txt"))
    assert [(u.name, u.candidate_version, u.reboot_required) for u in updates] == [
        ("Command Line Tools beta 5 for Xcode-11.0", "11.0", False),
        ("macOS Catalina Developer Beta-6", "5", True),
        ("BridgeOSUpdateCustomer", "10.15.0.1.1.1560926689", True),  # "shut down"
        ("iCal-1.0.2", "1.0.2", False),  # "- Label:" (not recommended) is an update too
    ]
    assert updates[0].title == "Command Line Tools beta 5 for Xcode"


def test_security_titles_are_classified_as_security() -> None:
    text = (
        "Software Update found the following new or updated software:\n"
        "* Label: Security Update 2022-004 Catalina-10.15.7\n"
        "\tTitle: Security Update 2022-004 Catalina, Version: 10.15.7, Size: 1950711K, "
        "Recommended: YES, Action: restart,\n"
    )
    (update,) = parse_softwareupdate_list(text)
    assert (
        update.classification == Classification.SECURITY and update.name == "Security Update 2022-004 Catalina-10.15.7"
    )


def test_nothing_to_install(fixture_text) -> None:
    assert parse_softwareupdate_list(fixture_text("softwareupdate", "list-none-synthetic.txt")) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "neither a list of updates"),
        ("softwareupdate: unrecognized option\n", "neither a list of updates"),
        ("Software Update found the following new or updated software:\n* Label: X-1\n", "has no 'Title:' line"),
    ],
)
def test_malformed_output_is_a_clear_error(text, message) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_softwareupdate_list(text)


def test_the_pre_catalina_layout_is_refused_clearly(fixture_text) -> None:
    with pytest.raises(InvalidInput, match="macOS 10.14 and older"):
        parse_softwareupdate_list(fixture_text("softwareupdate", "list-mojave-salt.txt"))


def scripted(runner, listing: str, times=None):
    runner.on(*OS_VERSION_ARGV, stdout="12.7.5\n").on(*ARCH_ARGV, stdout="x86_64\n")
    runner.on(*LIST_ARGV, stdout=listing, times=times)
    return runner


async def test_scan_reports_macos_itself_as_installed(runner, fixture_text) -> None:
    scan = await SoftwareUpdateProvider(
        runner=scripted(runner, fixture_text("softwareupdate", "list-monterey-munki.txt"))
    ).scan()
    assert [(p.name, p.version, p.arch) for p in scan.installed] == [("macOS", "12.7.5", "x86_64")]
    assert len(scan.updates) == 3 and scan.reboot_pending is False
    assert runner.argvs("softwareupdate") == [list(LIST_ARGV)]
    assert (await SoftwareUpdateProvider(runner=runner, refresh=False).scan()).updates
    assert runner.argvs("softwareupdate")[-1] == [*LIST_ARGV, "--no-scan"]


async def test_no_new_software_arrives_on_stderr(runner) -> None:
    runner.on(*OS_VERSION_ARGV, stdout="14.6\n").on(*ARCH_ARGV, stdout="arm64\n")
    runner.on(
        *LIST_ARGV, stdout="Software Update Tool\n\nFinding available software\n", stderr="No new software available.\n"
    )
    assert (await SoftwareUpdateProvider(runner=runner).scan()).updates == ()


async def test_install_names_exactly_the_approved_labels(runner, fixture_text) -> None:
    listing = fixture_text("softwareupdate", "list-monterey-munki.txt")
    scripted(runner, listing, times=1)
    runner.on(
        *LIST_ARGV,
        stdout=listing.split("* Label: Safari")[0]
        + "* Label: macOS Sonoma"
        + listing.split("* Label: macOS Sonoma")[1],
    )
    runner.on(*INSTALL_ARGV_PREFIX)
    provider = SoftwareUpdateProvider(runner=runner, refresh=False)
    outcomes = await provider.install(["Safari17.6MontereyAuto-17.6", "macOS Monterey 12.7.6-21H1320", "Xcode"])
    assert runner.argvs("softwareupdate", "--install") == [
        [*INSTALL_ARGV_PREFIX, "Safari17.6MontereyAuto-17.6", "macOS Monterey 12.7.6-21H1320"]
    ]
    assert "--all" not in runner.argvs("softwareupdate", "--install")[0]
    assert [(o.name, o.state) for o in outcomes] == [
        ("Safari17.6MontereyAuto-17.6", "installed"),
        ("macOS Monterey 12.7.6-21H1320", "installed"),
        ("Xcode", "not_applicable"),
    ]
    assert "restart" in outcomes[1].message


async def test_a_failing_softwareupdate_is_unavailable(runner) -> None:
    runner.on(*OS_VERSION_ARGV, stdout="14.6\n").on(*ARCH_ARGV, stdout="arm64\n")
    runner.on(*LIST_ARGV, exit_code=1, stderr="Can't connect to the Apple Software Update server.\n")
    with pytest.raises(Unavailable, match="Can't connect"):
        await SoftwareUpdateProvider(runner=runner).scan()
