"""An agent's session stream that reached this replica, relayed to the replica brokering the session.

The broker (the replica the operator opened the session on) keeps the session's windows and
records its transcript; the agent dials whichever replica its load balancer picks, and so does
opsctl when it resumes after a dropped link. The replica it
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
from typing import Any

import grpc
from cryptography.hazmat.primitives import serialization

from fleetops.common.errors import Unavailable
from fleetops.common.rpc_client import error_from_rpc
from fleetops.controller.replicas.service import ReplicaRegistry
from fleetops.controller.rpc.errors import abort
from fleetops.controller.rpc.peer import Peer
from fleetops.controller.rpc.peer_client import PeerClients
from fleetops.controller.sessions.broker import SessionBroker
from fleetops.v1 import agent_pb2, operator_pb2, peer_pb2

log = logging.getLogger(__name__)

#: The metadata key naming the host whose session stream a replica relays.
RELAYED_HOST = "fleetops-relayed-host"
#: The metadata key carrying the certificate (DER) of the operator whose session stream a replica relays.
RELAYED_OPERATOR = "fleetops-relayed-operator-bin"


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
        """The host's leg of a session, passed to the broker."""
        stub = self._peers.stub(replica_id)
        if stub is None:
            return
        log.info("relaying host %s's session stream to replica %s", host_id, replica_id)
        self._peers.count("relay_session", "started")
        call = stub.RelaySession(metadata=((RELAYED_HOST, host_id),))
        await _pipe(call, first, request_iterator, context, replica_id)

    async def kill(self, replica_id: str, actor: str, session_id: str, timeout: float) -> None:
        """Have the broker hang the session up.

        Raises:
            FleetopsError: as the broker refused (it already ended), or Unavailable when it cannot be reached.
        """
        stub = self._peers.stub(replica_id)
        if stub is None:
            raise Unavailable(f"replica {replica_id}, which brokers session {session_id}, is not known here")
        try:
            await stub.KillSession(peer_pb2.KillSessionRequest(session_id=session_id, actor=actor), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, f"replica {replica_id}") from exc

    async def relay_operator(
        self,
        replica_id: str,
        operator: Peer,
        first: operator_pb2.SessionClientMessage,
        request_iterator: AsyncIterator[operator_pb2.SessionClientMessage],
        context: grpc.aio.ServicerContext,
    ) -> None:
        """opsctl's leg of a session resuming here, passed to the broker with the operator's certificate."""
        stub = self._peers.stub(replica_id)
        if stub is None:
            return
        log.info("relaying %s's session stream to replica %s", operator.actor, replica_id)
        self._peers.count("relay_operator_session", "started")
        certificate = operator.certificate.public_bytes(serialization.Encoding.DER)
        call = stub.RelayOperatorSession(metadata=((RELAYED_OPERATOR, certificate),))
        await _pipe(call, first, request_iterator, context, replica_id)


async def _pipe(
    call: Any,
    first: Any,
    request_iterator: AsyncIterator[Any],
    context: grpc.aio.ServicerContext,
    replica_id: str,
) -> None:
    """Pass ``first`` and the rest of ``request_iterator`` up ``call``, its answers down ``context``."""

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
            await down  # the caller finished writing: the broker's answer still comes back
    finally:
        # The broker ended the stream with OK (the session's "ended" went down): an error of a write
        # still on its way up (on a call that is over) is no failure to pass on to the caller.
        ended_cleanly = down.done() and not down.cancelled() and down.exception() is None
        for task in (up, down):
            task.cancel()
        results = await asyncio.gather(up, down, return_exceptions=True)
        call.cancel()
    if ended_cleanly:
        return
    failure = next((r for r in results if isinstance(r, grpc.aio.AioRpcError)), None)
    if failure is not None and failure.code() != grpc.StatusCode.CANCELLED:
        with contextlib.suppress(asyncio.InvalidStateError):
            await abort(context, error_from_rpc(failure, f"replica {replica_id}"))
