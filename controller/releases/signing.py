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

from fleetops.common.pki import ed25519_key_pair
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
    private, made = ed25519_key_pair(key_path, pub_path, create=create, what="release signing key")
    if made:
        log.info("made the release signing key %s (%s)", key_path, key_id(ReleaseSigner(private).public_raw))
    return ReleaseSigner(private)
