"""OperatorService calls for SSH access (controller/ssh): operators' SSH certificates."""

from __future__ import annotations

from typing import Any

from fleetops.common.errors import Unavailable
from fleetops.common.ssh import HOST_DOMAIN
from fleetops.controller.rpc import convert
from fleetops.controller.rpc.operator.base import OperatorAdapter, operator_call
from fleetops.controller.rpc.peer import Peer
from fleetops.v1 import operator_pb2


class SshCalls(OperatorAdapter):
    """SSH certificates for stock ssh/scp/sftp through ``opsctl proxy`` (docs/ssh.md)."""

    @operator_call("ssh.certificate")
    async def IssueSshCertificate(
        self, request: operator_pb2.IssueSshCertificateRequest, peer: Peer
    ) -> tuple[Any, str]:
        if self.ssh_authority is None:
            raise Unavailable("this controller issues no SSH certificates", "check the controller's ca/ directory")
        issued = self.ssh_authority.certify_operator(peer.identity.name, request.public_key, peer.expires_at)
        return (
            operator_pb2.IssueSshCertificateResponse(
                certificate=issued.certificate,
                expires_at=convert.timestamp(issued.expires_at),
                host_ca_key=issued.host_ca_key,
                host_domain=HOST_DOMAIN,
            ),
            peer.identity.name,
        )
