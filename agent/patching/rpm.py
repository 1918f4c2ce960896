"""RPM names and versions, shared by the dnf/yum and zypper providers.

An RPM package is spelled ``name-[epoch:]version-release.arch`` (a NEVRA); dnf and yum print the
epoch only when it is not 0, rpm's query format below does the same, so versions compare as text
once a leading ``0:`` is dropped (:func:`normalize_evr`).
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from fleetops.agent.patching.diagnostics import unreadable_output
from fleetops.agent.patching.models import Package

#: ``rpm -qa --qf`` format: "name.arch [epoch:]version-release" per line.
RPM_QUERY_FORMAT: Final = "%{NAME}.%{ARCH} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n"
RPM_QUERY_ARGV: Final = ("rpm", "-qa", "--qf", RPM_QUERY_FORMAT)

#: Architectures RPM-based distributions ship; a ".word" suffix outside this set is part of a name.
KNOWN_ARCHES: Final = frozenset(
    {
        "noarch", "x86_64", "i386", "i486", "i586", "i686", "athlon", "aarch64", "armv7hl", "armv7l",
        "armv6hl", "armhfp", "ppc", "ppc64", "ppc64le", "ppc64p7", "s390", "s390x", "riscv64", "ia64",
        "loongarch64", "mips64el", "src", "nosrc",
    }
)  # fmt: skip

_EVR = re.compile(r"^(?:\d+:)?[^\s:-][^\s:]*-[^\s:-]+$")
# rpm prints this for a name given to `rpm -q` that is not installed; never a package line.
_NOT_INSTALLED = re.compile(r"^package \S+ is not installed$")


class Nevra(NamedTuple):
    name: str
    evr: str  # "[epoch:]version-release", epoch 0 dropped
    arch: str


def normalize_evr(evr: str) -> str:
    """``evr`` without an explicit ``0:`` epoch, so "0:1.2-3" and "1.2-3" compare equal."""
    return evr[2:] if evr.startswith("0:") else evr


def looks_like_evr(text: str) -> bool:
    """Whether ``text`` has the shape ``[epoch:]version-release``."""
    return bool(_EVR.match(text))


def split_name_arch(text: str) -> tuple[str, str] | None:
    """``"openssl-libs.x86_64"`` -> ``("openssl-libs", "x86_64")``; None when there is no known arch."""
    name, dot, arch = text.rpartition(".")
    if not dot or not name or arch not in KNOWN_ARCHES:
        return None
    return name, arch


def split_nevra(text: str) -> Nevra | None:
    """``"dhcp-client-12:4.4.2-11.b1.fc34.x86_64"`` -> ``Nevra("dhcp-client", "12:4.4.2-11.b1.fc34", "x86_64")``.

    None when ``text`` is not a NEVRA (no known arch, or fewer than two dashes).
    """
    split = split_name_arch(text)
    if split is None:
        return None
    rest, arch = split
    name_version, dash, release = rest.rpartition("-")
    name, dash2, version = name_version.rpartition("-")
    if not dash or not dash2 or not name or not version or not release:
        return None
    return Nevra(name, normalize_evr(f"{version}-{release}"), arch)


def nevra_text(name: str, evr: str, arch: str) -> str:
    """The dnf spelling ``name-[epoch:]version-release.arch``."""
    return f"{name}-{evr}.{arch}"


def parse_rpm_query(text: str, command: str = " ".join(RPM_QUERY_ARGV)) -> list[Package]:
    """Read the installed packages from ``rpm -qa`` run with :data:`RPM_QUERY_FORMAT`.

    ``gpg-pubkey`` entries (arch ``(none)``) are kept with an empty arch.

    Raises:
        InvalidInput: a line is not "name.arch version", or nothing is listed at all.
    """
    packages = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or _NOT_INSTALLED.match(line):
            continue
        fields = line.split()
        if len(fields) != 2 or not looks_like_evr(fields[1]):
            raise unreadable_output(command, f"line {number} is not 'name.arch version': {line!r}")
        name, dot, arch = fields[0].rpartition(".")
        if not dot or not name:
            raise unreadable_output(command, f"line {number} has no architecture: {line!r}")
        packages.append(Package(name, normalize_evr(fields[1]), "" if arch == "(none)" else arch))
    if not packages:
        raise unreadable_output(command, "it listed no installed packages")
    return packages
