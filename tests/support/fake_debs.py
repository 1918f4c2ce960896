"""Debian packages made in memory, with only what a release needs read: the control file.

Enough for the controller's ``release add`` (it reads Package, Version and Architecture); not
installable. Tests that install build the real package (scripts/build_agent_deb.py).
"""

from __future__ import annotations

import io
import tarfile


def ar_member(name: str, data: bytes) -> bytes:
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
    return header + data + (b"\n" if len(data) % 2 else b"")


def deb(version: str = "0.1.1-1", arch: str = "amd64", package: str = "fleetops-agent", payload: bytes = b"") -> bytes:
    control = f"Package: {package}\nVersion: {version}\nArchitecture: {arch}\nDescription: x\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("./control")
        info.size = len(control)
        tar.addfile(info, io.BytesIO(control))
    return (
        b"!<arch>\n"
        + ar_member("debian-binary", b"2.0\n")
        + ar_member("control.tar.gz", buffer.getvalue())
        + ar_member("data.tar.xz", payload or b"files")
    )
