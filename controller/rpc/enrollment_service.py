"""EnrollmentService: served on the enrollment port (server-authenticated TLS, no client certificate)."""

from __future__ import annotations

import grpc

from fleetops.common import pki
from fleetops.common.errors import FleetopsError
from fleetops.common.wire import inventory_from_proto
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.enrollment.service import EnrollmentService
from fleetops.controller.rpc.errors import abort
from fleetops.controller.users.service import UserService
from fleetops.v1 import enrollment_pb2, enrollment_pb2_grpc


class EnrollmentServicer(enrollment_pb2_grpc.EnrollmentServiceServicer):
    def __init__(self, enrollment: EnrollmentService, users: UserService, audit: AuditLog) -> None:
        self._enrollment = enrollment
        self._users = users
        self._audit = audit

    async def OperatorLogin(
        self, request: enrollment_pb2.OperatorLoginRequest, context: grpc.aio.ServicerContext
    ) -> enrollment_pb2.OperatorCertificate:
        """An operator's first login with a one-time token (audited, refused or not)."""
        try:
            name, certificate = await self._users.login(
                request.token_id.strip(), request.token_secret.strip(), bytes(request.csr_pem)
            )
        except FleetopsError as exc:
            await self._audit.record(
                actor=f"peer:{context.peer()}",
                action="user.login",
                target=request.token_id[:32],
                outcome="refused",
                details={"error": exc.message},
            )
            await abort(context, exc)
        await self._audit.record(
            actor=f"operator:{name}",
            action="user.login",
            target=name,
            details={"expires_at": certificate.not_valid_after_utc.isoformat(), "peer": context.peer() or ""},
        )
        return enrollment_pb2.OperatorCertificate(
            operator=name, certificate_pem=pki.cert_pem(certificate), ca_pem=pki.cert_pem(self._users.ca)
        )

    async def Register(
        self, request: enrollment_pb2.RegisterRequest, context: grpc.aio.ServicerContext
    ) -> enrollment_pb2.RegisterResponse:
        try:
            registration = await self._enrollment.register(
                activation_id=request.activation_id.strip(),
                activation_code=request.activation_code.strip(),
                csr_pem=bytes(request.csr_pem),
                inventory=inventory_from_proto(request.inventory),
                tags=dict(request.tags),
                name=request.name.strip(),
                peer=context.peer() or "",
            )
        except FleetopsError as exc:
            await abort(context, exc)
        return enrollment_pb2.RegisterResponse(
            host_id=registration.host_id,
            certificate_pem=registration.certificate_pem,
            ca_pem=registration.ca_pem,
            hostname=registration.hostname,
            tags=registration.tags,
        )
