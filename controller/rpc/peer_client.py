"""This replica calling the others over the peer service, with a client certificate of the replica kind."""

from __future__ import annotations

import logging

import grpc

from fleetops.common import limits
from fleetops.controller.metrics import ControllerMetrics
from fleetops.controller.replicas.service import ReplicaRegistry
from fleetops.v1 import agent_pb2, peer_pb2, peer_pb2_grpc

log = logging.getLogger(__name__)

# Seconds a peer call may take: a replica that does not answer in this time is treated as not
# holding the host (the run waits for the host to show up elsewhere; a report is not acknowledged).
PEER_CALL_TIMEOUT = 10.0

_OPTIONS = (
    *limits.channel_options(receive=limits.CONTROLLER_RECEIVE_BYTES, send=limits.CONTROLLER_RECEIVE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
)


class PeerClients:
    """One channel per other replica, opened on first use and replaced when its address changes."""

    def __init__(
        self,
        registry: ReplicaRegistry,
        key_pem: bytes,
        chain_pem: bytes,
        ca_pem: bytes,
        metrics: ControllerMetrics | None = None,
    ) -> None:
        self._registry = registry
        self._metrics = metrics
        self._credentials = grpc.ssl_channel_credentials(
            root_certificates=ca_pem, private_key=key_pem, certificate_chain=chain_pem
        )
        self._channels: dict[str, tuple[str, grpc.aio.Channel, peer_pb2_grpc.PeerServiceStub]] = {}
        self._stale: list[grpc.aio.Channel] = []

    def route(self, host_id: str) -> str | None:
        """The other replica holding ``host_id``, if any (agent_channel.Router)."""
        return self._registry.route(host_id)

    def stub(self, replica_id: str) -> peer_pb2_grpc.PeerServiceStub | None:
        address = self._registry.address_of(replica_id)
        if address is None:
            return None
        cached = self._channels.get(replica_id)
        if cached is not None and cached[0] == address:
            return cached[2]
        if cached is not None:
            self._stale.append(cached[1])  # a replica restarted elsewhere; closed with the others
        channel = grpc.aio.secure_channel(address, self._credentials, options=_OPTIONS)
        stub = peer_pb2_grpc.PeerServiceStub(channel)
        self._channels[replica_id] = (address, channel, stub)
        return stub

    async def deliver(self, replica_id: str, host_id: str, message: agent_pb2.ControllerMessage) -> bool:
        """Have ``replica_id`` send ``message`` on ``host_id``'s control stream; False when it could not."""
        stub = self.stub(replica_id)
        if stub is None:
            return False
        try:
            reply = await stub.Deliver(
                peer_pb2.DeliverRequest(host_id=host_id, message=message), timeout=PEER_CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as exc:
            log.warning("replica %s did not take a message for host %s: %s", replica_id, host_id, exc.details())
            self.count("deliver", "failed")
            return False
        self.count("deliver", "delivered" if reply.delivered else "not_connected")
        return bool(reply.delivered)

    async def report(self, replica_id: str, host_id: str, message: agent_pb2.AgentMessage) -> bool:
        """Pass a host's report to the replica running its command; True once it took it."""
        stub = self.stub(replica_id)
        if stub is None:
            return False
        try:
            reply = await stub.Report(
                peer_pb2.ReportRequest(host_id=host_id, message=message), timeout=PEER_CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as exc:
            log.warning("replica %s did not take a report of host %s: %s", replica_id, host_id, exc.details())
            self.count("report", "failed")
            return False
        self.count("report", "taken" if reply.stored else "not_taken")
        return bool(reply.stored)

    def count(self, call: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.peer_calls.labels(call, outcome).inc()

    async def close(self) -> None:
        for channel in [*(c for _, c, _ in self._channels.values()), *self._stale]:
            await channel.close(None)
        self._channels.clear()
        self._stale.clear()
