"""Who is calling: the identity in the verified client certificate, never a message field."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import grpc
from cryptography import x509

from fleetops.common import pki
from fleetops.common.errors import Unauthenticated


@dataclass(frozen=True)
class Peer:
    identity: pki.PeerIdentity
    certificate: x509.Certificate
    address: str
    #: The operator's authorization for the current call (set by the operator service).
    access: Any = None

    @property
    def expires_at(self) -> datetime:
        return self.certificate.not_valid_after_utc

    @property
    def actor(self) -> str:
        return f"{self.identity.kind}:{self.identity.name}"


def peer_of(context: grpc.aio.ServicerContext) -> Peer:
    """The caller's verified identity.

    The TLS handshake already checked the chain against our CA and the validity window (the
    server requires client certificates); this reads the URI SAN of the leaf.

    Raises:
        Unauthenticated: no certificate, or one without a fleetops identity.
    """
    auth = context.auth_context()
    pem = next(iter(auth.get("x509_pem_cert") or ()), None)
    if pem is None:
        raise Unauthenticated("no client certificate presented", "use the certificate issued by this controller")
    cert = x509.load_pem_x509_certificate(pem)
    return Peer(pki.identity_from_cert(cert), cert, context.peer() or "")
