"""What a release package says about itself: a Debian package's control fields, read without dpkg.

A ``.deb`` is an ``ar`` archive whose ``control.tar.{gz,xz}`` member holds ``./control``; the
controller reads Package, Version and Architecture from it so a release is described by what it
installs, not by what its file happens to be called.
"""

from __future__ import annotations

import io
import re
import tarfile
from dataclasses import dataclass

from fleetops.common.errors import InvalidInput

PACKAGE_NAME = "fleetops-agent"
AR_MAGIC = b"!<arch>\n"
AR_HEADER = 60


@dataclass(frozen=True)
class PackageInfo:
    """A package's identity: the agent version it installs and the file name it is served as."""

    package: str
    debian_version: str  # 0.1.1-1
    arch: str
    kind: str = "deb"

    @property
    def version(self) -> str:
        """The agent version (what ``hosts list`` shows): the Debian version without its revision."""
        upstream = self.debian_version.split(":", 1)[-1]
        return upstream.rsplit("-", 1)[0] if "-" in upstream else upstream

    @property
    def file_name(self) -> str:
        return f"{self.package}_{self.debian_version.split(':', 1)[-1]}_{self.arch}.deb"


def _ar_members(data: bytes) -> dict[str, bytes]:
    if not data.startswith(AR_MAGIC):
        raise InvalidInput("the file is not a Debian package (no ar header)", "add a .deb built by build_agent_deb.py")
    members: dict[str, bytes] = {}
    offset = len(AR_MAGIC)
    while offset + AR_HEADER <= len(data):
        header = data[offset : offset + AR_HEADER]
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise InvalidInput("the Debian package's ar archive is damaged", "build it again") from None
        start = offset + AR_HEADER
        members[name] = data[start : start + size]
        offset = start + size + (size % 2)  # members are 2-byte aligned
    return members


def read_deb(data: bytes) -> PackageInfo:
    """The control fields of the ``.deb`` in ``data``.

    Raises:
        InvalidInput: not a Debian package, a control archive this reader cannot open (zstd), or
            not the fleetops-agent package.
    """
    members = _ar_members(data)
    control_member = next((name for name in members if name.startswith("control.tar")), None)
    if control_member is None:
        raise InvalidInput("the Debian package has no control archive", "build it with scripts/build_agent_deb.py")
    try:
        with tarfile.open(fileobj=io.BytesIO(members[control_member]), mode="r:*") as tar:
            member = tar.extractfile("./control")
            control = member.read().decode() if member is not None else ""
    except (tarfile.TarError, KeyError) as exc:
        raise InvalidInput(
            f"cannot read {control_member} in the package: {exc}",
            "build it with scripts/build_agent_deb.py (gzip or xz control archive)",
        ) from None
    fields = dict(re.findall(r"^([A-Za-z-]+): *(.*)$", control, re.MULTILINE))
    info = PackageInfo(fields.get("Package", ""), fields.get("Version", ""), fields.get("Architecture", ""))
    if info.package != PACKAGE_NAME:
        raise InvalidInput(f"the package is {info.package or 'unnamed'}, not {PACKAGE_NAME}", "add the agent's .deb")
    if not info.debian_version or not re.fullmatch(r"[a-z0-9]+", info.arch):
        raise InvalidInput("the package's control file has no Version or a bad Architecture", "build it again")
    return info


def version_key(version: str) -> tuple[tuple[int, str], ...]:
    """A sort key ordering versions like 0.1.10 after 0.1.9 (numbers as numbers, the rest as text)."""
    return tuple((int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"[.\-+~:]", version))
