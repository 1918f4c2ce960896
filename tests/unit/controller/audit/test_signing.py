"""The audit checkpoint key: made once beside the CA, private 0600, public published, retired keys trusted."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fleetops.common.errors import InvalidInput, NotFound
from fleetops.controller.audit.signing import KEY_FILE, PUBLIC_FILE, load_signer, load_verifier


def test_made_once_then_loaded(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no audit checkpoint key"):
        load_signer(tmp_path / "ca")
    made = load_signer(tmp_path / "ca", create=True)
    again = load_signer(tmp_path / "ca")
    assert made.key_id == again.key_id and made.key_id.startswith("sha256:") and len(made.key_id) == 7 + 64
    assert load_verifier(tmp_path / "ca" / PUBLIC_FILE).key_id == made.key_id
    if sys.platform != "win32":
        assert os.stat(tmp_path / "ca" / KEY_FILE).st_mode & 0o777 == 0o600
    assert again.verifier.verify(made.sign(b"x"), b"x") and not again.verifier.verify(made.sign(b"x"), b"y")


def test_the_public_file_follows_the_private_key(tmp_path: Path) -> None:
    signer = load_signer(tmp_path, create=True)
    other = Ed25519PrivateKey.generate().public_key()
    (tmp_path / PUBLIC_FILE).write_bytes(
        other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    load_signer(tmp_path)
    assert load_verifier(tmp_path / PUBLIC_FILE).key_id == signer.key_id


def test_retired_keys_are_trusted_to_verify(tmp_path: Path) -> None:
    old = load_signer(tmp_path / "old", create=True)
    (tmp_path / "ca").mkdir()
    (tmp_path / "ca" / "audit-checkpoint.retired-2026.pub").write_bytes((tmp_path / "old" / PUBLIC_FILE).read_bytes())
    current = load_signer(tmp_path / "ca", create=True)
    assert set(current.trusted()) == {old.key_id, current.key_id}


def test_a_damaged_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("not a key")
    with pytest.raises(InvalidInput, match="not an unencrypted PEM private key"):
        load_signer(tmp_path)
    (tmp_path / "x.pub").write_text("nope")
    with pytest.raises(InvalidInput, match="not a PEM public key"):
        load_verifier(tmp_path / "x.pub")
