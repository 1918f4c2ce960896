"""The local apt repository helper (tests/support/apt_repo.py) does what the patching tests rely on.

Building packages and indexes only needs dpkg-deb; everything that installs packages or an apt
source runs as root on Debian or Ubuntu (CI) and skips elsewhere:

* after setup, ``apt-get --simulate upgrade`` (run exactly as the agent runs it) offers the three
  2.0 updates, two from the security suite, and the agent's parser classifies them as expected;
* ``apt-get install --only-upgrade fleetops-test-bugfix=2.0`` upgrades that package alone;
* teardown leaves no package, source file, apt list or repository behind.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetops.agent.patching.apt import SIMULATE_UPGRADE_ARGV, parse_simulated_upgrade

from apt_repo import (
    APT_ENV,
    BUGFIX_PACKAGE,
    LISTS_DIR,
    REGULAR_SUITE,
    REJECTED_PACKAGE,
    SECURITY_PACKAGE,
    SECURITY_SUITE,
    AptTestSetup,
    LocalAptRepository,
    apt_fixture,
    apt_setup,
    build_package,
    installed_version,
    is_known_to_dpkg,
    require_apt,
)

needs_dpkg_deb = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian or Ubuntu)")


@pytest.fixture
def apt_test_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AptTestSetup]:
    yield from apt_fixture(tmp_path_factory, sources_name="fleetops-test-support")


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **APT_ENV}, timeout=300, check=True)


# --------------------------------------------------------------------------------------------------
# No root needed


@needs_dpkg_deb
def test_build_package_makes_a_deb_with_a_version_file(tmp_path: Path) -> None:
    deb = build_package(tmp_path, "fleetops-test-demo", "1.5", description="demo", depends="dpkg")

    assert deb == tmp_path / "fleetops-test-demo_1.5_all.deb"
    fields = _run("dpkg-deb", "--field", str(deb)).stdout
    assert "Package: fleetops-test-demo\n" in fields
    assert "Version: 1.5\n" in fields
    assert "Architecture: all\n" in fields
    assert "Depends: dpkg\n" in fields
    contents = _run("dpkg-deb", "--contents", str(deb)).stdout
    assert "root/root" in contents and "./usr/share/fleetops-test-demo/VERSION" in contents
    extracted = tmp_path / "x"
    _run("dpkg-deb", "--extract", str(deb), str(extracted))
    assert (extracted / "usr/share/fleetops-test-demo/VERSION").read_text() == "1.5\n"


@needs_dpkg_deb
def test_publish_writes_indexes_and_a_release_that_lists_them(tmp_path: Path) -> None:
    debs = tmp_path / "debs"
    debs.mkdir()
    repo = LocalAptRepository(tmp_path / "repo", architecture="amd64")
    repo.add(build_package(debs, "fleetops-test-a", "2.0", description="a"), SECURITY_SUITE)
    repo.add(build_package(debs, "fleetops-test-b", "2.0", description="b"), REGULAR_SUITE)
    repo.publish()

    dist = repo.root / "dists" / SECURITY_SUITE
    packages = (dist / "main/binary-amd64/Packages").read_bytes()
    assert gzip.decompress((dist / "main/binary-amd64/Packages.gz").read_bytes()) == packages
    assert b"Package: fleetops-test-a\n" in packages and b"fleetops-test-b" not in packages
    assert f"Filename: pool/{SECURITY_SUITE}/main/fleetops-test-a_2.0_all.deb\n".encode() in packages
    stanza = dict(line.split(": ", 1) for line in packages.decode().splitlines() if ": " in line)
    pooled = (repo.root / stanza["Filename"]).read_bytes()
    assert stanza["SHA256"] == hashlib.sha256(pooled).hexdigest() and int(stanza["Size"]) == len(pooled)

    release = (dist / "Release").read_text()
    for line in (
        "Origin: fleetops-test",
        f"Label: {SECURITY_SUITE}",
        f"Suite: {SECURITY_SUITE}",
        f"Codename: {SECURITY_SUITE}",
        "Architectures: amd64",
        "Components: main",
    ):
        assert line + "\n" in release
    assert "\nDate: " in release
    digest = hashlib.sha256(packages).hexdigest()
    assert f" {digest} {len(packages):>8} main/binary-amd64/Packages\n" in release
    assert f"MD5Sum:\n {hashlib.md5(packages).hexdigest()} " in release
    assert repo.sources_line(SECURITY_SUITE) == f"deb [trusted=yes arch=amd64] file:{repo.root} {SECURITY_SUITE} main"


# --------------------------------------------------------------------------------------------------
# Root on Debian/Ubuntu


def test_setup_offers_three_updates_classified_by_suite(apt_test_setup: AptTestSetup) -> None:
    setup = apt_test_setup
    for update in setup.updates:
        assert installed_version(update.name) == "1.0"
        assert update.payload.read_text() == "1.0\n"

    simulated = _run(*SIMULATE_UPGRADE_ARGV).stdout
    ours = {u.name: u for u in parse_simulated_upgrade(simulated) if u.name.startswith("fleetops-test-")}

    assert sorted(ours) == sorted(setup.names)
    assert f"Inst {SECURITY_PACKAGE} [1.0] (2.0 {SECURITY_SUITE}:1/{SECURITY_SUITE} [all])" in simulated
    assert f"Inst {BUGFIX_PACKAGE} [1.0] (2.0 {REGULAR_SUITE}:1/{REGULAR_SUITE} [all])" in simulated
    assert f"Inst {REJECTED_PACKAGE} [1.0] (2.0 {SECURITY_SUITE}:1/{SECURITY_SUITE} [all])" in simulated
    for expected in setup.updates:
        found = ours[expected.name]
        assert (found.installed_version, found.candidate_version, found.arch) == ("1.0", "2.0", "all")
        assert found.repository == expected.repository
        assert found.classification.value == expected.classification
    assert [ours[n].classification.value for n in (SECURITY_PACKAGE, BUGFIX_PACKAGE, REJECTED_PACKAGE)] == [
        "security",
        "bugfix",
        "security",
    ]


def test_only_upgrade_installs_exactly_the_named_package(apt_test_setup: AptTestSetup) -> None:
    setup = apt_test_setup

    _run("apt-get", "install", "-y", "-q", "--only-upgrade", f"{BUGFIX_PACKAGE}=2.0")

    assert installed_version(BUGFIX_PACKAGE) == "2.0"
    assert setup.bugfix.payload.read_text() == "2.0\n"
    assert installed_version(SECURITY_PACKAGE) == "1.0"
    assert installed_version(REJECTED_PACKAGE) == "1.0"


def test_update_refreshes_only_the_test_repository(apt_test_setup: AptTestSetup) -> None:
    repo = apt_test_setup.repo
    others = {p: p.stat().st_mtime_ns for p in LISTS_DIR.iterdir() if p.is_file() and p not in repo.list_files()}

    output = repo.update().stdout

    fetched = [line for line in output.splitlines() if line.startswith(("Get:", "Hit:", "Ign:"))]
    assert fetched and all(f" {repo.uri} " in line for line in fetched)
    assert {p: p.stat().st_mtime_ns for p in others if p.exists()} == others
    assert repo.list_files()


def test_teardown_leaves_the_system_as_it_was(tmp_path: Path) -> None:
    require_apt()
    sources = sorted(Path("/etc/apt/sources.list.d").iterdir())
    lists = sorted(LISTS_DIR.rglob("*"))

    setup_steps = apt_setup(tmp_path, sources_name="fleetops-test-support")
    setup = next(setup_steps)
    repo = setup.repo
    assert repo.sources_path is not None and repo.sources_path.exists() and repo.list_files()
    setup_steps.close()

    for name in setup.names:
        assert installed_version(name) is None
        assert not is_known_to_dpkg(name), f"dpkg still knows {name}"
        assert not setup.by_name(name).payload.parent.exists()
    listed = _run("dpkg-query", "-W", "-f", "${Package}\n").stdout.split()
    assert not [name for name in listed if name.startswith("fleetops-test-")]
    assert sorted(Path("/etc/apt/sources.list.d").iterdir()) == sources
    assert sorted(LISTS_DIR.rglob("*")) == lists
    assert not repo.root.exists()
