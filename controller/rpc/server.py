"""The two gRPC listeners: mutual-TLS (agents, operators) and enrollment (server-auth TLS only)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from fleetops.common import limits
from fleetops.controller.objects.health import StoreHealth, StoreStatus
from fleetops.v1 import agent_pb2, enrollment_pb2, operator_pb2, peer_pb2

# See docs/operations.md: a connect storm of thousands of agents queues calls in grpc core before
# the Python server picks them up; past the default ~1000 it rejects them.
SERVER_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.server.max_pending_requests", 20000),
    ("grpc.keepalive_time_ms", 30_000),  # ping idle agents so a dead peer is noticed
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),  # agents ping every 20 s
    ("grpc.http2.max_pings_without_data", 0),
    # Message sizes from the one table (common/limits.py): at least what agents and operators may
    # legally send; no more than what either may be sent.
    *limits.channel_options(receive=limits.CONTROLLER_RECEIVE_BYTES, send=limits.CONTROLLER_SEND_BYTES),
)
# The enrollment listener answers anyone: it takes small requests only.
ENROLL_SERVER_OPTIONS: Sequence[tuple[str, int]] = (
    *(option for option in SERVER_OPTIONS if not option[0].startswith("grpc.max_")),
    *limits.channel_options(receive=limits.ENROLL_RECEIVE_BYTES, send=limits.CONTROLLER_SEND_BYTES),
)


class HealthStatus(Protocol):
    """What the controller uses of grpc_health's asyncio servicer (``health.aio.HealthServicer``)."""

    async def set(self, service: str, status: int) -> None: ...


def add_health_and_reflection(server: grpc.aio.Server, service_names: Sequence[str]) -> HealthStatus:
    servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]  # grpc_health's stubs lack health.aio
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    reflection.enable_server_reflection((*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    return servicer


async def mark_serving(servicer: HealthStatus, service_names: Sequence[str]) -> None:
    for name in ("", *service_names):
        await servicer.set(name, health_pb2.HealthCheckResponse.SERVING)


#: Health service name of the object store: NOT_SERVING while it is degraded (the controller itself
#: stays SERVING: it keeps serving agents and operators and spools output meanwhile).
OBJECT_STORE_SERVICE = "fleetops.ObjectStore"


def report_object_store(servicer: HealthStatus, store_health: StoreHealth) -> None:
    """Keep :data:`OBJECT_STORE_SERVICE`'s status in step with ``store_health`` from now on."""
    pending: set[asyncio.Task[None]] = set()

    async def publish() -> None:
        # Read at run time, not when scheduled: two quick changes never land out of order.
        up = store_health.up
        status = health_pb2.HealthCheckResponse.SERVING if up else health_pb2.HealthCheckResponse.NOT_SERVING
        await servicer.set(OBJECT_STORE_SERVICE, status)

    def changed(_status: StoreStatus) -> None:
        task = asyncio.get_running_loop().create_task(publish())
        pending.add(task)
        task.add_done_callback(pending.discard)

    store_health.on_change(changed)


MTLS_SERVICES = (
    agent_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name,
    operator_pb2.DESCRIPTOR.services_by_name["OperatorService"].full_name,
    peer_pb2.DESCRIPTOR.services_by_name["PeerService"].full_name,
)
ENROLL_SERVICES = (enrollment_pb2.DESCRIPTOR.services_by_name["EnrollmentService"].full_name,)


def mtls_credentials(key_pem: bytes, chain_pem: bytes, ca_pem: bytes) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([(key_pem, chain_pem)], root_certificates=ca_pem, require_client_auth=True)


def tls_credentials(key_pem: bytes, chain_pem: bytes) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([(key_pem, chain_pem)], require_client_auth=False)
