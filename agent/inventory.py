"""Host facts the agent reports: OS, hardware, disks and addresses, collected with psutil.

:func:`collect_inventory` never raises: whatever a host refuses to tell (a containerised ``/proc``, a
permission error, a psutil call that is unsupported on the platform) becomes an empty or zero field,
logged at debug. The OS naming rules live in small pure functions (:func:`parse_os_release`,
:func:`describe_linux`, :func:`describe_macos`, :func:`describe_windows`, :func:`normalize_arch`) so
they can be tested against recorded data from hosts we do not run on.

:meth:`Inventory.fingerprint` hashes every field; the link re-collects periodically and sends the
inventory only when the fingerprint changed.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
import platform
import re
import socket
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil

from fleetops.agent.version import AGENT_VERSION
from fleetops.common.errors import InvalidInput

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Where os-release(5) lives: /etc first, the vendor copy in /usr/lib if /etc has none.
OS_RELEASE_PATHS: tuple[Path, ...] = (Path("/etc/os-release"), Path("/usr/lib/os-release"))


# --------------------------------------------------------------------------------------------------
# The data


@dataclass(frozen=True)
class Disk:
    """A mounted local filesystem."""

    mountpoint: str
    device: str
    fstype: str
    total_bytes: int


@dataclass(frozen=True)
class Inventory:
    """Facts about one host, as sent to the controller (``fleetops.v1.Inventory``)."""

    hostname: str
    os_family: str  # "linux" | "darwin" | "windows"
    os_name: str
    os_version: str
    kernel: str
    arch: str
    cpu_count: int
    memory_bytes: int
    disks: tuple[Disk, ...]
    ip_addresses: tuple[str, ...]
    boot_time: float  # epoch seconds
    agent_version: str

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-compatible data: tuples become lists, disks become dicts."""
        d = asdict(self)
        d["disks"] = [dict(disk) for disk in d["disks"]]
        d["ip_addresses"] = list(self.ip_addresses)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Inventory:
        """The inverse of :meth:`to_dict`.

        Missing keys take empty values (an older agent may not send a newer field) and unknown keys
        are ignored; a value of the wrong type raises :class:`InvalidInput`.
        """
        if not isinstance(d, Mapping):
            raise InvalidInput(f"inventory must be a mapping, got {type(d).__name__}")
        disks_raw = d.get("disks") or []
        if isinstance(disks_raw, (str, bytes)) or not isinstance(disks_raw, Iterable):
            raise InvalidInput(f"inventory field 'disks' must be a list, got {type(disks_raw).__name__}")
        disks = []
        for i, item in enumerate(disks_raw):
            if isinstance(item, Disk):
                disks.append(item)
                continue
            if not isinstance(item, Mapping):
                raise InvalidInput(f"inventory field 'disks[{i}]' must be a mapping, got {type(item).__name__}")
            disks.append(
                Disk(
                    mountpoint=_str_field(item, "mountpoint", f"disks[{i}]."),
                    device=_str_field(item, "device", f"disks[{i}]."),
                    fstype=_str_field(item, "fstype", f"disks[{i}]."),
                    total_bytes=_int_field(item, "total_bytes", f"disks[{i}]."),
                )
            )
        ips_raw = d.get("ip_addresses") or []
        if isinstance(ips_raw, (str, bytes)) or not isinstance(ips_raw, Iterable):
            raise InvalidInput(f"inventory field 'ip_addresses' must be a list, got {type(ips_raw).__name__}")
        ips = []
        for i, ip in enumerate(ips_raw):
            if not isinstance(ip, str):
                raise InvalidInput(f"inventory field 'ip_addresses[{i}]' must be a string, got {type(ip).__name__}")
            ips.append(ip)
        return cls(
            hostname=_str_field(d, "hostname"),
            os_family=_str_field(d, "os_family"),
            os_name=_str_field(d, "os_name"),
            os_version=_str_field(d, "os_version"),
            kernel=_str_field(d, "kernel"),
            arch=_str_field(d, "arch"),
            cpu_count=_int_field(d, "cpu_count"),
            memory_bytes=_int_field(d, "memory_bytes"),
            disks=tuple(disks),
            ip_addresses=tuple(ips),
            boot_time=_float_field(d, "boot_time"),
            agent_version=_str_field(d, "agent_version"),
        )

    def fingerprint(self) -> str:
        """SHA-256 (hex) of a canonical JSON of every field: equal exactly when the inventories are."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _str_field(d: Mapping[str, Any], key: str, where: str = "") -> str:
    value = d.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"inventory field '{where}{key}' must be a string, got {type(value).__name__}")
    return value


def _int_field(d: Mapping[str, Any], key: str, where: str = "") -> int:
    value = d.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"inventory field '{where}{key}' must be a non-negative integer, got {value!r}")
    return value


def _float_field(d: Mapping[str, Any], key: str) -> float:
    value = d.get(key, 0.0)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"inventory field '{key}' must be a finite number, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------------------------------
# OS naming (pure functions)

_OS_RELEASE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Inside double quotes a shell gives backslash a meaning only before these.
_DQUOTE_ESCAPABLE = '"\\$`'


def parse_os_release(text: str) -> dict[str, str]:
    """Parse os-release(5) text: shell-style ``KEY=value`` lines.

    Values may be unquoted, 'single-quoted' (taken literally) or "double-quoted" (where ``\\"``,
    ``\\\\``, ``\\$`` and ``\\``` are escapes), or a concatenation of those as in a shell. Blank
    lines, ``#`` comments and lines that are not assignments are skipped; a later assignment
    overrides an earlier one.
    """
    result: dict[str, str] = {}
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, rest = line.partition("=")
        key = key.strip()
        if not sep or not _OS_RELEASE_KEY.fullmatch(key):
            log.debug("os-release line %d is not an assignment: %r", number, raw)
            continue
        value = _shell_word(rest.lstrip())
        if value is None:
            log.debug("os-release line %d has an unterminated quote: %r", number, raw)
            continue
        result[key] = value
    return result


def _shell_word(s: str) -> str | None:
    """The first shell word of ``s`` with quotes and escapes removed; None if a quote is unterminated."""
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "'":
            end = s.find("'", i + 1)
            if end < 0:
                return None
            out.append(s[i + 1 : end])
            i = end + 1
        elif c == '"':
            i += 1
            while True:
                if i >= n:
                    return None
                c = s[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\" and i + 1 < n and s[i + 1] in _DQUOTE_ESCAPABLE:
                    out.append(s[i + 1])
                    i += 2
                    continue
                out.append(c)
                i += 1
        elif c == "\\":
            if i + 1 < n:
                out.append(s[i + 1])
            i += 2
        elif c.isspace():
            break  # an unquoted blank ends the value; whatever follows is a comment or junk
        else:
            out.append(c)
            i += 1
    return "".join(out)


def describe_linux(fields: Mapping[str, str]) -> tuple[str, str]:
    """``(os_name, os_version)`` from parsed os-release fields.

    The name is ``NAME`` (``"Debian GNU/Linux"``), else ``PRETTY_NAME``, else ``"Linux"`` (the
    os-release(5) default). The version is ``VERSION_ID`` (``"12"``); rolling distributions have none
    and fall back to ``VERSION``, ``BUILD_ID`` (``"rolling"``) or ``VERSION_CODENAME``.
    """
    name = fields.get("NAME") or fields.get("PRETTY_NAME") or "Linux"
    version = (
        fields.get("VERSION_ID")
        or fields.get("VERSION")
        or fields.get("BUILD_ID")
        or fields.get("VERSION_CODENAME")
        or ""
    )
    return name.strip(), version.strip()


def describe_macos(release: str) -> tuple[str, str]:
    """``(os_name, os_version)`` from ``platform.mac_ver()[0]`` (``"14.4.1"`` -> ``("macOS", "14.4.1")``)."""
    return "macOS", (release or "").strip()


# Windows (10 and later) EditionID -> the edition words of the marketing name.
_WINDOWS_CLIENT_EDITIONS = {
    "Core": "Home",
    "CoreN": "Home N",
    "CoreSingleLanguage": "Home Single Language",
    "CoreCountrySpecific": "Home China",
    "Professional": "Pro",
    "ProfessionalN": "Pro N",
    "ProfessionalEducation": "Pro Education",
    "ProfessionalEducationN": "Pro Education N",
    "ProfessionalWorkstation": "Pro for Workstations",
    "ProfessionalWorkstationN": "Pro N for Workstations",
    "Education": "Education",
    "EducationN": "Education N",
    "Enterprise": "Enterprise",
    "EnterpriseN": "Enterprise N",
    "EnterpriseG": "Enterprise G",
    "EnterpriseS": "Enterprise LTSC",
    "EnterpriseSN": "Enterprise N LTSC",
    "IoTEnterprise": "IoT Enterprise",
    "IoTEnterpriseS": "IoT Enterprise LTSC",
    # Enterprise multi-session (AVD) says "Server" in its EditionID but is a client Windows.
    "ServerRdsh": "Enterprise multi-session",
    "CloudEdition": "SE",
    "CloudEditionN": "SE N",
}
_WINDOWS_SERVER_EDITIONS = {
    "ServerStandard": "Standard",
    "ServerDatacenter": "Datacenter",
    "ServerStandardEval": "Standard Evaluation",
    "ServerDatacenterEval": "Datacenter Evaluation",
    "ServerTurbine": "Datacenter: Azure Edition",
    "ServerSolution": "Essentials",
}
# Long-term servicing builds of Windows Server on NT 10.0 (annual/semi-annual channel builds differ).
_WINDOWS_SERVER_BUILDS = {14393: "2016", 17763: "2019", 20348: "2022", 26100: "2025"}
_WINDOWS_SERVER_NT6 = {0: "2008", 1: "2008 R2", 2: "2012", 3: "2012 R2"}
# Windows 11 still reports NT 10.0 (and Python < 3.12 reports release "10"); its builds start here.
WINDOWS_11_FIRST_BUILD = 22000


def describe_windows(release: str, version: str, edition: str | None, *, server: bool | None = None) -> tuple[str, str]:
    """``(os_name, os_version)`` from ``platform.win32_ver()`` and ``platform.win32_edition()``.

    ``("10", "10.0.22631", "Professional")`` -> ``("Windows 11 Pro", "10.0.22631")``: Windows 11 is
    NT 10.0 with a build number of 22000 or more, whatever ``release`` says.
    ``("10", "10.0.20348", "ServerDatacenter")`` -> ``("Windows Server 2022 Datacenter", "10.0.20348")``.

    ``server`` says whether this is a server SKU (``sys.getwindowsversion().product_type == 3``); when
    None it is inferred from the edition and release.
    """
    release = (release or "").strip()
    version = (version or "").strip()
    edition = (edition or "").strip()
    major, minor, build = _version_numbers(version)

    if edition == "ServerRdsh":
        server = False  # Enterprise multi-session reports a server product type, but is client Windows
    elif server is None:
        server = edition.startswith("Server") or "server" in release.lower()

    if server:
        year = _windows_server_year(release, major, minor, build)
        name = f"Windows Server {year}" if year else "Windows Server"
        label = _WINDOWS_SERVER_EDITIONS.get(edition) or _generic_server_edition(edition)
    else:
        if major == 10 and build is not None:
            product = "11" if build >= WINDOWS_11_FIRST_BUILD else "10"
        elif release.startswith("post"):
            product = ""
        else:
            product = release
        name = f"Windows {product}" if product else "Windows"
        label = _WINDOWS_CLIENT_EDITIONS.get(edition, edition)
    return (f"{name} {label}" if label else name), version


def _version_numbers(version: str) -> tuple[int | None, int | None, int | None]:
    parts = version.split(".")
    numbers: list[int | None] = []
    for i in range(3):
        try:
            numbers.append(int(parts[i]))
        except (IndexError, ValueError):
            numbers.append(None)
    return numbers[0], numbers[1], numbers[2]


def _windows_server_year(release: str, major: int | None, minor: int | None, build: int | None) -> str:
    if major == 10 and build is not None:
        return _WINDOWS_SERVER_BUILDS.get(build, "")
    if major == 6 and minor is not None:
        return _WINDOWS_SERVER_NT6.get(minor, "")
    m = re.fullmatch(r"(\d{4})Server(R2)?", release)  # what older Pythons put in release, e.g. "2012ServerR2"
    if m:
        return m.group(1) + (" R2" if m.group(2) else "")
    return ""


def _generic_server_edition(edition: str) -> str:
    """``"ServerFooEval"`` -> ``"Foo Evaluation"`` for server EditionIDs we have no name for."""
    if not edition.startswith("Server"):
        return edition
    rest = edition[len("Server") :]
    suffix = ""
    if rest.endswith("Eval"):
        rest, suffix = rest[: -len("Eval")], " Evaluation"
    return (rest + suffix).strip()


_ARCH_ALIASES = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "x64": "x86_64",
    "em64t": "x86_64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv8": "arm64",
    "armv8l": "arm64",
    "aarch64_be": "arm64",
    "i386": "x86",
    "i486": "x86",
    "i586": "x86",
    "i686": "x86",
    "x86": "x86",
}


def normalize_arch(machine: str) -> str:
    """``platform.machine()`` in one spelling per architecture (``"AMD64"`` -> ``"x86_64"``).

    32-bit Intel (``i386``..``i686``) becomes ``"x86"``; anything else is returned in lower case.
    """
    m = (machine or "").strip().lower()
    return _ARCH_ALIASES.get(m, m)


# --------------------------------------------------------------------------------------------------
# Disks and addresses (pure selection over psutil's data)

# Filesystems that hold no host data of their own (kernel views, memory, container layers, images).
PSEUDO_FSTYPES = frozenset(
    {
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fuse.lxcfs",
        "fuse.portal",
        "fuse.snapfuse",
        "fusectl",
        "hugetlbfs",
        "mqueue",
        "nsfs",
        "nullfs",
        "overlay",
        "overlayfs",
        "proc",
        "pstore",
        "ramfs",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "squashfs",
        "sysfs",
        "tmpfs",
        "tracefs",
    }
)
_SNAP_MOUNT_PREFIXES = ("/snap/", "/var/lib/snapd/")


def _is_pseudo(device: str, mountpoint: str, fstype: str) -> bool:
    if fstype.lower() in PSEUDO_FSTYPES:
        return True
    return device.startswith("/dev/loop") and mountpoint.startswith(_SNAP_MOUNT_PREFIXES)


def select_disks(partitions: Iterable[Any], total_of: Callable[[str], int]) -> tuple[Disk, ...]:
    """The real local filesystems among ``partitions`` (objects like ``psutil.disk_partitions()``'s).

    Pseudo, overlay, squashfs, tmpfs and snap loop mounts are skipped; a device mounted several times
    (bind mounts, btrfs subvolumes) is listed once, at its shortest mountpoint. ``total_of(mountpoint)``
    gives the size; a mount it raises ``OSError`` for (``PermissionError``, a drive with no medium) or
    reports as 0 is skipped. The result is sorted by mountpoint.
    """
    candidates = [
        p for p in partitions if not _is_pseudo(str(p.device or ""), str(p.mountpoint or ""), str(p.fstype or ""))
    ]
    candidates.sort(key=lambda p: (len(p.mountpoint), p.mountpoint))
    seen: set[str] = set()
    disks: list[Disk] = []
    for p in candidates:
        key = p.device or p.mountpoint
        if key in seen:
            continue
        try:
            total = int(total_of(p.mountpoint))
        except OSError as exc:
            log.debug("no usage for %s (%s): %s", p.mountpoint, p.device, exc)
            continue
        if total <= 0:
            continue
        seen.add(key)
        disks.append(Disk(mountpoint=p.mountpoint, device=p.device, fstype=p.fstype, total_bytes=total))
    disks.sort(key=lambda d: d.mountpoint)
    return tuple(disks)


def filter_ip_addresses(addresses: Iterable[str]) -> tuple[str, ...]:
    """Reportable addresses: no loopback, no unspecified, no IPv6 link-local; ``%scope`` stripped.

    The result is deduplicated and sorted numerically, IPv4 before IPv6, in canonical (compressed) form.
    """
    keep: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for raw in addresses:
        text = str(raw).split("%", 1)[0].strip()
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            log.debug("ignoring unparsable address %r", raw)
            continue
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            elif ip.is_link_local:
                continue
        if ip.is_loopback or ip.is_unspecified:
            continue
        keep.add(ip)
    return tuple(str(ip) for ip in sorted(keep, key=lambda ip: (ip.version, int(ip))))


# --------------------------------------------------------------------------------------------------
# Collection


def _safe(what: str, fn: Callable[[], T], default: T) -> T:
    """``fn()``, or ``default`` if it fails for any reason: an odd host must not stop the agent."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - psutil raises many kinds (OSError, RuntimeError, psutil.Error)
        log.debug("inventory: cannot read %s: %s", what, exc, exc_info=True)
        return default


def os_family() -> str:
    """``"linux"``, ``"darwin"`` or ``"windows"`` (other systems: their lower-case name)."""
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "darwin":
        return "darwin"
    if sys.platform in ("win32", "cygwin", "msys"):
        return "windows"
    return (platform.system() or sys.platform).lower()


def _linux_os(paths: Iterable[Path] = OS_RELEASE_PATHS) -> tuple[str, str]:
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            log.debug("inventory: cannot read %s: %s", path, exc)
            continue
        return describe_linux(parse_os_release(text))
    return platform.system() or "Linux", ""


def _windows_os() -> tuple[str, str]:
    release, version, _csd, _ptype = platform.win32_ver()
    edition = _safe("Windows edition", platform.win32_edition, None)
    server: bool | None = None
    getwindowsversion = getattr(sys, "getwindowsversion", None)
    if getwindowsversion is not None:
        product_type = _safe("Windows product type", lambda: getwindowsversion().product_type, None)
        if product_type is not None:
            server = product_type in (2, 3)  # VER_NT_DOMAIN_CONTROLLER, VER_NT_SERVER
    return describe_windows(release, version, edition, server=server)


def _os_name_version(family: str) -> tuple[str, str]:
    if family == "linux":
        return _linux_os()
    if family == "darwin":
        return describe_macos(platform.mac_ver()[0])
    if family == "windows":
        return _windows_os()
    return platform.system() or family, platform.release()


def _hostname() -> str:
    return socket.gethostname() or platform.node()


def _memory_bytes() -> int:
    return int(psutil.virtual_memory().total)


def _cpu_count() -> int:
    return int(psutil.cpu_count(logical=True) or 0)


def _boot_time() -> float:
    # Whole seconds: some platforms derive boot time from "now - uptime" and jitter in the fraction,
    # which would change the fingerprint without anything having changed.
    return float(round(psutil.boot_time()))


def _disks() -> tuple[Disk, ...]:
    return select_disks(psutil.disk_partitions(all=False), lambda mount: psutil.disk_usage(mount).total)


def _ip_addresses() -> tuple[str, ...]:
    families = {socket.AF_INET, socket.AF_INET6}
    return filter_ip_addresses(
        entry.address for entries in psutil.net_if_addrs().values() for entry in entries if entry.family in families
    )


def collect_inventory() -> Inventory:
    """The facts of this host, now. Never raises: what cannot be read is empty or 0."""
    family = _safe("OS family", os_family, "")
    os_name, os_version = _safe("OS name and version", lambda: _os_name_version(family), ("", ""))
    return Inventory(
        hostname=_safe("hostname", _hostname, ""),
        os_family=family,
        os_name=os_name,
        os_version=os_version,
        kernel=_safe("kernel release", platform.release, ""),
        arch=_safe("architecture", lambda: normalize_arch(platform.machine()), ""),
        cpu_count=_safe("CPU count", _cpu_count, 0),
        memory_bytes=_safe("memory size", _memory_bytes, 0),
        disks=_safe("disks", _disks, ()),
        ip_addresses=_safe("IP addresses", _ip_addresses, ()),
        boot_time=_safe("boot time", _boot_time, 0.0),
        agent_version=AGENT_VERSION,
    )
