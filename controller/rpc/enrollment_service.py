"""EnrollmentService: served on the enrollment port (server-authenticated TLS, no client certificate).

Both calls come from callers who have proved nothing yet, so both run under the port's throttle
(per source address; see ``fleetops.controller.rpc.throttle``) and every refusal goes to the
bounded ``RefusalLog`` rather than straight into the audit log.
"""

from __future__ import annotations

import grpc

from fleetops.common import pki
from fleetops.common.wire import inventory_from_proto
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.enrollment.service import EnrollmentService
from fleetops.controller.rpc.throttle import guarded
from fleetops.controller.throttle import EnrollmentThrottle, RefusalLog
from fleetops.controller.users.service import UserService
from fleetops.v1 import enrollment_pb2, enrollment_pb2_grpc

# Of an anonymous caller's claimed ids, this much goes into the audit log.
_SHOWN_ID = 64


class EnrollmentServicer(enrollment_pb2_grpc.EnrollmentServiceServicer):
    def __init__(
        self,
        enrollment: EnrollmentService,
        users: UserService,
        audit: AuditLog,
        throttle: EnrollmentThrottle | None = None,
        refusals: RefusalLog | None = None,
    ) -> None:
        self._enrollment = enrollment
        self._users = users
        self._audit = audit
        self._throttle = throttle or EnrollmentThrottle()
        self._refusals = refusals or RefusalLog(audit)

    async def OperatorLogin(
        self, request: enrollment_pb2.OperatorLoginRequest, context: grpc.aio.ServicerContext
    ) -> enrollment_pb2.OperatorCertificate:
        """An operator's first login with a one-time token (audited, refused or not)."""
        token_id = request.token_id.strip()
        name, certificate = await guarded(
            context,
            self._throttle,
            self._refusals,
            what="login attempts",
            action="user.login",
            actor=f"peer:{context.peer()}",
            target=token_id[:_SHOWN_ID],
            call=lambda: self._users.login(token_id, request.token_secret.strip(), bytes(request.csr_pem)),
        )
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
        activation_id = request.activation_id.strip()
        shown_id = activation_id[:_SHOWN_ID]
        registration = await guarded(
            context,
            self._throttle,
            self._refusals,
            what="registration attempts",
            action="host.register",
            actor=f"activation:{shown_id}",
            target=shown_id,
            call=lambda: self._enrollment.register(
                activation_id=activation_id,
                activation_code=request.activation_code.strip(),
                csr_pem=bytes(request.csr_pem),
                inventory=inventory_from_proto(request.inventory),
                tags=dict(request.tags),
                name=request.name.strip(),
                peer=context.peer() or "",
            ),
        )
        return enrollment_pb2.RegisterResponse(
            host_id=registration.host_id,
            certificate_pem=registration.certificate_pem,
            ca_pem=registration.ca_pem,
            hostname=registration.hostname,
            tags=registration.tags,
        )
