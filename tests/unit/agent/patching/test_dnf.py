"""Unit tests of the dnf/yum provider against output recorded on Rocky 9, Fedora 34/42, RHEL 6/9 and CentOS 6/7."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleetops.agent.patching.dnf import (
    AdvisoryDetails,
    DnfProvider,
    parse_check_update,
    parse_needs_restarting,
    parse_updateinfo_info,
    parse_updateinfo_list,
)
from fleetops.agent.patching.interfaces import CommandResult
from fleetops.agent.patching.rpm import RPM_QUERY_ARGV, parse_rpm_query, split_nevra
from fleetops.common.errors import InvalidInput, Unavailable
from fleetops.common.patching import Classification, Severity

# -- rpm -qa ---------------------------------------------------------------------------------------


def test_rpm_query_recorded_on_rocky_9(fixture_text) -> None:
    packages = parse_rpm_query(fixture_text("dnf", "rpm-qa-rocky9.txt"))
    assert len(packages) == 110  # the trailing "package ... is not installed" line is not a package
    by_name = {p.name: p for p in packages}
    assert (by_name["openssl"].version, by_name["openssl"].arch) == ("1:3.0.7-24.el9", "aarch64")
    assert by_name["ca-certificates"].arch == "noarch"


def test_rpm_query_keeps_gpg_pubkeys_without_arch() -> None:
    assert parse_rpm_query("gpg-pubkey.(none) 8483c65d-5ccc5b19\n")[0].arch == ""


@pytest.mark.parametrize(("text", "message"), [("", "no installed packages"), ("bash\n", "line 1 is not")])
def test_rpm_query_malformed_output_is_a_clear_error(text, message) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_rpm_query(text)


def test_split_nevra() -> None:
    assert split_nevra("dhcp-client-12:4.4.2-11.b1.fc34.x86_64") == ("dhcp-client", "12:4.4.2-11.b1.fc34", "x86_64")
    assert split_nevra("python3-urllib3-1.25.10-5.fc34.noarch") == ("python3-urllib3", "1.25.10-5.fc34", "noarch")
    assert split_nevra("not-a-package") is None
    assert split_nevra("kernel.x86_64") is None


# -- check-update ----------------------------------------------------------------------------------


def test_check_update_recorded_on_rocky_9_dnf4(fixture_text) -> None:
    rows = parse_check_update(fixture_text("dnf", "check-update-rocky9-dnf4.txt"), 100)
    assert len(rows) == 110
    openssl = next(r for r in rows if r.name == "openssl")
    assert (openssl.arch, openssl.evr, openssl.repository) == ("aarch64", "1:3.5.8-1.el9_8", "baseos")


def test_check_update_recorded_on_fedora_42_dnf5(fixture_text) -> None:
    rows = parse_check_update(fixture_text("dnf", "check-update-fedora42-dnf5.txt"), 100)
    assert len(rows) == 20
    assert rows[-1].name == "vim-minimal" and rows[-1].evr == "2:9.2.390-1.fc42"


def test_check_update_yum_noise_wrapping_and_obsoletes(fixture_text) -> None:
    simple = parse_check_update(fixture_text("dnf", "yum-check-update-fedora20-simple.txt"), 100)
    assert [(r.name, r.arch, r.repository) for r in simple][-2:] == [
        ("dhclient", "i686", "updates"),
        ("selinux-policy", "noarch", "updates-testing"),
    ]
    notices = parse_check_update(fixture_text("dnf", "yum-check-update-centos7-broken-notices-excerpt.txt"), 100)
    wrapped = next(r for r in notices if r.name == "device-mapper-persistent-data")
    assert (wrapped.evr, wrapped.repository) == ("0.4.1-2.el7", "base")
    assert len(notices) == 14
    obsoletes = parse_check_update(fixture_text("dnf", "yum-check-update-centos7-obsoletes-excerpt.txt"), 100)
    assert len(obsoletes) == 7 and "NetworkManager-adsl" not in {r.name for r in obsoletes}


def test_check_update_skips_the_running_kernel_notice() -> None:
    text = (
        "kernel.x86_64   5.14.0-503.el9   baseos\n"
        "Security: kernel-core-5.14.0-427.el9.x86_64 is an installed security update\n"
        "Security: kernel-core-5.14.0-362.el9.x86_64 is the currently running version\n"
    )
    assert [r.name for r in parse_check_update(text, 100)] == ["kernel"]


def test_check_update_with_nothing_to_do() -> None:
    assert parse_check_update("", 0) == []
    assert parse_check_update("Last metadata expiration check: 0:01:02 ago on Mon.\n", 0) == []


@pytest.mark.parametrize("text", ["", "<html>502 Bad Gateway</html>\n", "Error: something odd\n"])
def test_check_update_reporting_updates_without_rows_is_a_clear_error(text) -> None:
    with pytest.raises(InvalidInput, match="exit 100"):
        parse_check_update(text, 100)


# -- updateinfo ------------------------------------------------------------------------------------


def test_updateinfo_list_recorded_on_fedora_34(fixture_text) -> None:
    rows = parse_updateinfo_list(fixture_text("dnf", "updateinfo-list-fedora34-security.txt"))
    assert len(rows) == 16
    kernel = next(r for r in rows if r.name == "kernel-core")
    assert (kernel.advisory_id, kernel.classification, kernel.severity) == (
        "FEDORA-2021-07dc0b3eb1",
        Classification.SECURITY,
        Severity.CRITICAL,
    )
    dhcp = next(r for r in rows if r.name == "dhcp-client")
    assert dhcp.evr == "12:4.4.2-11.b1.fc34" and dhcp.severity == Severity.IMPORTANT
    assert {r.severity for r in rows} == {Severity.CRITICAL, Severity.IMPORTANT, Severity.MODERATE, Severity.LOW}


def test_yum_list_sec_recorded_on_rhel_6(fixture_text) -> None:
    rows = parse_updateinfo_list(fixture_text("dnf", "yum-list-sec-rhel6.txt"))
    assert len(rows) == 26
    assert rows[0].name == "bind-libs" and rows[0].evr == "32:9.8.2-0.17.rc1.el6.3"
    assert rows[-1].name == "perl-version" and rows[-1].evr == "3:0.77-130.el6_4"


def test_updateinfo_list_dnf4_and_dnf5_layouts(fixture_text) -> None:
    dnf4 = parse_updateinfo_list(fixture_text("dnf", "updateinfo-list-dnf4-ci.txt"))
    assert [(r.advisory_id, r.classification, r.severity, r.issued) for r in dnf4] == [
        ("FEDORA-2999:002-02", Classification.ENHANCEMENT, Severity.UNSPECIFIED, None),
        ("FEDORA-2018-318f184000", Classification.BUGFIX, Severity.UNSPECIFIED, None),
    ]
    dnf5 = parse_updateinfo_list(fixture_text("dnf", "updateinfo-list-dnf5-ci.txt"))
    assert [(r.name, r.classification, r.severity, r.issued) for r in dnf5] == [
        ("glibc", Classification.BUGFIX, Severity.UNSPECIFIED, datetime(2019, 1, 17, tzinfo=UTC)),
        ("flac", Classification.ENHANCEMENT, Severity.MODERATE, datetime(2019, 1, 17, tzinfo=UTC)),
    ]
    verbose = parse_updateinfo_list(fixture_text("dnf", "updateinfo-list-rhel9-verbose-excerpt.txt"))
    assert verbose[1].name == "vim-minimal" and verbose[1].issued == datetime(2025, 11, 11, 11, 47, 33, tzinfo=UTC)


def test_updateinfo_list_with_the_installed_column() -> None:
    rows = parse_updateinfo_list("i FEDORA-2018-318f184113 Moderate/Sec. CQRlib-1.1.2-16.fc29.x86_64\n")
    assert rows[0].advisory_id == "FEDORA-2018-318f184113" and rows[0].severity == Severity.MODERATE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("RHSA-2024:1 Urgent glibc-2.28-26.fc29.x86_64\n", "unknown advisory type 'Urgent'"),
        ("Traceback (most recent call last):\n  File x\n", "no advisory row"),
    ],
)
def test_updateinfo_list_malformed_output_is_a_clear_error(text, message) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_updateinfo_list(text)


def test_updateinfo_list_empty_output_means_no_advisories() -> None:
    assert parse_updateinfo_list("") == []


def test_updateinfo_info_recorded_on_rhel_9(fixture_text) -> None:
    details = parse_updateinfo_info(fixture_text("dnf", "updateinfo-info-rhel9.txt"))
    assert details == {
        "RHSA-2025:22660": AdvisoryDetails(
            Classification.SECURITY, Severity.MODERATE, datetime(2025, 12, 3, 10, 38, 39, tzinfo=UTC)
        )
    }


def test_updateinfo_info_without_an_update_id_is_a_clear_error() -> None:
    assert parse_updateinfo_info("") == {}
    with pytest.raises(InvalidInput, match="Update ID"):
        parse_updateinfo_info("garbage that is not an advisory\n")


# -- needs-restarting ------------------------------------------------------------------------------


def test_needs_restarting_recorded_output(fixture_text) -> None:
    required = CommandResult(1, fixture_text("dnf", "needs-restarting-reboot-required.txt"), "")
    assert parse_needs_restarting(required) == (True, ("glibc was updated since boot", "kernel was updated since boot"))
    assert parse_needs_restarting(CommandResult(0, fixture_text("dnf", "needs-restarting-no-reboot.txt"), "")) == (
        False,
        (),
    )
    assert parse_needs_restarting(CommandResult(1, "", "No such command: needs-restarting.")) is None


# -- the provider, with a fake runner --------------------------------------------------------------

RPM = (
    "bash.x86_64 5.1.8-6.el9_1\nopenssl.x86_64 1:3.0.7-24.el9\n"
    "openssl-libs.x86_64 1:3.0.7-24.el9\ntzdata.noarch 2023c-1.el9\n"
)
CHECK = (
    "bash.x86_64            5.1.8-9.el9          baseos\n"
    "openssl.x86_64         1:3.5.8-1.el9_8      baseos\n"
    "openssl-libs.x86_64    1:3.5.8-1.el9_8      baseos\n"
    "tzdata.noarch          2026c-1.el9_8        baseos\n"
)
ADVISORIES = (
    "RLSA-2025:0925  Moderate/Sec.  openssl-1:3.2.2-6.el9.x86_64\n"
    "RLSA-2026:1111  Important/Sec. openssl-1:3.5.8-1.el9_8.x86_64\n"
    "RLSA-2026:1111  Important/Sec. openssl-libs-1:3.5.8-1.el9_8.x86_64\n"
    "RLBA-2026:2222  bugfix         bash-5.1.8-9.el9.x86_64\n"
)
INFO = (
    "===============================================================================\n"
    "  Important: openssl security update\n"
    "===============================================================================\n"
    "  Update ID: RLSA-2026:1111\n       Type: security\n    Updated: 2026-03-02 08:00:00\n"
    "===============================================================================\n"
    "  Update ID: RLSA-2025:0925\n       Type: security\n    Updated: 2025-02-20 00:00:00\n   Severity: Moderate\n"
)


def scripted(
    runner, check_exit=100, reboot=(1, "Core libraries or services have been updated since boot-up:\n  * kernel\n")
):
    runner.on(*RPM_QUERY_ARGV, stdout=RPM)
    runner.on("dnf", "-q", "check-update", stdout=CHECK, exit_code=check_exit)
    runner.on("dnf", "-q", "updateinfo", "list", stdout=ADVISORIES)
    runner.on("dnf", "-q", "updateinfo", "info", stdout=INFO)
    runner.on("needs-restarting", "-r", exit_code=reboot[0], stdout=reboot[1])
    return runner


async def test_scan_merges_updates_with_their_advisories(runner) -> None:
    scan = await DnfProvider(runner=scripted(runner)).scan()
    by_name = {u.name: u for u in scan.updates}
    openssl = by_name["openssl"]
    assert (openssl.installed_version, openssl.candidate_version) == ("1:3.0.7-24.el9", "1:3.5.8-1.el9_8")
    assert (openssl.classification, openssl.severity) == (Classification.SECURITY, Severity.IMPORTANT)
    assert openssl.advisory_ids == ("RLSA-2025:0925", "RLSA-2026:1111")
    assert openssl.release_date == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert (by_name["bash"].classification, by_name["bash"].severity) == (Classification.BUGFIX, Severity.UNSPECIFIED)
    assert (by_name["tzdata"].classification, by_name["tzdata"].advisory_ids) == (Classification.OTHER, ())
    assert scan.reboot_pending and scan.reboot_reasons == ("kernel was updated since boot",)
    assert ["dnf", "-q", "updateinfo", "list", "--updates"] in runner.argvs("dnf")
    assert all(env["LC_ALL"] == "C" for _, env in runner.calls)


async def test_unreadable_advisory_dates_do_not_fail_the_scan(runner) -> None:
    runner.on("dnf", "-q", "updateinfo", "info", stdout="nonsense\n")
    scan = await DnfProvider(runner=scripted(runner)).scan()
    assert all(u.release_date is None for u in scan.updates) and len(scan.updates) == 4


async def test_scan_with_no_updates_asks_for_no_advisories(runner) -> None:
    runner.on(*RPM_QUERY_ARGV, stdout=RPM).on("dnf", "-q", "check-update", stdout="", exit_code=0)
    runner.on("needs-restarting", "-r", raises=Unavailable("needs-restarting is not installed on this host"))
    runner.on("dnf", "needs-restarting", "-r", exit_code=0, stdout="Reboot should not be necessary.\n")
    scan = await DnfProvider(runner=runner).scan()
    assert scan.updates == () and scan.reboot_pending is False
    assert runner.argvs("dnf", "-q", "updateinfo") == []


async def test_a_failing_check_update_is_unavailable(runner) -> None:
    runner.on(*RPM_QUERY_ARGV, stdout=RPM)
    runner.on("dnf", "-q", "check-update", exit_code=1, stderr="Error: Failed to download metadata for repo 'baseos'\n")
    with pytest.raises(Unavailable, match="Failed to download metadata"):
        await DnfProvider(runner=runner).scan()


async def test_install_upgrades_exactly_the_approved_nevras(runner) -> None:
    after_rpm = RPM.replace("1:3.0.7-24.el9", "1:3.5.8-1.el9_8")
    after_check = "bash.x86_64   5.1.8-9.el9   baseos\ntzdata.noarch   2026c-1.el9_8   baseos\n"
    runner.on(*RPM_QUERY_ARGV, stdout=RPM, times=1).on(*RPM_QUERY_ARGV, stdout=after_rpm)
    runner.on("dnf", "-q", "check-update", stdout=CHECK, exit_code=100, times=1)
    runner.on("dnf", "-q", "check-update", stdout=after_check, exit_code=100)
    runner.on("dnf", "-q", "updateinfo", "list", stdout=ADVISORIES)
    runner.on("dnf", "-q", "updateinfo", "info", stdout=INFO)
    runner.on("needs-restarting", "-r", exit_code=0)
    runner.on("dnf", "-y")

    outcomes = await DnfProvider(runner=runner).install(["openssl", "openssl-libs", "kernel"])

    assert runner.argvs("dnf", "-y") == [
        [
            "dnf",
            "-y",
            "--setopt=install_weak_deps=False",
            "upgrade",
            "openssl-1:3.5.8-1.el9_8.x86_64",
            "openssl-libs-1:3.5.8-1.el9_8.x86_64",
        ]
    ]
    assert [(o.name, o.state, o.version_after) for o in outcomes] == [
        ("openssl", "installed", "1:3.5.8-1.el9_8"),
        ("openssl-libs", "installed", "1:3.5.8-1.el9_8"),
        ("kernel", "not_applicable", None),
    ]


def test_yum_spells_specs_and_commands_its_own_way() -> None:
    from fleetops.agent.patching.models import Update

    yum = DnfProvider(binary="yum")
    update = Update("openssl", "1:1.0.1e-42.el7", "1:1.0.1e-42.el7.4", "x86_64", "updates")
    assert yum.install_spec(update) == "1:openssl-1.0.1e-42.el7.4.x86_64"
    assert yum.install_argv(["x"]) == ["yum", "-y", "update", "x"]
    assert yum.updateinfo_argv("list") == ["yum", "-q", "updateinfo", "list", "updates"]
    assert DnfProvider().install_spec(update) == "openssl-1:1.0.1e-42.el7.4.x86_64"
    assert DnfProvider(refresh=True).check_update_argv() == ["dnf", "-q", "--refresh", "check-update"]
    with pytest.raises(InvalidInput):
        DnfProvider(binary="apt")  # type: ignore[arg-type]
