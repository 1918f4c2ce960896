"""EnrollmentService: served on the enrollment port (server-authenticated TLS, no client certificate)."""

from __future__ import annotations

import grpc

from fleetops.common.errors import FleetopsError
from fleetops.common.wire import inventory_from_proto
from fleetops.controller.enrollment.service import EnrollmentService
from fleetops.controller.rpc.errors import abort
from fleetops.v1 import enrollment_pb2, enrollment_pb2_grpc


class EnrollmentServicer(enrollment_pb2_grpc.EnrollmentServiceServicer):
    def __init__(self, enrollment: EnrollmentService) -> None:
        self._enrollment = enrollment

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
