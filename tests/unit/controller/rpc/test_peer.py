"""Who is calling comes from the verified client certificate only; anything else is refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from fleetops.common import pki
from fleetops.common.errors import Unauthenticated
from fleetops.controller.rpc.peer import peer_of


def self_signed(*uris: str) -> x509.Certificate:
    """A certificate with these URI SANs (none: no SAN extension at all), signed by its own key."""
    key = pki.generate_private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone")])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
    )
    if uris:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]), critical=False
        )
    return builder.sign(key, hashes.SHA256())


def test_an_operator_certificate_names_the_operator(context, operator_cert: Callable[[str], x509.Certificate]) -> None:
    cert = operator_cert("alice")
    peer = peer_of(context(cert, peer="ipv6:[::1]:4444"))
    assert (peer.identity.kind, peer.identity.name, peer.actor) == ("operator", "alice", "operator:alice")
    assert peer.address == "ipv6:[::1]:4444"
    assert peer.expires_at == cert.not_valid_after_utc and peer.access is None


def test_a_host_certificate_names_the_host(context, host_cert: x509.Certificate) -> None:
    assert peer_of(context(host_cert)).actor == "host:h-1"


def test_no_certificate_is_refused(context) -> None:
    with pytest.raises(Unauthenticated, match="no client certificate") as caught:
        peer_of(context(None))
    assert caught.value.hint


@pytest.mark.parametrize(
    ("uris", "problem"),
    [
        ((), "carries 0 fleetops:// URI SANs"),
        (("https://example.com/alice",), "carries 0 fleetops:// URI SANs"),
        (("fleetops://operator/alice", "fleetops://operator/bob"), "carries 2 fleetops:// URI SANs"),
        (("fleetops://robot/alice",), "is not a fleetops host, operator or replica"),
        (("fleetops://operator/../../etc",), "is not a fleetops host, operator or replica"),
    ],
)
def test_a_certificate_without_exactly_one_fleetops_identity_is_refused(
    context, uris: tuple[str, ...], problem: str
) -> None:
    with pytest.raises(Unauthenticated, match=problem) as caught:
        peer_of(context(self_signed(*uris)))
    assert "certificate issued by the controller" in caught.value.hint
