"""Unit tests of the Windows Update provider: the JSON its PowerShell scripts emit, and how they are run."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from fleetops.agent.patching.windows_update import (
    INSTALL_SCRIPT,
    POWERSHELL,
    SCAN_SCRIPT,
    TARGETS_VARIABLE,
    WindowsUpdateProvider,
    parse_install_json,
    parse_scan_json,
    powershell_argv,
)
from fleetops.common.errors import InvalidInput, Unavailable
from fleetops.common.patching import Classification, Severity


def script_of(argv: list[str]) -> str:
    assert argv[: len(POWERSHELL)] == list(POWERSHELL)
    return base64.b64decode(argv[-1]).decode("utf-16-le")


def test_scan_of_server_2016_values(fixture_text) -> None:
    scan = parse_scan_json(fixture_text("windows_update", "scan-server2016-semisynthetic.json"))
    ssu, cumulative = scan.updates
    assert (ssu.name, ssu.kb_id, ssu.classification, ssu.severity) == (
        "KB4521858",
        "KB4521858",
        Classification.SECURITY,
        Severity.CRITICAL,
    )
    assert ssu.title == "2019-10 Servicing Stack Update for Windows Server 2016 for x64-based Systems (KB4521858)"
    assert ssu.repository == "Windows Server 2016" and ssu.release_date is None
    assert cumulative.name == "KB4519998" and scan.reboot_pending is False
    assert (scan.os_family, scan.provider) == ("windows", "windows_update")


def test_scan_of_server_2012_r2_values(fixture_text) -> None:
    scan = parse_scan_json(fixture_text("windows_update", "scan-server2012r2-semisynthetic.json"))
    assert scan.updates[1].release_date == datetime(2017, 11, 14, tzinfo=UTC)
    assert [p.name for p in scan.installed] == ["KB3134758", "KB2843630", "KB3042058", "KB3081320"]
    assert scan.reboot_pending and "Component Based Servicing" in scan.reboot_reasons[0]


@pytest.mark.parametrize(
    ("categories", "severity", "classification", "expected_severity"),
    [
        (["Critical Updates", "Windows 10"], None, Classification.BUGFIX, Severity.UNSPECIFIED),
        (["Update Rollups"], "", Classification.BUGFIX, Severity.UNSPECIFIED),
        (
            ["Definition Updates", "Microsoft Defender Antivirus"],
            None,
            Classification.ENHANCEMENT,
            Severity.UNSPECIFIED,
        ),
        (
            "Security Updates",
            "Important",
            Classification.SECURITY,
            Severity.IMPORTANT,
        ),  # ConvertTo-Json unwraps one-element arrays
        (["Windows Server 2019"], "Low", Classification.OTHER, Severity.LOW),
    ],
)
def test_classification_and_msrc_severity(categories, severity, classification, expected_severity) -> None:
    text = json.dumps(
        {
            "OSVersion": "10.0.17763.7314",
            "Updates": {
                "UpdateID": "5bd8b87c-6b4f-4f9a-9a47-1c3f0e6a0c11",
                "RevisionNumber": 201,
                "Title": "Some update",
                "KBArticleIDs": "5034127",
                "MsrcSeverity": severity,
                "Categories": categories,
                "LastDeploymentChangeTime": "2024-01-09T08:00:00.0000000Z",
                "RebootRequired": True,
            },
            "Installed": None,
            "RebootPending": False,
            "RebootReasons": None,
        }
    )
    scan = parse_scan_json(text)
    (update,) = scan.updates
    assert (update.classification, update.severity) == (classification, expected_severity)
    assert (update.name, update.candidate_version, update.reboot_required) == ("KB5034127", "201", True)
    assert update.release_date == datetime(2024, 1, 9, 8, 0, tzinfo=UTC)
    assert scan.installed[0].name == "Windows" and scan.installed[0].version == "10.0.17763.7314"


def test_an_update_without_kb_is_named_by_its_id() -> None:
    text = '{"Updates": [{"UpdateID": "abc-123", "Title": "Driver", "KBArticleIDs": [], "Categories": ["Drivers"]}]}'
    assert parse_scan_json(text).updates[0].name == "abc-123"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "printed nothing"),
        ('Exception calling "Search" with "1" argument(s): 0x8024402C', "not JSON"),
        ("[]", "expected a JSON object"),
        ('{"Installed": []}', "'Updates' list is missing"),
        ('{"Updates": [{"KBArticleIDs": ["1"]}]}', "has no Title"),
        ('{"Updates": [{"Title": "x", "KBArticleIDs": []}]}', "neither a KB number nor an UpdateID"),
        ('{"Updates": [{"Title": "x", "UpdateID": "a", "LastDeploymentChangeTime": "soon"}]}', "not an ISO 8601"),
    ],
)
def test_malformed_scan_output_is_a_clear_error(text, message) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_scan_json(text)


def test_install_results() -> None:
    report = parse_install_json(
        json.dumps(
            {
                "Results": [
                    {"Target": "KB1", "Title": "a", "ResultCode": 2, "HResult": 0, "RebootRequired": True},
                    {"Target": "KB2", "Title": "b", "ResultCode": 4, "HResult": -2145124329, "RebootRequired": False},
                    {"Target": "KB3", "Title": "c", "ResultCode": 3, "HResult": 0, "RebootRequired": False},
                ]
            }
        )
    )
    assert report.needs_restart == {"KB1"} and report.reported == {"KB1", "KB2", "KB3"}
    assert report.failures == {"KB2": "Windows Update failed (HRESULT 0x80240017)"}
    with pytest.raises(InvalidInput, match="no Target"):
        parse_install_json('{"Results": [{"ResultCode": 2}]}')


def test_scripts_use_the_com_api_and_the_registry_flags() -> None:
    assert "Microsoft.Update.Session" in SCAN_SCRIPT and "IsInstalled=0 and Type='Software'" in SCAN_SCRIPT
    for key in (
        "Component Based Servicing\\RebootPending",
        "Auto Update\\RebootRequired",
        "PendingFileRenameOperations",
    ):
        assert key in SCAN_SCRIPT
    assert "CreateUpdateDownloader" in INSTALL_SCRIPT and "CreateUpdateInstaller" in INSTALL_SCRIPT
    assert "Reboot" not in INSTALL_SCRIPT.replace("RebootRequired", "")  # the install never reboots
    assert script_of(powershell_argv("Write-Output 'é'")) == "Write-Output 'é'"


async def test_install_sends_exactly_the_approved_targets(runner, fixture_text) -> None:
    before = fixture_text("windows_update", "scan-server2016-semisynthetic.json")
    after = json.dumps({**json.loads(before), "Updates": json.loads(before)["Updates"][1:]})
    results = {
        "Results": [{"Target": "KB4521858", "Title": "SSU", "ResultCode": 2, "HResult": 0, "RebootRequired": False}]
    }
    runner.on(*powershell_argv(SCAN_SCRIPT), stdout=before, times=1)
    runner.on(*powershell_argv(INSTALL_SCRIPT), stdout=json.dumps(results))
    runner.on(*powershell_argv(SCAN_SCRIPT), stdout=after)

    outcomes = await WindowsUpdateProvider(runner=runner).install(["KB4521858", "KB0000001"])

    install_calls = [(argv, env) for argv, env in runner.calls if script_of(argv) == INSTALL_SCRIPT]
    assert len(install_calls) == 1
    assert json.loads(install_calls[0][1][TARGETS_VARIABLE]) == ["KB4521858"]
    assert [(o.name, o.state) for o in outcomes] == [("KB4521858", "installed"), ("KB0000001", "not_applicable")]


async def test_an_update_windows_did_not_select_fails(runner, fixture_text) -> None:
    scan = fixture_text("windows_update", "scan-server2016-semisynthetic.json")
    runner.on(*powershell_argv(SCAN_SCRIPT), stdout=scan)
    runner.on(*powershell_argv(INSTALL_SCRIPT), stdout='{"Results": []}')
    (outcome,) = await WindowsUpdateProvider(runner=runner).install(["KB4519998"])
    assert (outcome.state, outcome.message) == ("failed", "Windows Update did not select this update for installation")


async def test_a_failing_scan_script_is_unavailable(runner) -> None:
    runner.on(*powershell_argv(SCAN_SCRIPT), exit_code=1, stderr="Exception from HRESULT: 0x8024402C\n")
    with pytest.raises(Unavailable, match="0x8024402C") as raised:
        await WindowsUpdateProvider(runner=runner).scan()
    assert "wuauserv" in raised.value.hint
