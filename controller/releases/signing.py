"""The controller's release key: Ed25519, beside the CA, made at the first start.

Files in the CA directory (``STATE_DIR/ca``)::

    release-signing.key    the private key (PKCS#8 PEM, 0600)
    release-signing.pub    its public key (SubjectPublicKeyInfo PEM, 0644)

Why a key of its own (not the CA key, not the audit checkpoint key): each key signs one kind of
thing, so a leak of one forges only that kind, and the CA key can later move offline without
stopping releases. Why beside the CA: replicas already share ``ca/``, and whoever can write the
database or the object store must not be able to sign a package.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fleetops.common.errors import InvalidInput, NotFound
from fleetops.common.files import write_public_file, write_secret_file
from fleetops.common.release_signature import key_id

log = logging.getLogger(__name__)

KEY_FILE = "release-signing.key"
PUBLIC_FILE = "release-signing.pub"


@dataclass(frozen=True)
class ReleaseSigner:
    """The release private key."""

    private: Ed25519PrivateKey

    @property
    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        return key_id(self.public_raw)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def load_release_signer(directory: Path, *, create: bool = False) -> ReleaseSigner:
    """The release key in ``directory`` (the CA directory); made there first when ``create``.

    Raises:
        NotFound: there is no key and ``create`` is false.
        InvalidInput: the key file is not an unencrypted Ed25519 private key.
        OSError: the files cannot be written.
    """
    key_path, pub_path = Path(directory) / KEY_FILE, Path(directory) / PUBLIC_FILE
    if key_path.is_file():
        try:
            private = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"{key_path} is not an unencrypted PEM private key ({exc})", "restore it") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise InvalidInput(f"{key_path} is not an Ed25519 private key", "restore it from a backup of ca/")
    elif create:
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_secret_file(key_path, pem)
        log.info("made the release signing key %s (%s)", key_path, key_id(ReleaseSigner(private).public_raw))
    else:
        raise NotFound(
            f"no release signing key {key_path}",
            "the controller makes it at its first start; on a replica, copy it from another replica's ca/",
        )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if not pub_path.is_file() or pub_path.read_bytes() != public_pem:
        write_public_file(pub_path, public_pem)
    return ReleaseSigner(private)
