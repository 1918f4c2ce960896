"""Unit tests of fleetops.agent.inventory: OS naming, disk/address selection, collection on this host."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from fleetops.agent import inventory as inv
from fleetops.agent.inventory import (
    Disk,
    Inventory,
    collect_inventory,
    describe_linux,
    describe_macos,
    describe_windows,
    filter_ip_addresses,
    normalize_arch,
    parse_os_release,
    select_disks,
)
from fleetops.agent.version import AGENT_VERSION
from fleetops.common.errors import InvalidInput

FIXTURES = Path(__file__).parent / "fixtures" / "os-release"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# os-release


@pytest.mark.parametrize(
    ("name", "expected_fields", "expected_description"),
    [
        (
            "debian-12",
            {
                "NAME": "Debian GNU/Linux",
                "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)",
                "VERSION_ID": "12",
                "VERSION": "12 (bookworm)",
                "VERSION_CODENAME": "bookworm",
                "ID": "debian",
                "HOME_URL": "https://www.debian.org/",
            },
            ("Debian GNU/Linux", "12"),
        ),
        (
            "ubuntu-24.04",
            {
                "NAME": "Ubuntu",
                "PRETTY_NAME": "Ubuntu 24.04.1 LTS",
                "VERSION_ID": "24.04",
                "VERSION": "24.04.1 LTS (Noble Numbat)",
                "ID": "ubuntu",
                "ID_LIKE": "debian",
                "UBUNTU_CODENAME": "noble",
                "LOGO": "ubuntu-logo",
            },
            ("Ubuntu", "24.04"),
        ),
        (
            "rhel-9",
            {
                "NAME": "Red Hat Enterprise Linux",
                "PRETTY_NAME": "Red Hat Enterprise Linux 9.4 (Plow)",
                "VERSION_ID": "9.4",
                "ID": "rhel",
                "ID_LIKE": "fedora",
                "PLATFORM_ID": "platform:el9",
                "ANSI_COLOR": "0;31",
                "CPE_NAME": "cpe:/o:redhat:enterprise_linux:9::baseos",
                # after the blank line in the real file
                "REDHAT_BUGZILLA_PRODUCT_VERSION": "9.4",
                "REDHAT_SUPPORT_PRODUCT_VERSION": "9.4",
            },
            ("Red Hat Enterprise Linux", "9.4"),
        ),
        (
            "alpine-3.20",
            {
                "NAME": "Alpine Linux",
                "PRETTY_NAME": "Alpine Linux v3.20",
                "VERSION_ID": "3.20.3",
                "ID": "alpine",
                "BUG_REPORT_URL": "https://gitlab.alpinelinux.org/alpine/aports/-/issues",
            },
            ("Alpine Linux", "3.20.3"),
        ),
        (
            "opensuse-leap-15.6",
            {
                "NAME": "openSUSE Leap",
                "PRETTY_NAME": "openSUSE Leap 15.6",
                "VERSION_ID": "15.6",
                "VERSION": "15.6",
                "ID": "opensuse-leap",
                "ID_LIKE": "suse opensuse",
                "CPE_NAME": "cpe:/o:opensuse:leap:15.6",
            },
            ("openSUSE Leap", "15.6"),
        ),
    ],
)
def test_parse_os_release_real_files(
    name: str, expected_fields: dict[str, str], expected_description: tuple[str, str]
) -> None:
    text = fixture(name)
    assert text.startswith("# Source: ")
    fields = parse_os_release(text)
    for key, value in expected_fields.items():
        assert fields[key] == value, key
    # nothing leaks from the comment line or blank lines, and no value keeps its quotes
    assert all(k.isupper() or "_" in k for k in fields)
    assert not any(v.startswith(('"', "'")) or v.endswith(('"', "'")) for v in fields.values())
    assert describe_linux(fields) == expected_description


def test_parse_os_release_fixture_keys_match_assignment_lines() -> None:
    for path in sorted(FIXTURES.iterdir()):
        text = path.read_text(encoding="utf-8")
        assignments = [line for line in text.splitlines() if line and not line.startswith("#")]
        assert len(parse_os_release(text)) == len(assignments), path.name


def test_parse_os_release_quoting_and_escapes() -> None:
    text = "\n".join(
        [
            "  # an indented comment",
            "",
            "   ",
            "PLAIN=value",
            'DOUBLE="two words"',
            "SINGLE='single $HOME \\n kept'",
            r'ESCAPED="a \"quoted\" \\ back \$dollar \`tick\` \n other"',
            r"UNQUOTED_ESC=a\ b",
            "CONCAT=\"ab\"'cd'ef",
            "EMPTY=",
            'EMPTY_QUOTED=""',
            "TRAILING=value # a comment after the value",
            "HASH_INSIDE=a#b",
            'EQUALS="a=b=c"',
            "not an assignment",
            "1BAD=key",
            "BAD-KEY=x",
            'UNTERMINATED="never closed',
            "DUP=first",
            "DUP=second",
            'CRLF="x"\r',
        ]
    )
    fields = parse_os_release(text)
    assert fields == {
        "PLAIN": "value",
        "DOUBLE": "two words",
        "SINGLE": "single $HOME \\n kept",
        "ESCAPED": 'a "quoted" \\ back $dollar `tick` \\n other',
        "UNQUOTED_ESC": "a b",
        "CONCAT": "abcdef",
        "EMPTY": "",
        "EMPTY_QUOTED": "",
        "TRAILING": "value",
        "HASH_INSIDE": "a#b",
        "EQUALS": "a=b=c",
        "DUP": "second",
        "CRLF": "x",
    }


def test_parse_os_release_empty_and_bom() -> None:
    assert parse_os_release("") == {}
    assert parse_os_release("# only a comment\n\n") == {}
    assert parse_os_release('\ufeffNAME="Foo"\n') == {"NAME": "Foo"}


def test_describe_linux_fallbacks() -> None:
    # os-release(5): NAME defaults to "Linux"
    assert describe_linux({}) == ("Linux", "")
    assert describe_linux({"PRETTY_NAME": "Debian GNU/Linux trixie/sid", "VERSION_CODENAME": "trixie"}) == (
        "Debian GNU/Linux trixie/sid",
        "trixie",
    )
    assert describe_linux({"NAME": "Arch Linux", "BUILD_ID": "rolling"}) == ("Arch Linux", "rolling")


def test_linux_os_falls_back_to_usr_lib(tmp_path: Path) -> None:
    usr_lib = tmp_path / "usr-lib-os-release"
    usr_lib.write_text(fixture("alpine-3.20"), encoding="utf-8")
    assert inv._linux_os([tmp_path / "missing", usr_lib]) == ("Alpine Linux", "3.20.3")
    etc = tmp_path / "etc-os-release"
    etc.write_text(fixture("rhel-9"), encoding="utf-8")
    assert inv._linux_os([etc, usr_lib]) == ("Red Hat Enterprise Linux", "9.4")
    name, version = inv._linux_os([tmp_path / "missing", tmp_path / "missing-too"])
    assert name  # platform.system(), never empty on a real host


# --------------------------------------------------------------------------------------------------
# macOS and Windows


@pytest.mark.parametrize(
    ("release", "expected"),
    [("14.4.1", ("macOS", "14.4.1")), ("15.0", ("macOS", "15.0")), ("", ("macOS", ""))],
)
def test_describe_macos(release: str, expected: tuple[str, str]) -> None:
    assert describe_macos(release) == expected


@pytest.mark.parametrize(
    ("release", "version", "edition", "expected"),
    [
        # Windows 10 22H2
        ("10", "10.0.19045", "Professional", ("Windows 10 Pro", "10.0.19045")),
        ("10", "10.0.19045", "Core", ("Windows 10 Home", "10.0.19045")),
        ("10", "10.0.19045", "Enterprise", ("Windows 10 Enterprise", "10.0.19045")),
        # Windows 11 23H2: Python < 3.12 still reports release "10"; newer Pythons say "11"
        ("10", "10.0.22631", "Professional", ("Windows 11 Pro", "10.0.22631")),
        ("11", "10.0.22631", "Professional", ("Windows 11 Pro", "10.0.22631")),
        ("10", "10.0.22631", "Enterprise", ("Windows 11 Enterprise", "10.0.22631")),
        ("10", "10.0.22000", "Education", ("Windows 11 Education", "10.0.22000")),
        ("10", "10.0.22631", "ServerRdsh", ("Windows 11 Enterprise multi-session", "10.0.22631")),
        ("10", "10.0.22631", None, ("Windows 11", "10.0.22631")),
        ("10", "10.0.22631", "SomeFutureEdition", ("Windows 11 SomeFutureEdition", "10.0.22631")),
        # Windows Server 2022 (Python reports release "10" for NT 10.0 servers)
        ("10", "10.0.20348", "ServerDatacenter", ("Windows Server 2022 Datacenter", "10.0.20348")),
        ("10", "10.0.20348", "ServerStandard", ("Windows Server 2022 Standard", "10.0.20348")),
        ("10", "10.0.20348", "ServerStandardEval", ("Windows Server 2022 Standard Evaluation", "10.0.20348")),
        ("10", "10.0.20348", "ServerTurbine", ("Windows Server 2022 Datacenter: Azure Edition", "10.0.20348")),
        ("10", "10.0.17763", "ServerStandard", ("Windows Server 2019 Standard", "10.0.17763")),
        # Server 2025 shares build 26100 with Windows 11 24H2: the edition decides
        ("10", "10.0.26100", "ServerDatacenter", ("Windows Server 2025 Datacenter", "10.0.26100")),
        ("10", "10.0.26100", "Professional", ("Windows 11 Pro", "10.0.26100")),
        # older Windows, named by Python's release string
        ("2012ServerR2", "6.3.9600", "ServerStandard", ("Windows Server 2012 R2 Standard", "6.3.9600")),
        ("8.1", "6.3.9600", "Professional", ("Windows 8.1 Pro", "6.3.9600")),
        # nothing known
        ("", "", "", ("Windows", "")),
    ],
)
def test_describe_windows(release: str, version: str, edition: str | None, expected: tuple[str, str]) -> None:
    assert describe_windows(release, version, edition) == expected


def test_describe_windows_product_type_overrides_edition_guess() -> None:
    # edition unreadable, but sys.getwindowsversion().product_type said "server"
    assert describe_windows("10", "10.0.20348", None, server=True) == ("Windows Server 2022", "10.0.20348")
    assert describe_windows("10", "10.0.26100", "", server=False) == ("Windows 11", "10.0.26100")


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        ("x86_64", "x86_64"),
        ("AMD64", "x86_64"),
        ("amd64", "x86_64"),
        ("aarch64", "arm64"),
        ("arm64", "arm64"),
        ("ARM64", "arm64"),
        ("i686", "x86"),
        ("armv7l", "armv7l"),
        ("riscv64", "riscv64"),
        ("", ""),
    ],
)
def test_normalize_arch(machine: str, expected: str) -> None:
    assert normalize_arch(machine) == expected


# --------------------------------------------------------------------------------------------------
# Disks and addresses


def part(device: str, mountpoint: str, fstype: str) -> SimpleNamespace:
    return SimpleNamespace(device=device, mountpoint=mountpoint, fstype=fstype, opts="rw")


def test_select_disks_skips_pseudo_dedupes_and_sorts() -> None:
    partitions = [
        part("/dev/nvme0n1p2", "/", "ext4"),
        part("/dev/nvme0n1p1", "/boot/efi", "vfat"),
        part("/dev/nvme0n1p2", "/var/lib/docker/volumes/x", "ext4"),  # bind mount of /
        part("/dev/sda1", "/data", "xfs"),
        part("/dev/loop3", "/snap/core22/1380", "squashfs"),
        part("/dev/loop7", "/snap/firefox/4173", "ext4"),  # snap loop mount whatever its fstype
        part("overlay", "/var/lib/docker/overlay2/abc/merged", "overlay"),
        part("tmpfs", "/run", "tmpfs"),
        part("udev", "/dev", "devtmpfs"),
        part("/dev/sdb1", "/mnt/locked", "ext4"),  # disk_usage raises PermissionError
        part("/dev/sr0", "/media/cdrom", "iso9660"),  # disk_usage raises OSError (no medium)
        part("/dev/sdc1", "/mnt/empty", "ext4"),  # reports 0 bytes
    ]
    sizes = {"/": 500, "/boot/efi": 1, "/data": 2000, "/var/lib/docker/volumes/x": 500, "/mnt/empty": 0}

    def total_of(mount: str) -> int:
        if mount == "/mnt/locked":
            raise PermissionError(13, "Permission denied")
        if mount == "/media/cdrom":
            raise OSError(123, "no medium")
        return sizes[mount]

    assert select_disks(partitions, total_of) == (
        Disk("/", "/dev/nvme0n1p2", "ext4", 500),
        Disk("/boot/efi", "/dev/nvme0n1p1", "vfat", 1),
        Disk("/data", "/dev/sda1", "xfs", 2000),
    )


def test_select_disks_windows_drives() -> None:
    partitions = [part("D:\\", "D:\\", "NTFS"), part("C:\\", "C:\\", "NTFS"), part("E:\\", "E:\\", "")]

    def total_of(mount: str) -> int:
        if mount == "E:\\":
            raise OSError(21, "The device is not ready")
        return 100

    assert [d.mountpoint for d in select_disks(partitions, total_of)] == ["C:\\", "D:\\"]


def test_filter_ip_addresses() -> None:
    raw = [
        "127.0.0.1",
        "127.1.2.3",
        "::1",
        "10.0.0.5",
        "192.168.1.20",
        "10.0.0.5",  # same address on two interfaces
        "fe80::1c2b:3aff:fe4d:5e6f%eth0",
        "fe80::1",
        "febf::1",  # still fe80::/10
        "2001:db8::10",
        "2001:0db8:0000:0000:0000:0000:0000:0002",
        "fd00::2%3",  # a scope id on a non-link-local address is stripped
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "169.254.10.1",  # IPv4 link-local is reported (only IPv6 link-local is noise)
        "not-an-ip",
    ]
    assert filter_ip_addresses(raw) == (
        "10.0.0.5",
        "169.254.10.1",
        "192.168.1.20",
        "2001:db8::2",
        "2001:db8::10",
        "fd00::2",
    )


# --------------------------------------------------------------------------------------------------
# This host


def test_collect_inventory_on_this_host() -> None:
    first = collect_inventory()
    assert first.hostname
    assert first.os_family in ("linux", "darwin", "windows")
    assert first.os_name
    assert first.kernel
    assert first.arch and first.arch == normalize_arch(first.arch)
    assert first.cpu_count >= 1
    assert first.memory_bytes > 0
    assert first.boot_time > 0
    assert first.agent_version == AGENT_VERSION
    for ip in first.ip_addresses:
        assert not ip.startswith("127.") and ip != "::1" and not ip.lower().startswith("fe80:") and "%" not in ip
    # already filtered, deduplicated and sorted: filtering again changes nothing
    assert filter_ip_addresses(first.ip_addresses) == first.ip_addresses
    mounts = [d.mountpoint for d in first.disks]
    assert mounts == sorted(mounts)
    assert len({d.device for d in first.disks}) == len(first.disks)
    assert all(d.total_bytes > 0 for d in first.disks)

    second = collect_inventory()
    assert second == first
    assert second.fingerprint() == first.fingerprint()


def test_fingerprint_changes_with_any_field() -> None:
    base = collect_inventory()
    fp = base.fingerprint()
    assert len(fp) == 64 and int(fp, 16) >= 0
    changes = {
        "hostname": base.hostname + "-renamed",
        "os_version": base.os_version + ".1",
        "cpu_count": base.cpu_count + 1,
        "memory_bytes": base.memory_bytes + 1,
        "disks": base.disks + (Disk("/new", "/dev/new", "ext4", 1),),
        "ip_addresses": base.ip_addresses + ("203.0.113.7",),
        "boot_time": base.boot_time + 1,
        "agent_version": "9.9.9",
    }
    seen = {fp}
    for field, value in changes.items():
        changed = dataclasses.replace(base, **{field: value})
        assert changed.fingerprint() != fp, field
        seen.add(changed.fingerprint())
    assert len(seen) == len(changes) + 1
    # a copy with equal values has the same fingerprint
    assert Inventory.from_dict(json.loads(json.dumps(base.to_dict()))).fingerprint() == fp


def test_collect_inventory_survives_failing_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("not on this host")

    for name in ("disk_partitions", "net_if_addrs", "virtual_memory", "cpu_count", "boot_time"):
        monkeypatch.setattr(inv.psutil, name, boom)
    monkeypatch.setattr(inv, "_os_name_version", boom)
    result = collect_inventory()
    assert result.hostname
    assert (result.os_name, result.os_version) == ("", "")
    assert result.disks == () and result.ip_addresses == ()
    assert result.cpu_count == 0 and result.memory_bytes == 0 and result.boot_time == 0.0
    assert result.fingerprint()


def test_disk_usage_permission_error_skips_only_that_mount(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        inv.psutil,
        "disk_partitions",
        lambda all=False: [part("/dev/a", "/", "ext4"), part("/dev/b", "/secret", "ext4")],
    )

    def usage(mount: str) -> SimpleNamespace:
        if mount == "/secret":
            raise PermissionError(13, "Permission denied")
        return SimpleNamespace(total=42)

    monkeypatch.setattr(inv.psutil, "disk_usage", usage)
    assert collect_inventory().disks == (Disk("/", "/dev/a", "ext4", 42),)


# --------------------------------------------------------------------------------------------------
# to_dict / from_dict


SAMPLE = Inventory(
    hostname="web-01",
    os_family="linux",
    os_name="Ubuntu",
    os_version="24.04",
    kernel="6.8.0-45-generic",
    arch="x86_64",
    cpu_count=8,
    memory_bytes=16_777_216_000,
    disks=(Disk("/", "/dev/sda1", "ext4", 100_000_000_000), Disk("/boot/efi", "/dev/sda15", "vfat", 109_422_592)),
    ip_addresses=("10.0.0.5", "2001:db8::5"),
    boot_time=1_717_000_000.0,
    agent_version="0.1.0",
)


def test_to_dict_is_plain_json() -> None:
    d = SAMPLE.to_dict()
    assert d["disks"] == [
        {"mountpoint": "/", "device": "/dev/sda1", "fstype": "ext4", "total_bytes": 100_000_000_000},
        {"mountpoint": "/boot/efi", "device": "/dev/sda15", "fstype": "vfat", "total_bytes": 109_422_592},
    ]
    assert d["ip_addresses"] == ["10.0.0.5", "2001:db8::5"]
    assert json.loads(json.dumps(d)) == d


def test_round_trip() -> None:
    assert Inventory.from_dict(SAMPLE.to_dict()) == SAMPLE
    assert Inventory.from_dict(json.loads(json.dumps(SAMPLE.to_dict()))) == SAMPLE
    here = collect_inventory()
    assert Inventory.from_dict(here.to_dict()) == here


def test_from_dict_tolerates_missing_and_unknown_keys() -> None:
    d = SAMPLE.to_dict()
    del d["disks"], d["boot_time"]
    d["future_field"] = "ignored"
    restored = Inventory.from_dict(d)
    assert restored.disks == () and restored.boot_time == 0.0
    assert restored.hostname == "web-01"


@pytest.mark.parametrize(
    "bad",
    [
        {"cpu_count": "eight"},
        {"cpu_count": True},
        {"memory_bytes": -1},
        {"hostname": 7},
        {"boot_time": "yesterday"},
        {"boot_time": float("nan")},
        {"disks": "sda"},
        {"disks": [42]},
        {"disks": [{"mountpoint": "/", "total_bytes": "big"}]},
        {"ip_addresses": "10.0.0.1"},
        {"ip_addresses": [10]},
    ],
)
def test_from_dict_rejects_wrong_types(bad: dict[str, object]) -> None:
    d = SAMPLE.to_dict()
    d.update(bad)
    with pytest.raises(InvalidInput):
        Inventory.from_dict(d)


def test_from_dict_rejects_non_mapping() -> None:
    with pytest.raises(InvalidInput):
        Inventory.from_dict(["not", "a", "dict"])  # type: ignore[arg-type]
