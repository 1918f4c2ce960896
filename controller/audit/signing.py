"""The key that signs audit checkpoints: Ed25519, kept beside the CA, never in the database.

Files in the CA directory (``STATE_DIR/ca``)::

    audit-checkpoint.key              the private key (PKCS#8 PEM, 0600); made at the first start
    audit-checkpoint.pub              its public key (SubjectPublicKeyInfo PEM, 0644), published
    audit-checkpoint.retired-*.pub    public keys of earlier checkpoint keys, still trusted to verify

Why a key of its own rather than the CA key: the CA key mints identities (whoever holds it is
every host and every operator), so it signs certificates and nothing else and can be kept
offline later without stopping the checkpoints; a checkpoint key that leaks lets someone forge
checkpoints, never certificates. Why beside the CA: replicas already share ``ca/`` (and backups
already cover it), and the point of the key is that the database does not hold it: whoever can
rewrite the audit table cannot re-sign the anchor that shows the rewrite.

A key id is ``sha256:`` and the hex SHA-256 of the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fleetops.common.errors import InvalidInput, NotFound
from fleetops.common.pki import ed25519_key_pair

log = logging.getLogger(__name__)

KEY_FILE = "audit-checkpoint.key"
PUBLIC_FILE = "audit-checkpoint.pub"
RETIRED_GLOB = "audit-checkpoint.retired-*.pub"


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def public_key_text(public: Ed25519PublicKey) -> str:
    """The raw public key, base64 (as a checkpoint carries it, for readers without the .pub file)."""
    return base64.b64encode(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


@dataclass(frozen=True)
class CheckpointVerifier:
    """A public key trusted to have signed checkpoints."""

    public: Ed25519PublicKey

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            self.public.verify(signature, data)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class CheckpointSigner:
    """The private key checkpoints are signed with, and the public keys trusted to verify them."""

    private: Ed25519PrivateKey
    # Earlier keys (retired by a rotation) whose checkpoints still verify.
    retired: tuple[CheckpointVerifier, ...] = ()

    @property
    def verifier(self) -> CheckpointVerifier:
        return CheckpointVerifier(self.private.public_key())

    @property
    def key_id(self) -> str:
        return self.verifier.key_id

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)

    def trusted(self) -> dict[str, CheckpointVerifier]:
        """The keys a checkpoint may be signed with, by key id (the current one and the retired ones)."""
        keys = {v.key_id: v for v in self.retired}
        keys[self.key_id] = self.verifier
        return keys


def load_signer(directory: Path, *, create: bool = False) -> CheckpointSigner:
    """The checkpoint key in ``directory`` (the CA directory); made there first when ``create``.

    The public file is (re)written from the private key when missing or different: the private
    key is the authority, the public file its publication.

    Raises:
        NotFound: there is no key and ``create`` is false.
        InvalidInput: the key file is not an Ed25519 private key, or a retired key file is not an
            Ed25519 public key.
        OSError: the files cannot be written.
    """
    directory = Path(directory)
    key_path, pub_path = directory / KEY_FILE, directory / PUBLIC_FILE
    private, made = ed25519_key_pair(key_path, pub_path, create=create, what="audit checkpoint key")
    if made:
        log.info("made the audit checkpoint key %s (%s)", key_path, key_id(private.public_key()))
    retired = tuple(load_verifier(p) for p in sorted(directory.glob(RETIRED_GLOB)))
    return CheckpointSigner(private, retired)


def load_trusted(directory: Path) -> dict[str, CheckpointVerifier]:
    """The public keys in ``directory`` (the CA directory) trusted to have signed checkpoints, by key id.

    For readers without the private key (``fleetops-controller audit verify-export``).

    Raises:
        NotFound: there is no ``audit-checkpoint.pub``.
        InvalidInput: a public key file is damaged.
    """
    directory = Path(directory)
    keys = [load_verifier(directory / PUBLIC_FILE), *(load_verifier(p) for p in sorted(directory.glob(RETIRED_GLOB)))]
    return {k.key_id: k for k in keys}


def load_verifier(path: Path) -> CheckpointVerifier:
    """A public key file (``audit-checkpoint.pub`` or a retired one).

    Raises:
        NotFound: the file does not exist.
        InvalidInput: it is not an Ed25519 public key in PEM.
    """
    if not Path(path).is_file():
        raise NotFound(f"no audit checkpoint public key {path}", "it is in the controller's ca/ directory")
    try:
        public = serialization.load_pem_public_key(Path(path).read_bytes())
    except ValueError as exc:
        raise InvalidInput(f"{path} is not a PEM public key ({exc})", "restore it from ca/ of a replica") from None
    if not isinstance(public, Ed25519PublicKey):
        raise InvalidInput(f"{path} is not an Ed25519 public key", "restore it from ca/ of a replica")
    return CheckpointVerifier(public)
