"""Release signatures: made over the received digest, refused for any change after signing."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fleetops.common.release_signature import (
    ReleaseManifest,
    ReleaseRefused,
    check_file_name,
    key_id,
    signed_message,
    verify_package,
)

NAME = "fleetops-agent_0.1.1-1_amd64.deb"
PACKAGE = b"!<arch>\npretend package bytes"


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def signed(key: Ed25519PrivateKey, data: bytes = PACKAGE) -> ReleaseManifest:
    digest = hashlib.sha256(data).hexdigest()
    signature = key.sign(signed_message(NAME, "0.1.1", "deb", "amd64", digest))
    return ReleaseManifest(NAME, "0.1.1", "deb", "amd64", digest, len(data), signature, key_id(raw(key)))


def test_the_signed_package_verifies() -> None:
    key = Ed25519PrivateKey.generate()
    manifest = signed(key)
    assert manifest.key_id == key_id(raw(key)) and manifest.key_id.startswith("sha256:")
    verify_package(manifest, raw(key), hashlib.sha256(PACKAGE).hexdigest(), len(PACKAGE))  # raises if refused


def test_a_tampered_package_is_refused_even_with_its_manifest_unchanged() -> None:
    key = Ed25519PrivateKey.generate()
    tampered = PACKAGE.replace(b"pretend", b"backdoor")
    with pytest.raises(ReleaseRefused, match="signature check failed for fleetops-agent_0.1.1-1_amd64.deb"):
        verify_package(signed(key), raw(key), hashlib.sha256(tampered).hexdigest(), len(tampered))


def test_a_manifest_claiming_the_tampered_digest_does_not_help() -> None:
    key = Ed25519PrivateKey.generate()
    tampered = PACKAGE + b"!"
    digest = hashlib.sha256(tampered).hexdigest()
    manifest = signed(key)
    forged = ReleaseManifest(NAME, "0.1.1", "deb", "amd64", digest, len(tampered), manifest.signature, manifest.key_id)
    with pytest.raises(ReleaseRefused, match="signature check failed"):
        verify_package(forged, raw(key), digest, len(tampered))


def test_another_version_under_the_same_signature_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    m = signed(key)
    relabelled = ReleaseManifest(NAME, "0.2.0", m.kind, m.arch, m.sha256, m.size, m.signature, m.key_id)
    with pytest.raises(ReleaseRefused):
        verify_package(relabelled, raw(key), m.sha256, m.size)


def test_a_package_signed_by_another_key_is_refused() -> None:
    signer, controller = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    with pytest.raises(ReleaseRefused, match="signed by release key"):
        verify_package(signed(signer), raw(controller), hashlib.sha256(PACKAGE).hexdigest(), len(PACKAGE))
    m = signed(signer)
    anonymous = ReleaseManifest(m.file_name, m.version, m.kind, m.arch, m.sha256, m.size, m.signature, "")
    with pytest.raises(ReleaseRefused, match="signature check failed"):
        verify_package(anonymous, raw(controller), m.sha256, m.size)


def test_a_short_download_is_refused_by_its_size() -> None:
    key = Ed25519PrivateKey.generate()
    with pytest.raises(ReleaseRefused, match="is 3 bytes, its signed manifest says"):
        verify_package(signed(key), raw(key), hashlib.sha256(PACKAGE).hexdigest(), 3)


def test_a_bad_public_key_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    with pytest.raises(ReleaseRefused, match="not an Ed25519 public key"):
        verify_package(signed(key), b"short", hashlib.sha256(PACKAGE).hexdigest(), len(PACKAGE))


@pytest.mark.parametrize(
    "name", ["../etc/passwd", "fleetops-agent_1.0_amd64.deb/../x", "other_1.0_amd64.deb", "fleetops-agent_1.0.deb"]
)
def test_file_names_are_release_names_only(name: str) -> None:
    with pytest.raises(ValueError):
        check_file_name(name)
    assert check_file_name(NAME) == NAME


def test_fields_cannot_smuggle_line_breaks() -> None:
    with pytest.raises(ValueError):
        signed_message(NAME, "0.1.1\ndeb", "deb", "amd64", "00")
