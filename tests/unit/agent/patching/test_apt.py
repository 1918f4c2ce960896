"""Unit tests of the apt provider: parsers on output recorded on Debian 12 and Ubuntu 22.04, argv by a fake
runner, and a scan of this machine's real package database when it has one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fleetops.agent.patching.apt import (
    DPKG_QUERY_ARGV,
    INSTALL_ARGV_PREFIX,
    REFRESH_ARGV,
    SIMULATE_UPGRADE_ARGV,
    AptProvider,
    classify_origins,
    install_failure_reason,
    install_spec,
    parse_dpkg_query,
    parse_simulated_upgrade,
    read_reboot_required,
)
from fleetops.agent.patching.interfaces import CommandResult
from fleetops.agent.patching.models import Update
from fleetops.agent.patching.wire import scan_to_proto
from fleetops.common.errors import InvalidInput, Unavailable
from fleetops.common.patching import Classification, Severity
from fleetops.controller.rpc.patch_report import scan_from_proto

pytestmark = pytest.mark.timeout(300)


# -- dpkg-query ------------------------------------------------------------------------------------


def test_dpkg_query_recorded_on_debian_12(fixture_text) -> None:
    packages = parse_dpkg_query(fixture_text("apt", "dpkg-query.txt"))
    assert len(packages) == 714
    by_name = {p.name: p for p in packages}
    assert by_name["adduser"].version == "3.134" and by_name["adduser"].arch == "all"
    assert by_name["bash"].version == "5.2.15-2+b8" and by_name["bash"].arch == "amd64"


def test_dpkg_query_skips_packages_that_are_not_installed() -> None:
    text = "bash\t5.2.15-2+b8\tamd64\tii \nold-lib\t1.0\tamd64\trc \nheld\t2.0\tall\thi \n"
    assert [p.name for p in parse_dpkg_query(text)] == ["bash", "held"]


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "listed no packages"), ("   \n", "listed no packages"), ("bash 5.2 amd64 ii\n", "line 1 is not")],
)
def test_dpkg_query_malformed_output_is_a_clear_error(text, message) -> None:
    with pytest.raises(InvalidInput, match=message) as raised:
        parse_dpkg_query(text)
    assert "run `dpkg-query" in raised.value.hint


# -- apt-get --simulate upgrade --------------------------------------------------------------------


def test_simulated_upgrade_recorded_on_debian_12(fixture_text) -> None:
    updates = parse_simulated_upgrade(fixture_text("apt", "apt-get-simulate-upgrade.txt"))
    assert len(updates) == 135
    by_name = {u.name: u for u in updates}
    gcrypt = by_name["libgcrypt20"]
    assert (gcrypt.installed_version, gcrypt.candidate_version, gcrypt.arch) == (
        "1.10.1-3",
        "1.10.1-3+deb12u1",
        "amd64",
    )
    assert gcrypt.repository == "Debian:12.15/oldstable, Debian-Security:12/oldstable-security"
    assert gcrypt.classification == Classification.SECURITY
    assert by_name["liblzma-dev"].classification == Classification.SECURITY  # "[]" after the arch is ignored
    base_files = by_name["base-files"]
    assert base_files.classification == Classification.OTHER  # a Debian point release mixes fixes
    assert (base_files.severity, base_files.release_date, base_files.advisory_ids) == (Severity.UNSPECIFIED, None, ())
    assert sum(u.classification == Classification.SECURITY for u in updates) == 81


def test_simulated_upgrade_recorded_on_ubuntu_2204(fixture_text) -> None:
    updates = parse_simulated_upgrade(fixture_text("apt", "ubuntu-2204-apt-get-simulate-upgrade.txt"))
    assert len(updates) == 58
    by_name = {u.name: u for u in updates}
    assert by_name["libc6"].classification == Classification.SECURITY
    assert by_name["apt"].classification == Classification.BUGFIX  # jammy-updates only
    assert by_name["ncurses-base"].arch == "all"
    assert by_name["bsdutils"].installed_version == "1:2.37.2-4ubuntu3"
    assert sum(u.classification == Classification.SECURITY for u in updates) == 45


def test_simulated_upgrade_with_nothing_to_do(fixture_text) -> None:
    assert parse_simulated_upgrade(fixture_text("apt", "apt-get-simulate-upgrade-none.txt")) == []


def test_new_dependencies_are_not_updates_and_foreign_arch_names_are_bare() -> None:
    text = (
        "Inst linux-image-6.8.0-50-generic (6.8.0-50.51 Ubuntu:24.04/noble-updates, "
        "Ubuntu:24.04/noble-security [amd64])\n"
        "Inst libc6:i386 [2.36-9] (2.36-9+deb12u4 Debian:12.5/stable [i386])\n"
        "Inst local-tool [1.0] (1.1 [amd64])\n"
        "3 upgraded, 1 newly installed, 0 to remove and 0 not upgraded.\n"
    )
    updates = parse_simulated_upgrade(text)
    assert [(u.name, u.arch, u.repository) for u in updates] == [
        ("libc6", "i386", "Debian:12.5/stable"),
        ("local-tool", "amd64", ""),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "summary line"),
        ("E: Unable to locate package\n", "summary line"),
        ("Inst broken line\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n", "line 1 is not 'Inst"),
    ],
)
def test_simulated_upgrade_malformed_output_is_a_clear_error(text, message) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_simulated_upgrade(text)


@pytest.mark.parametrize(
    ("origins", "expected"),
    [
        (["Debian-Security:12/bookworm-security"], Classification.SECURITY),
        (["Ubuntu:22.04/jammy-updates", "Ubuntu:22.04/jammy-security"], Classification.SECURITY),
        (["Ubuntu:22.04/jammy-updates"], Classification.BUGFIX),
        (["Debian:12.5/stable-updates"], Classification.BUGFIX),
        (["Debian Backports:bookworm-backports/bookworm-backports"], Classification.ENHANCEMENT),
        (["Debian:12.15/oldstable"], Classification.OTHER),
        ([], Classification.OTHER),
    ],
)
def test_classification_comes_from_the_pocket(origins, expected) -> None:
    assert classify_origins(origins) == expected


# -- reboot-required -------------------------------------------------------------------------------


def test_reboot_required_file_and_its_packages(tmp_path: Path) -> None:
    flag = tmp_path / "reboot-required"
    assert read_reboot_required(flag) == (False, ())
    flag.write_text("*** System restart required ***\n")
    assert read_reboot_required(flag) == (True, (f"{flag} exists",))
    (tmp_path / "reboot-required.pkgs").write_text("linux-image-6.1.0-18-amd64\nlibc6\nlibc6\n")
    assert read_reboot_required(flag) == (True, ("linux-image-6.1.0-18-amd64 was updated", "libc6 was updated"))


# -- the provider, with a fake runner --------------------------------------------------------------

DPKG = "bash\t5.2.15-2+b8\tamd64\tii \nzip\t3.0-13\tamd64\tii \nlibc6\t2.36-9\tamd64\tii \nlibc6\t2.36-9\ti386\tii \n"
SIMULATION_BEFORE = (
    "Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])\n"
    "Inst zip [3.0-13] (3.0-13+deb12u1 Debian-Security:12/oldstable-security [amd64])\n"
    "Inst libc6 [2.36-9] (2.36-9+deb12u13 Debian:12.15/oldstable [amd64])\n"
    "Inst libc6:i386 [2.36-9] (2.36-9+deb12u13 Debian:12.15/oldstable [i386])\n"
    "4 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n"
)
NOTHING = "0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n"


async def test_scan_refreshes_then_reads_dpkg_and_the_simulation(runner, tmp_path: Path) -> None:
    runner.on(*REFRESH_ARGV).on(*DPKG_QUERY_ARGV, stdout=DPKG).on(*SIMULATE_UPGRADE_ARGV, stdout=SIMULATION_BEFORE)
    (tmp_path / "reboot-required").write_text("")
    provider = AptProvider(runner=runner, reboot_required_path=tmp_path / "reboot-required")
    scan = await provider.scan()
    assert [argv for argv, _ in runner.calls] == [
        list(REFRESH_ARGV),
        list(DPKG_QUERY_ARGV),
        list(SIMULATE_UPGRADE_ARGV),
    ]
    env = runner.calls[0][1]
    assert env["DEBIAN_FRONTEND"] == "noninteractive" and env["LC_ALL"] == "C"
    assert (scan.provider, scan.os_family, scan.reboot_pending) == ("apt", "linux", True)
    assert len(scan.installed) == 4 and len(scan.updates) == 4


async def test_scan_without_refresh_skips_apt_get_update(runner, tmp_path: Path) -> None:
    runner.on(*DPKG_QUERY_ARGV, stdout=DPKG).on(*SIMULATE_UPGRADE_ARGV, stdout=NOTHING)
    scan = await AptProvider(runner=runner, refresh=False, reboot_required_path=tmp_path / "none").scan()
    assert runner.argvs("apt-get", "update") == []
    assert scan.updates == () and scan.reboot_pending is False


async def test_a_locked_database_is_unavailable(runner, tmp_path: Path) -> None:
    runner.on(
        *REFRESH_ARGV,
        exit_code=100,
        stderr="E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)\n",
    )
    with pytest.raises(Unavailable, match="locked") as raised:
        await AptProvider(runner=runner, reboot_required_path=tmp_path / "none").scan()
    assert "retry" in raised.value.hint


async def test_a_failing_refresh_is_unavailable_with_apts_words(runner, tmp_path: Path) -> None:
    runner.on(*REFRESH_ARGV, exit_code=100, stderr="E: Failed to fetch http://deb.debian.org/...  Temporary failure\n")
    with pytest.raises(Unavailable, match="exit code 100: E: Failed to fetch"):
        await AptProvider(runner=runner, reboot_required_path=tmp_path / "none").scan()


async def test_install_pins_exactly_the_approved_packages(runner, tmp_path: Path) -> None:
    after_simulation = "Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])\n" + NOTHING
    after_dpkg = DPKG.replace("zip\t3.0-13\t", "zip\t3.0-13+deb12u1\t").replace("2.36-9\t", "2.36-9+deb12u13\t")
    runner.on(*DPKG_QUERY_ARGV, stdout=DPKG, times=1).on(*SIMULATE_UPGRADE_ARGV, stdout=SIMULATION_BEFORE, times=1)
    runner.on(*INSTALL_ARGV_PREFIX)
    runner.on(*DPKG_QUERY_ARGV, stdout=after_dpkg).on(*SIMULATE_UPGRADE_ARGV, stdout=after_simulation)
    provider = AptProvider(runner=runner, refresh=False, reboot_required_path=tmp_path / "none")

    outcomes = await provider.install(["zip", "libc6", "zip", "nginx"])

    installs = runner.argvs("apt-get", "install")
    assert installs == [[*INSTALL_ARGV_PREFIX, "zip:amd64=3.0-13+deb12u1", "libc6:amd64=2.36-9+deb12u13",
                         "libc6:i386=2.36-9+deb12u13"]]  # fmt: skip
    assert "bash" not in " ".join(installs[0])  # bash was not approved
    assert "--only-upgrade" in installs[0] and "Dpkg::Options::=--force-confold" in installs[0]
    install_env = runner.calls[2][1]
    assert install_env["DEBIAN_FRONTEND"] == "noninteractive"
    assert [(o.name, o.state, o.version_after) for o in outcomes] == [
        ("zip", "installed", "3.0-13+deb12u1"),
        ("libc6", "installed", "2.36-9+deb12u13"),
        ("nginx", "not_applicable", None),
    ]
    assert "not offered" in outcomes[2].message


async def test_a_failed_batch_is_retried_per_package_and_the_failure_lands_on_its_package(
    runner, tmp_path: Path
) -> None:
    before = (
        "Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])\n"
        "Inst zip [3.0-13] (3.0-13+deb12u1 Debian-Security:12/oldstable-security [amd64])\n" + NOTHING
    )
    after = "Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])\n" + NOTHING
    runner.on(*DPKG_QUERY_ARGV, stdout=DPKG, times=1).on(*SIMULATE_UPGRADE_ARGV, stdout=before, times=1)
    runner.on(*INSTALL_ARGV_PREFIX, "bash:amd64=5.2.15-2+b13", "zip:amd64=3.0-13+deb12u1", exit_code=100,
              stderr="E: Version '5.2.15-2+b13' for 'bash' was not found\n")  # fmt: skip
    runner.on(*INSTALL_ARGV_PREFIX, "bash:amd64=5.2.15-2+b13", exit_code=100,
              stderr="E: Version '5.2.15-2+b13' for 'bash' was not found\n")  # fmt: skip
    runner.on(*INSTALL_ARGV_PREFIX, "zip:amd64=3.0-13+deb12u1")
    runner.on(*DPKG_QUERY_ARGV, stdout=DPKG.replace("zip\t3.0-13\t", "zip\t3.0-13+deb12u1\t"))
    runner.on(*SIMULATE_UPGRADE_ARGV, stdout=after)
    provider = AptProvider(runner=runner, refresh=False, reboot_required_path=tmp_path / "none")

    outcomes = await provider.install(["bash", "zip"])

    assert len(runner.argvs("apt-get", "install")) == 3  # the batch, then one per package
    assert outcomes[0].state == "failed" and outcomes[0].version_after == "5.2.15-2+b8"
    assert outcomes[0].message == "apt-get install failed (exit 100): Version '5.2.15-2+b13' for 'bash' was not found"
    assert (outcomes[1].state, outcomes[1].version_after) == ("installed", "3.0-13+deb12u1")


async def test_install_of_nothing_applicable_runs_no_apt_get_install(runner, tmp_path: Path) -> None:
    runner.on(*DPKG_QUERY_ARGV, stdout=DPKG).on(*SIMULATE_UPGRADE_ARGV, stdout=NOTHING)
    outcomes = await AptProvider(runner=runner, refresh=False, reboot_required_path=tmp_path / "x").install(["bash"])
    assert runner.argvs("apt-get", "install") == []
    assert outcomes[0].state == "not_applicable"
    assert outcomes[0].message == "no update is available for bash (installed 5.2.15-2+b8)"


async def test_install_refuses_names_with_control_characters(runner) -> None:
    with pytest.raises(InvalidInput):
        await AptProvider(runner=runner).install(["bash\n--purge"])
    with pytest.raises(InvalidInput):
        await AptProvider(runner=runner).install([""])
    assert runner.calls == []
    assert await AptProvider(runner=runner).install([]) == []


def test_install_errors_recorded_on_debian_12_name_every_failure(fixture_text) -> None:
    result = CommandResult(100, fixture_text("apt", "apt-get-install-unknown-version.stdout"),
                           fixture_text("apt", "apt-get-install-unknown-version.stderr"))  # fmt: skip
    assert install_failure_reason(result) == (
        "apt-get install failed (exit 100): Version '9.9-9' for 'bash' was not found; "
        "Unable to locate package nosuchpackage-xyz"
    )
    assert (
        install_failure_reason(CommandResult(0, fixture_text("apt", "apt-get-install-simulate-zip-unzip.txt"), ""))
        is None
    )
    simulated = parse_simulated_upgrade(fixture_text("apt", "apt-get-install-simulate-zip-unzip.txt"))
    assert [(u.name, u.candidate_version) for u in simulated] == [
        ("unzip", "6.0-28+deb12u1"),
        ("zip", "3.0-13+deb12u1"),
    ]


def test_install_spec_qualifies_the_architecture() -> None:
    assert install_spec(Update("tzdata", "1", "2", "all", "")) == "tzdata=2"
    assert install_spec(Update("libc6", "1", "2", "i386", "")) == "libc6:i386=2"


# -- this machine, for real ------------------------------------------------------------------------

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="dpkg-query is not installed here")


@needs_dpkg
async def test_the_real_package_database_parses() -> None:
    from fleetops.agent.patching.process import SubprocessRunner

    result = await SubprocessRunner().run(list(DPKG_QUERY_ARGV), env={"LC_ALL": "C"}, timeout=120)
    assert result.exit_code == 0
    packages = parse_dpkg_query(result.stdout)
    assert any(p.name == "dpkg" for p in packages)


@needs_dpkg
@pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get is not installed here")
async def test_a_real_scan_of_this_machine_does_not_crash(tmp_path: Path) -> None:
    scan = await AptProvider(refresh=False, reboot_required_path=tmp_path / "reboot-required").scan()
    assert scan.provider == "apt" and scan.installed
    installed = {(p.name, p.arch): p.version for p in scan.installed}
    for update in scan.updates:
        assert update.candidate_version and update.installed_version
        assert installed.get((update.name, update.arch)) == update.installed_version
    assert scan_from_proto(scan_to_proto(scan)).provider == "apt"  # the wire takes every real record
