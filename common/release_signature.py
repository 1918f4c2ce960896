"""Agent release signatures: what the controller signs when a release is added, what agents verify.

A release is a package file (``fleetops-agent_0.1.1-1_amd64.deb``) and its manifest. The
controller signs, with its release key (Ed25519, ``ca/release-signing.key``), the bytes of
:func:`signed_message`: a fixed label, the file name, the agent version, the package kind and
architecture, and the package's SHA-256. An agent verifies the signature over the digest *it
computed* of the bytes it received, never over the digest the manifest claims, so a package
changed anywhere after it was signed (in the object store, on the way) is refused.

Shared by the controller (signing) and the agent (verifying): nothing here imports either.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

LABEL = b"fleetops-agent-release-v1"
#: A release's file name: what a controller stores and serves, and a host writes to disk.
FILE_NAME = re.compile(r"^fleetops-agent_[0-9A-Za-z.+~:-]+_[0-9a-z]+\.deb$")
MAX_PACKAGE_BYTES = 512 * 1024 * 1024


class ReleaseRefused(Exception):
    """A package failed its checks: it must not be installed. ``str()`` says why, for operators."""


@dataclass(frozen=True)
class ReleaseManifest:
    """What a signature covers, plus the signature and the id of the key that made it."""

    file_name: str
    version: str
    kind: str
    arch: str
    sha256: str
    size: int
    signature: bytes = b""
    key_id: str = ""


def signed_message(file_name: str, version: str, kind: str, arch: str, sha256: str) -> bytes:
    """The bytes a release signature is made over (one field per line, after the label)."""
    fields = (file_name, version, kind, arch, sha256.lower())
    for value in fields:
        if "\n" in value or not value:
            raise ValueError(f"a release field is empty or has a line break: {value!r}")
    return b"\n".join([LABEL, *(v.encode() for v in fields)]) + b"\n"


def key_id(public_raw: bytes) -> str:
    """``sha256:`` and the hex SHA-256 of the raw 32-byte public key."""
    return "sha256:" + hashlib.sha256(public_raw).hexdigest()


def check_file_name(file_name: str) -> str:
    """``file_name`` when it is a release file name (no path, no surprises).

    Raises:
        ValueError: it is not one.
    """
    if not FILE_NAME.match(file_name) or ".." in file_name:
        raise ValueError(f"{file_name!r} is not an agent release file name (fleetops-agent_VERSION_ARCH.deb)")
    return file_name


def verify_package(manifest: ReleaseManifest, public_raw: bytes, digest: str, size: int) -> None:
    """Check a received package against its manifest and the controller's release key.

    Args:
        manifest: the manifest the controller sent with the package.
        public_raw: the controller's release public key (raw 32 bytes).
        digest: the hex SHA-256 of the bytes actually received.
        size: how many bytes were received.

    Raises:
        ReleaseRefused: the key is not an Ed25519 key, the size or digest differs from the
            manifest's, or the signature does not verify over the received digest.
    """
    try:
        public = Ed25519PublicKey.from_public_bytes(public_raw)
    except ValueError as exc:
        raise ReleaseRefused(f"the controller's release key is not an Ed25519 public key: {exc}") from None
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if manifest.key_id and manifest.key_id != key_id(raw):
        raise ReleaseRefused(
            f"{manifest.file_name} was signed by release key {manifest.key_id}, not the controller's {key_id(raw)}"
        )
    try:
        message = signed_message(manifest.file_name, manifest.version, manifest.kind, manifest.arch, digest)
        public.verify(manifest.signature, message)
    except (InvalidSignature, ValueError):
        raise ReleaseRefused(
            f"signature check failed for {manifest.file_name}: the package received (sha256 {digest}) is not "
            f"the one the controller signed (sha256 {manifest.sha256}); it was changed after it was added"
        ) from None
    if size != manifest.size:
        raise ReleaseRefused(f"{manifest.file_name} is {size} bytes, its signed manifest says {manifest.size}")
