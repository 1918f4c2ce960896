"""OperatorService calls for sessions (controller/sessions): the operator leg, list, show, kill, transcript."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from fleetops.common.errors import FleetopsError
from fleetops.controller.authz.ssh import SshRights, ssh_rights
from fleetops.controller.fleet.models import Host
from fleetops.controller.rpc import convert
from fleetops.controller.rpc.access import Access
from fleetops.controller.rpc.errors import abort
from fleetops.controller.rpc.operator.base import OperatorAdapter, operator_call, operator_stream
from fleetops.controller.rpc.peer import Peer, peer_of
from fleetops.controller.rpc.session_streams import SessionRelay, operator_session
from fleetops.v1 import operator_pb2


class SessionCalls(OperatorAdapter):
    """Interactive sessions: the operator's leg of a session, listing, killing, transcripts."""

    async def Session(
        self, request_iterator: AsyncIterator[operator_pb2.SessionClientMessage], context: grpc.aio.ServicerContext
    ) -> None:
        """The operator's leg of a session (the broker audits start, resume and end)."""
        try:
            peer = peer_of(context)
        except FleetopsError as exc:
            await self._audit.record(
                actor=f"peer:{context.peer()}", action="session.start", outcome="denied", details={"error": exc.message}
            )
            await abort(context, exc)
        await self.operator_leg(peer, request_iterator, context, self.session_relay)

    async def operator_leg(
        self,
        peer: Peer,
        request_iterator: AsyncIterator[operator_pb2.SessionClientMessage],
        context: grpc.aio.ServicerContext,
        relay: SessionRelay | None = None,
    ) -> None:
        """The operator's leg for ``peer``, on its own stream or relayed by another replica."""
        actor = peer.actor
        try:
            peer = await self._authorize(peer, "Session")
        except FleetopsError as exc:
            await self._audit.record(
                actor=actor, action="session.start", outcome="denied", details={"error": exc.message}
            )
            await abort(context, exc)
        access: Access = peer.access

        def authorize(host: Host, login: str) -> None:
            access.require([host], login)

        def rights(host: Host) -> SshRights:
            return ssh_rights(access.roles, host)

        try:
            await operator_session(
                self._sessions, self._audit, peer, request_iterator, context, authorize, relay, ssh_rights=rights
            )
        finally:
            refused = [d for d in access.decisions if not d.allowed]
            if refused:
                await self._audit.record(
                    actor=actor,
                    action="session.start",
                    target=", ".join(refused[0].denied_hosts),
                    outcome="denied",
                    details={"error": refused[0].message, **access.audit()},
                )

    @operator_call("session.list")
    async def ListSessions(self, request: operator_pb2.ListSessionsRequest, peer: Peer) -> tuple[Any, str]:
        sessions = await self._sessions.list(
            active_only=request.active_only, host=request.host, limit=min(request.limit or 50, 1000)
        )
        allowed = {h.id for h in peer.access.visible(await self._hosts(x.host_id for x in sessions))}
        sessions = [x for x in sessions if x.host_id in allowed]
        return operator_pb2.ListSessionsResponse(sessions=[convert.session_to_proto(x) for x in sessions]), ""

    @operator_call("session.show")
    async def GetSession(self, request: operator_pb2.GetSessionRequest, peer: Peer) -> tuple[Any, str]:
        session = await self._sessions.get(request.id)
        peer.access.require(await self._hosts([session.host_id]))
        return convert.session_to_proto(session), session.id

    @operator_call("session.kill")
    async def KillSession(self, request: operator_pb2.GetSessionRequest, peer: Peer) -> tuple[Any, str]:
        peer.access.require(await self._hosts([(await self._sessions.get(request.id)).host_id]))
        replica = await self.session_relay.broker_of(request.id) if self.session_relay is not None else None
        if replica is not None and self.session_relay is not None:  # brokered by another replica: killed there
            timeout = self._sessions.limits.terminate_timeout + 30
            await self.session_relay.kill(replica, peer.actor, request.id, timeout)
            session = await self._sessions.get(request.id)
        else:
            session = await self._sessions.kill(peer.actor, request.id)
        return convert.session_to_proto(session), session.id

    @operator_stream("session.transcript")
    async def GetSessionTranscript(self, request: operator_pb2.GetSessionRequest, peer: Peer) -> Any:
        async for chunk in self._sessions.transcript(request.id):
            yield operator_pb2.OutputData(data=chunk)
