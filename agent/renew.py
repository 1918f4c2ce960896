"""``fleetops-agent renew``: a new key and certificate over the current mutual-TLS identity.

The long-running agent starts this as a short-lived child process at two thirds of the
certificate's life, so key generation and X.509 parsing (the ``cryptography`` library) never
stay loaded in the daemon. It can also be run by hand.
"""

from __future__ import annotations

import grpc
from cryptography import x509

from fleetops.agent.state import AgentState
from fleetops.common import pki
from fleetops.common.errors import Unauthenticated
from fleetops.common.rpc_client import error_from_rpc
from fleetops.v1 import agent_pb2, agent_pb2_grpc

RENEW_TIMEOUT = 30.0


def renew(state: AgentState) -> x509.Certificate:
    """Replace this host's key and certificate; returns the new certificate.

    Raises:
        Unauthenticated / PermissionDenied: the controller refused this host (revoked).
        Unavailable: the controller could not be reached; retry later.
    """
    identity = state.load()
    creds = grpc.ssl_channel_credentials(
        root_certificates=identity.ca_pem, private_key=identity.key_pem, certificate_chain=identity.cert_pem
    )
    key = pki.generate_private_key()
    csr = pki.build_csr(key, identity.host_id)
    with grpc.secure_channel(identity.controller, creds) as channel:
        stub = agent_pb2_grpc.AgentServiceStub(channel)
        try:
            response = stub.RenewCertificate(agent_pb2.RenewCertificateRequest(csr_pem=csr), timeout=RENEW_TIMEOUT)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, f"the controller at {identity.controller}") from exc
    cert = pki.load_cert(response.certificate_pem)
    pki.check_key_matches(key, cert)
    if pki.identity_from_cert(cert).name != identity.host_id:
        raise Unauthenticated(
            f"the controller issued a certificate for {pki.identity_from_cert(cert).name}, not {identity.host_id}",
            "check the controller; the old certificate was kept",
        )
    state.save_renewed(
        pki.private_key_pem(key), response.certificate_pem, cert.not_valid_before_utc, cert.not_valid_after_utc
    )
    return cert
