"""``fleetops-agent register``: activation + CSR -> host certificate, key generated here."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc

from fleetops.agent.inventory import collect_inventory
from fleetops.agent.state import AgentState
from fleetops.common import pki
from fleetops.common.errors import Conflict, InvalidInput
from fleetops.common.rpc_client import error_from_rpc, split_host_port
from fleetops.common.wire import inventory_to_proto
from fleetops.v1 import enrollment_pb2, enrollment_pb2_grpc

log = logging.getLogger(__name__)

REGISTER_TIMEOUT = 30.0


def enroll_address(controller: str, enroll_port: int | None) -> str:
    host, port = split_host_port(controller)
    return f"{host}:{enroll_port or port + 1}"


def resolve_ca(controller: str, enroll: str, ca_cert: Path | None, ca_fingerprint: str | None) -> bytes:
    if bool(ca_cert) == bool(ca_fingerprint):
        raise InvalidInput(
            "give exactly one of --ca-cert and --ca-fingerprint",
            "the fingerprint is printed by `fleetops-controller init` and `fleetops-controller ca fingerprint`",
        )
    if ca_cert:
        try:
            return pki.cert_pem(pki.load_cert(ca_cert.read_bytes()))
        except OSError as exc:
            raise InvalidInput(f"cannot read --ca-cert {ca_cert}: {exc.strerror}") from exc
    host, port = split_host_port(enroll)
    assert ca_fingerprint is not None
    return pki.cert_pem(pki.discover_ca(host, port, ca_fingerprint))


def register(
    state: AgentState,
    *,
    controller: str,
    activation_id: str,
    activation_code: str,
    tags: dict[str, str],
    ca_cert: Path | None = None,
    ca_fingerprint: str | None = None,
    enroll_port: int | None = None,
    force: bool = False,
    name: str = "",
) -> tuple[str, str, dict[str, str]]:
    """Register this host; returns (host id, host name, tags).

    Raises:
        Conflict: already registered (use ``force`` to replace the identity).
        Unauthenticated: the controller refused the activation or the CA fingerprint did not match.
        Unavailable: the controller could not be reached.
    """
    if state.registered() and not force:
        raise Conflict(
            f"this host is already registered ({state.meta})",
            "pass --force to replace its identity (the old host entry stays until deregistered)",
        )
    enroll = enroll_address(controller, enroll_port)
    ca_pem = resolve_ca(controller, enroll, ca_cert, ca_fingerprint)
    key = pki.generate_private_key()
    inventory = collect_inventory()
    csr_pem = pki.build_csr(key, inventory.hostname or "fleetops-host")
    creds = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    with grpc.secure_channel(enroll, creds) as channel:
        stub = enrollment_pb2_grpc.EnrollmentServiceStub(channel)
        try:
            response = stub.Register(
                enrollment_pb2.RegisterRequest(
                    activation_id=activation_id,
                    activation_code=activation_code,
                    csr_pem=csr_pem,
                    inventory=inventory_to_proto(inventory.to_dict()),
                    tags=tags,
                    name=name,
                ),
                timeout=REGISTER_TIMEOUT,
            )
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, f"the controller at {enroll}") from exc
    cert = pki.load_cert(response.certificate_pem)
    pki.check_key_matches(key, cert)
    state.save_registration(
        host_id=response.host_id,
        controller=controller,
        hostname=response.hostname,
        key_pem=pki.private_key_pem(key),
        cert_pem=response.certificate_pem,
        ca_pem=response.ca_pem or ca_pem,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )
    return response.host_id, response.hostname, dict(response.tags)
