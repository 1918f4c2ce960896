"""An agent's session stream that reached this replica, relayed to the replica brokering the session.

The broker (the replica the operator opened the session on) keeps the session's windows and
records its transcript; the agent dials whichever replica its load balancer picks. The replica it
reached passes every message through unchanged over one PeerService.RelaySession stream, both
ways, so the seq/ack/window and resume rules are the broker's alone. When the relaying replica
dies, the agent's stream breaks and the agent resumes through another replica within the resume
window, as after any dropped link (docs/sessions.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import grpc

from fleetops.common.rpc_client import error_from_rpc
from fleetops.controller.replicas.service import ReplicaRegistry
from fleetops.controller.rpc.errors import abort
from fleetops.controller.rpc.peer_client import PeerClients
from fleetops.controller.sessions.broker import SessionBroker
from fleetops.v1 import agent_pb2, peer_pb2_grpc

log = logging.getLogger(__name__)

#: The metadata key naming the host whose session stream a replica relays.
RELAYED_HOST = "fleetops-relayed-host"


class PeerSessionRelay:
    def __init__(self, broker: SessionBroker, registry: ReplicaRegistry, peers: PeerClients) -> None:
        self._broker = broker
        self._registry = registry
        self._peers = peers

    async def broker_of(self, session_id: str) -> str | None:
        name = await self._broker.brokered_elsewhere(session_id)
        if name is None:
            return None
        replica_id = name.rpartition(":")[0]  # broker names are "<replica id>:<listen port>"
        if replica_id == self._registry.replica_id or not self._registry.alive(replica_id):
            return None  # its broker is gone: refused here, and the session ends there
        return replica_id

    async def relay(
        self,
        replica_id: str,
        host_id: str,
        first: agent_pb2.AgentSessionMessage,
        request_iterator: AsyncIterator[agent_pb2.AgentSessionMessage],
        context: grpc.aio.ServicerContext,
    ) -> None:
        stub: peer_pb2_grpc.PeerServiceStub | None = self._peers.stub(replica_id)
        if stub is None:
            return
        call = stub.RelaySession(metadata=((RELAYED_HOST, host_id),))
        log.info("relaying host %s's session stream to replica %s", host_id, replica_id)
        self._peers.count("relay_session", "started")

        async def upstream() -> None:
            await call.write(first)
            async for message in request_iterator:
                await call.write(message)
            await call.done_writing()

        async def downstream() -> None:
            async for message in call:
                await context.write(message)

        up = asyncio.create_task(upstream())
        down = asyncio.create_task(downstream())
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            if up.done() and not down.done() and up.exception() is None:
                await down  # the agent finished writing: the broker's answer still comes back
        finally:
            for task in (up, down):
                task.cancel()
            results = await asyncio.gather(up, down, return_exceptions=True)
            call.cancel()
        failure = next((r for r in results if isinstance(r, grpc.aio.AioRpcError)), None)
        if failure is not None and failure.code() != grpc.StatusCode.CANCELLED:
            with contextlib.suppress(asyncio.InvalidStateError):
                await abort(context, error_from_rpc(failure, f"replica {replica_id}"))
