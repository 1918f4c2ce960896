"""Unit tests of fleetops.common.pki: keys, files, CSRs, issuing, identities, renewal (no network)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fleetops.common import pki
from fleetops.common.errors import CertificateRequestError, InvalidInput, NotFound, Unauthenticated
from fleetops.common.files import write_public_file, write_secret_file

DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def ca() -> pki.CertificateAuthority:
    return pki.CertificateAuthority.create()


@pytest.fixture(scope="module")
def host_key() -> ec.EllipticCurvePrivateKey:
    return pki.generate_private_key()


@pytest.fixture(scope="module")
def host_csr(host_key: ec.EllipticCurvePrivateKey) -> x509.CertificateSigningRequest:
    return pki.load_csr(pki.build_csr(host_key, "web-01"))


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --- keys and files ---------------------------------------------------------------------------


def test_key_roundtrip_and_secret_file_mode(tmp_path: Path) -> None:
    key = pki.generate_private_key()
    assert isinstance(key.curve, ec.SECP256R1)
    target = tmp_path / "new-dir" / "agent.key"
    write_secret_file(target, pki.private_key_pem(key))
    assert _mode(target) == 0o600
    assert _mode(target.parent) == 0o700
    loaded = pki.load_private_key(target.read_bytes())
    assert loaded.private_numbers() == key.private_numbers()
    assert [p.name for p in tmp_path.joinpath("new-dir").iterdir()] == ["agent.key"]  # no temp file left


def test_secret_file_is_0600_even_when_replacing_a_public_file(tmp_path: Path) -> None:
    target = tmp_path / "x.key"
    target.write_bytes(b"old")
    target.chmod(0o644)
    write_secret_file(target, b"new")
    assert target.read_bytes() == b"new"
    assert _mode(target) == 0o600


def test_public_file_mode(tmp_path: Path) -> None:
    target = tmp_path / "ca.pem"
    write_public_file(target, b"cert")
    assert _mode(target) == 0o644
    assert target.read_bytes() == b"cert"


def test_load_private_key_garbage() -> None:
    with pytest.raises(InvalidInput):
        pki.load_private_key(b"not a key")


def test_ca_save_load(tmp_path: Path, ca: pki.CertificateAuthority) -> None:
    ca.save(tmp_path / "ca")
    assert _mode(tmp_path / "ca" / "ca.key") == 0o600
    assert _mode(tmp_path / "ca" / "ca.pem") == 0o644
    loaded = pki.CertificateAuthority.load(tmp_path / "ca")
    assert loaded.cert == ca.cert
    with pytest.raises(NotFound) as info:
        pki.CertificateAuthority.load(tmp_path / "missing")
    assert "fleetops-controller init" in info.value.hint


def test_ca_certificate_extensions(ca: pki.CertificateAuthority) -> None:
    bc = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = ca.cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    ca.cert.verify_directly_issued_by(ca.cert)


# --- CSRs -------------------------------------------------------------------------------------


def test_csr_roundtrip(host_key: ec.EllipticCurvePrivateKey) -> None:
    pem = pki.build_csr(host_key, "web-01")
    assert pem.startswith(b"-----BEGIN CERTIFICATE REQUEST-----")
    csr = pki.load_csr(pem)
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "web-01"
    assert csr.public_key().public_numbers() == host_key.public_key().public_numbers()


def _tampered_csr(key: ec.EllipticCurvePrivateKey) -> bytes:
    der = bytearray(x509.load_pem_x509_csr(pki.build_csr(key, "web-01")).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # last byte of the ECDSA signature's s value
    return x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda key, ca: os.urandom(300), id="random-bytes"),
        pytest.param(lambda key, ca: b"", id="empty"),
        pytest.param(lambda key, ca: pki.cert_pem(ca.cert), id="certificate-pem"),
        pytest.param(lambda key, ca: pki.private_key_pem(key), id="private-key-pem"),
        pytest.param(
            lambda key, ca: b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            id="broken-body",
        ),
        pytest.param(lambda key, ca: _tampered_csr(key), id="tampered-signature"),
    ],
)
def test_bad_csr_raises(make, host_key: ec.EllipticCurvePrivateKey, ca: pki.CertificateAuthority) -> None:
    with pytest.raises(CertificateRequestError) as info:
        pki.load_csr(make(host_key, ca))
    assert "fleetops-agent register" in info.value.hint
    assert info.value.message


def test_csr_with_weak_rsa_key_raises() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(CertificateRequestError, match="1024"):
        pki.load_csr(pki.build_csr(weak, "old-box"))


def test_csr_with_unsupported_curve_raises() -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    with pytest.raises(CertificateRequestError, match="secp256k1"):
        pki.load_csr(pki.build_csr(key, "odd-box"))


# --- issuing ----------------------------------------------------------------------------------


def _uris(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier
    )


def test_host_certificate_ignores_names_requested_in_csr(
    ca: pki.CertificateAuthority, host_key: ec.EllipticCurvePrivateKey
) -> None:
    greedy = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin")]))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.UniformResourceIdentifier("fleetops://operator/admin"),
                    x509.DNSName("controller.example"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(host_key, hashes.SHA256())
    )
    csr = pki.load_csr(greedy.public_bytes(serialization.Encoding.PEM))
    before = datetime.now(UTC)
    cert = ca.issue_host_certificate(csr, "h-0123abcd", DAY)

    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "h-0123abcd"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(sans) == [x509.UniformResourceIdentifier("fleetops://host/h-0123abcd")]
    assert _uris(cert) == ["fleetops://host/h-0123abcd"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_agreement and not ku.key_cert_sign
    assert cert.public_key().public_numbers() == host_key.public_key().public_numbers()
    assert cert.issuer == ca.cert.subject
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert 0 < cert.serial_number < 2**159
    assert cert.not_valid_before_utc <= before - timedelta(minutes=4)
    assert abs(cert.not_valid_after_utc - (before + DAY)) < timedelta(minutes=1)
    ca.verify_issued(cert)


def test_host_certificate_rejects_bad_host_id(ca: pki.CertificateAuthority, host_csr) -> None:
    for bad in ["", "a/b", "h 1", "../x", "x" * 65]:
        with pytest.raises(InvalidInput):
            ca.issue_host_certificate(host_csr, bad, DAY)


def test_server_certificate(ca: pki.CertificateAuthority) -> None:
    key = pki.generate_private_key()
    cert = ca.issue_server_certificate(key.public_key(), ["localhost"], ["127.0.0.1", "::1"], DAY)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    ip_only = ca.issue_server_certificate(key.public_key(), [], ["10.0.0.1"], DAY)
    assert ip_only.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "10.0.0.1"
    with pytest.raises(InvalidInput):
        ca.issue_server_certificate(key.public_key(), [], [], DAY)
    with pytest.raises(InvalidInput):
        ca.issue_server_certificate(key.public_key(), ["localhost"], ["not-an-ip"], DAY)


# --- identities -------------------------------------------------------------------------------


def test_identity_from_host_and_operator_certs(ca: pki.CertificateAuthority, host_csr) -> None:
    host = pki.identity_from_cert(ca.issue_host_certificate(host_csr, "h-42", DAY))
    assert host == pki.PeerIdentity("host", "h-42")
    assert host.uri() == "fleetops://host/h-42"
    op = pki.identity_from_cert(ca.issue_operator_certificate(host_csr, "alice", DAY))
    assert op == pki.PeerIdentity("operator", "alice")
    assert op.uri() == "fleetops://operator/alice"


def test_identity_from_cert_without_fleetops_uri(ca: pki.CertificateAuthority) -> None:
    server = ca.issue_server_certificate(pki.generate_private_key().public_key(), ["localhost"], [], DAY)
    with pytest.raises(Unauthenticated):
        pki.identity_from_cert(server)
    with pytest.raises(Unauthenticated):
        pki.identity_from_cert(ca.cert)  # no SAN extension at all


def _self_signed_with_uris(*uris: str) -> x509.Certificate:
    key = pki.generate_private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + DAY)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]), False)
        .sign(key, hashes.SHA256())
    )


def test_identity_from_cert_rejects_several_or_unknown_kind() -> None:
    with pytest.raises(Unauthenticated, match="2"):
        pki.identity_from_cert(_self_signed_with_uris("fleetops://host/a", "fleetops://operator/b"))
    with pytest.raises(Unauthenticated, match="not a fleetops host, operator or replica"):
        pki.identity_from_cert(_self_signed_with_uris("fleetops://robot/r2"))
    with pytest.raises(Unauthenticated):
        pki.identity_from_cert(_self_signed_with_uris("fleetops://host/"))
    assert pki.identity_from_cert(_self_signed_with_uris("https://example.com", "fleetops://host/h-1")).name == "h-1"


# --- verification -----------------------------------------------------------------------------


def test_verify_issued_rejects_foreign_ca(ca: pki.CertificateAuthority, host_csr) -> None:
    foreign = pki.CertificateAuthority.create()  # same default CN "fleetops CA": the signature decides
    assert foreign.cert.subject == ca.cert.subject
    cert = foreign.issue_host_certificate(host_csr, "h-1", DAY)
    with pytest.raises(Unauthenticated, match="not issued by this controller's CA"):
        ca.verify_issued(cert)
    foreign.verify_issued(cert)


def test_verify_issued_rejects_expired(ca: pki.CertificateAuthority, host_csr) -> None:
    cert = ca.issue_host_certificate(host_csr, "h-1", timedelta(seconds=1))
    ca.verify_issued(cert, now=cert.not_valid_after_utc - timedelta(milliseconds=500))
    later = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(Unauthenticated, match="expired at") as info:
        ca.verify_issued(cert, now=later)
    assert "two thirds" in info.value.message
    with pytest.raises(Unauthenticated, match="not valid before"):
        ca.verify_issued(cert, now=datetime.now(UTC) - timedelta(hours=1))


# --- renewal ----------------------------------------------------------------------------------


def test_renewal_due_at_two_thirds(ca: pki.CertificateAuthority, host_csr) -> None:
    cert = ca.issue_host_certificate(host_csr, "h-1", timedelta(days=30))
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    moment = pki.renewal_time(cert)
    assert moment.tzinfo is not None
    assert moment == start + (end - start) * 2 / 3
    assert not pki.renewal_due(cert)
    assert not pki.renewal_due(cert, now=moment - timedelta(seconds=1))
    assert pki.renewal_due(cert, now=moment)
    assert pki.renewal_due(cert, now=moment + timedelta(days=1))
    assert pki.renewal_due(cert, now=(moment + timedelta(seconds=1)).replace(tzinfo=None))  # naive = UTC


# --- fingerprints -----------------------------------------------------------------------------


def test_fingerprint_and_normalization(ca: pki.CertificateAuthority) -> None:
    fp = pki.fingerprint_sha256(ca.cert)
    assert len(fp) == 64 and fp == fp.lower()
    assert fp == ca.cert.fingerprint(hashes.SHA256()).hex()
    colons = ":".join(fp[i : i + 2] for i in range(0, 64, 2)).upper()
    for text in [fp, fp.upper(), "sha256:" + fp, "SHA256:" + colons, colons, f"  {fp}\n"]:
        assert pki.normalize_fingerprint(text) == fp
    for bad in ["", "sha256:", fp[:-1], fp + "0", "g" * 64, "md5:" + fp]:
        with pytest.raises(InvalidInput):
            pki.normalize_fingerprint(bad)


def test_cert_pem_roundtrip_and_chain(ca: pki.CertificateAuthority, host_csr) -> None:
    leaf = ca.issue_host_certificate(host_csr, "h-1", DAY)
    assert pki.load_cert(pki.cert_pem(leaf)) == leaf
    assert pki.load_cert_chain(pki.cert_pem(leaf) + pki.cert_pem(ca.cert)) == [leaf, ca.cert]
    with pytest.raises(InvalidInput):
        pki.load_cert(b"garbage")
    with pytest.raises(InvalidInput):
        pki.load_cert_chain(b"")


def test_replica_certificate_carries_the_replica_identity(ca: pki.CertificateAuthority) -> None:
    key = pki.generate_private_key()
    cert = ca.issue_replica_certificate(key.public_key(), "r2", DAY)
    assert pki.identity_from_cert(cert) == pki.PeerIdentity("replica", "r2")
    assert pki.PeerIdentity("replica", "r2").uri() == "fleetops://replica/r2"
    ca.verify_issued(cert)
    with pytest.raises(InvalidInput, match="replica id"):
        ca.issue_replica_certificate(key.public_key(), "bad id/..", DAY)
