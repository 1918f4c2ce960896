"""Agent releases: read from the package, signed with the release key, stored, chosen, rolled out."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fleetops.common.errors import Conflict, InvalidInput, NotFound
from fleetops.common.release_signature import ReleaseRefused, verify_package
from fleetops.controller.objects.local import LocalDirectoryStore
from fleetops.controller.releases.package import read_deb, version_key
from fleetops.controller.releases.service import PREFIX, AgentReleases
from fleetops.controller.releases.signing import load_release_signer

from fake_debs import deb


@pytest.fixture
def releases(tmp_path: Path) -> AgentReleases:
    return AgentReleases(LocalDirectoryStore(tmp_path / "objects"), load_release_signer(tmp_path / "ca", create=True))


def test_the_package_describes_itself() -> None:
    info = read_deb(deb("0.1.1-3", "arm64"))
    assert (info.version, info.arch, info.file_name) == ("0.1.1", "arm64", "fleetops-agent_0.1.1-3_arm64.deb")
    with pytest.raises(InvalidInput, match="not fleetops-agent"):
        read_deb(deb(package="curl"))
    with pytest.raises(InvalidInput, match="not a Debian package"):
        read_deb(b"PK\x03\x04 a zip")


async def test_an_added_release_is_signed_over_its_bytes_and_verifies(releases: AgentReleases) -> None:
    data = deb()
    stored = await releases.add(data)
    m = stored.manifest
    assert (m.file_name, m.version, m.arch, m.size) == ("fleetops-agent_0.1.1-1_amd64.deb", "0.1.1", "amd64", len(data))
    assert m.sha256 == hashlib.sha256(data).hexdigest() and m.key_id == releases.key_id
    verify_package(m, releases.public_key, m.sha256, m.size)
    got = b"".join([chunk async for chunk in releases.read(m.file_name)])
    assert got == data
    assert (await releases.get(m.file_name)).manifest == m


async def test_a_package_changed_in_the_store_no_longer_verifies(releases: AgentReleases, tmp_path: Path) -> None:
    m = (await releases.add(deb())).manifest
    path = tmp_path / "objects" / PREFIX / m.file_name
    path.write_bytes(path.read_bytes().replace(b"files", b"evil!"))
    served = b"".join([chunk async for chunk in releases.read(m.file_name)])
    with pytest.raises(ReleaseRefused):
        verify_package(m, releases.public_key, hashlib.sha256(served).hexdigest(), len(served))


async def test_adding_the_same_package_twice_changes_nothing_and_other_contents_conflict(
    releases: AgentReleases,
) -> None:
    first = await releases.add(deb())
    assert await releases.add(deb()) == first
    with pytest.raises(Conflict, match="exists with other contents"):
        await releases.add(deb(payload=b"other files"))


async def test_the_newest_version_is_chosen_unless_one_is_named(releases: AgentReleases) -> None:
    for version, arch in (("0.1.9-1", "amd64"), ("0.1.10-1", "amd64"), ("0.1.10-1", "arm64"), ("0.1.2-1", "amd64")):
        await releases.add(deb(version, arch))
    assert [r.manifest.version for r in await releases.list_releases()] == ["0.1.10", "0.1.10", "0.1.9", "0.1.2"]
    assert {r.manifest.arch for r in await releases.choose()} == {"amd64", "arm64"}
    assert [r.manifest.file_name for r in await releases.choose("0.1.9")] == ["fleetops-agent_0.1.9-1_amd64.deb"]
    with pytest.raises(NotFound, match="no agent release of version 9.9.9") as refused:
        await releases.choose("9.9.9")
    assert refused.value.hint == "known versions: 0.1.10, 0.1.9, 0.1.2"


async def test_no_release_yet_says_how_to_add_one(releases: AgentReleases) -> None:
    with pytest.raises(NotFound, match="no agent release has been added") as refused:
        await releases.choose()
    assert "release add" in refused.value.hint
    with pytest.raises(InvalidInput):
        await releases.get("../../ca/release-signing.key")


def test_version_order() -> None:
    assert sorted(["0.1.10", "0.1.9", "0.2.0", "0.1.1"], key=version_key) == ["0.1.1", "0.1.9", "0.1.10", "0.2.0"]


def test_the_release_key_is_made_once_and_kept(tmp_path: Path) -> None:
    first = load_release_signer(tmp_path, create=True)
    assert load_release_signer(tmp_path).key_id == first.key_id
    assert (tmp_path / "release-signing.key").stat().st_mode & 0o777 == 0o600
    with pytest.raises(NotFound):
        load_release_signer(tmp_path / "elsewhere")
