"""Unit tests of the Homebrew provider against recorded `brew list --versions` and `brew outdated --json=v2`."""

from __future__ import annotations

import pytest

from fleetops.agent.patching.homebrew import (
    LIST_CASKS_ARGV,
    LIST_FORMULAE_ARGV,
    OUTDATED_ARGV,
    REFRESH_ARGV,
    HomebrewProvider,
    parse_list_versions,
    parse_outdated,
)
from fleetops.common.errors import InvalidInput, Unavailable
from fleetops.common.patching import Classification, Severity


def test_list_versions_recorded(fixture_text) -> None:
    formulae = {p.name: p.version for p in parse_list_versions(fixture_text("homebrew", "list-versions-formula.txt"))}
    assert formulae["graphviz"] == "2.40.20161221.0239"  # the last of several installed versions
    assert formulae["audacity"] == "2.1.2"  # "(!)" marks a removed formula, not a version
    assert len(formulae) == 11
    casks = {p.name: p.version for p in parse_list_versions(fixture_text("homebrew", "list-versions-cask.txt"))}
    assert casks["virtualbox"] == "5.1.10-112026" and casks["android-file-transfer"] == "latest"


def test_list_versions_without_a_version_is_a_clear_error() -> None:
    assert parse_list_versions("") == []
    with pytest.raises(InvalidInput, match="line 2 has no version"):
        parse_list_versions("ack 2.14\nbroken\n")


def test_outdated_formulae_recorded(fixture_text) -> None:
    updates = parse_outdated(fixture_text("homebrew", "outdated-formula-v2.json"))
    assert [(u.name, u.installed_version, u.candidate_version, u.repository) for u in updates] == [
        ("pygobject3", "3.36.1", "3.38.0", "formula"),
        ("rav1e", "0.3.3", "0.3.4", "formula"),
    ]
    assert {(u.classification, u.severity, u.release_date) for u in updates} == {
        (Classification.OTHER, Severity.UNSPECIFIED, None)
    }


def test_outdated_casks_with_string_versions_recorded(fixture_text) -> None:
    updates = {u.name: u for u in parse_outdated(fixture_text("homebrew", "outdated-greedy-cask-v2.json"))}
    assert "caldigit-thunderbolt-charging" not in updates  # latest -> latest: nothing to upgrade
    assert updates["lg-onscreen-control"].installed_version == "5.47,yi5XuIZw6hg"
    assert updates["electrum"].repository == "cask" and len(updates) == 4


def test_outdated_new_style_lists_and_pins() -> None:
    text = (
        '{"formulae": [{"name": "git", "installed_versions": ["2.43.0"], "current_version": "2.44.0", "pinned": true,'
        ' "pinned_version": "2.43.0"}], "casks": [{"name": "firefox", "installed_versions": ["122.0"],'
        ' "current_version": "123.0"}]}'
    )
    assert [(u.name, u.installed_version) for u in parse_outdated(text)] == [("firefox", "122.0")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not JSON"),
        ("Error: Unknown command: outdatedd", "not JSON"),
        ('{"formulae": []}', "'formulae' and 'casks' lists"),
        ('{"formulae": [{"name": "x"}], "casks": []}', "a formula entry is malformed"),
        ('{"formulae": [], "casks": [{"name": "x", "installed_versions": 3, "current_version": "1"}]}', "malformed"),
    ],
)
def test_malformed_outdated_json_is_a_clear_error(text, message) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_outdated(text)


async def test_install_upgrades_formulae_and_casks_separately_by_name(runner, fixture_text) -> None:
    outdated = (
        '{"formulae": [{"name": "rav1e", "installed_versions": ["0.3.3"], "current_version": "0.3.4",'
        ' "pinned": false}],'
        ' "casks": [{"name": "electrum", "installed_versions": ["4.0.2"], "current_version": "4.0.3"}]}'
    )
    runner.on(*REFRESH_ARGV).on(*LIST_FORMULAE_ARGV, stdout="rav1e 0.3.3\n", times=1)
    runner.on(*LIST_FORMULAE_ARGV, stdout="rav1e 0.3.4\n").on(*LIST_CASKS_ARGV, stdout="electrum 4.0.2\n", times=1)
    runner.on(*LIST_CASKS_ARGV, stdout="electrum 4.0.3\n")
    runner.on(*OUTDATED_ARGV, stdout=outdated, times=1).on(*OUTDATED_ARGV, stdout='{"formulae": [], "casks": []}')
    runner.on("brew", "upgrade")
    outcomes = await HomebrewProvider(runner=runner).install(["electrum", "rav1e", "wget"])
    assert runner.argvs("brew", "upgrade") == [
        ["brew", "upgrade", "--formula", "rav1e"],
        ["brew", "upgrade", "--cask", "electrum"],
    ]
    assert runner.calls[-1][1]["HOMEBREW_NO_AUTO_UPDATE"] == "1"
    assert [(o.name, o.state, o.version_after) for o in outcomes] == [
        ("electrum", "installed", "4.0.3"),
        ("rav1e", "installed", "0.3.4"),
        ("wget", "not_applicable", None),
    ]


async def test_brew_runs_as_the_configured_user(runner) -> None:
    runner.on("sudo", stdout='{"formulae": [], "casks": []}')
    provider = HomebrewProvider(runner=runner, refresh=False, user="alice")
    await provider.scan()
    assert runner.calls[0][0] == ["sudo", "-u", "alice", "-H", "--", *LIST_FORMULAE_ARGV]


async def test_brew_refusing_root_is_unavailable_with_a_hint(runner) -> None:
    runner.on(
        *LIST_FORMULAE_ARGV,
        exit_code=1,
        stderr="Error: Running Homebrew as root is extremely dangerous and no longer supported.\n",
    )
    with pytest.raises(Unavailable, match="refuses to run as root") as raised:
        await HomebrewProvider(runner=runner, refresh=False).scan()
    assert "user=" in raised.value.hint
