"""PeerService: what another controller replica asks of this one (docs/architecture.md "Replicas").

Only a certificate of the replica kind signed by the fleet CA gets in: a host or operator
certificate is refused, audited and aborted, like any identity calling a service not meant for it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
from cryptography import x509

from fleetops.common import limits, pki
from fleetops.common.errors import FleetopsError, InvalidInput, PermissionDenied, Unauthenticated
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.fleet.presence import PresenceTracker
from fleetops.controller.rpc.errors import abort
from fleetops.controller.rpc.host_order import each_host_in_order
from fleetops.controller.rpc.invocation_reports import INVOCATION_MESSAGES, InvocationReports
from fleetops.controller.rpc.peer import Peer, peer_of
from fleetops.controller.rpc.session_relay import RELAYED_HOST, RELAYED_OPERATOR
from fleetops.controller.rpc.session_streams import agent_session
from fleetops.controller.sessions.broker import SessionBroker
from fleetops.v1 import agent_pb2, operator_pb2, peer_pb2, peer_pb2_grpc

log = logging.getLogger(__name__)

#: The operator's leg of a session for a verified operator (OperatorServicer.operator_leg).
OperatorLeg = Callable[
    [Peer, AsyncIterator[operator_pb2.SessionClientMessage], grpc.aio.ServicerContext, None], Awaitable[None]
]

#: What one replica may put on a host's control stream held by another.
DELIVERABLE = frozenset({"run", "cancel", "result_ack", "open_session"})


class PeerServicer(peer_pb2_grpc.PeerServiceServicer):
    def __init__(
        self,
        presence: PresenceTracker,
        reports: InvocationReports,
        broker: SessionBroker,
        audit: AuditLog,
        authority: pki.CertificateAuthority,
        operator_leg: OperatorLeg,
    ) -> None:
        self._presence = presence
        self._reports = reports
        self._broker = broker
        self._audit = audit
        self._authority = authority
        self._operator_leg = operator_leg

    async def _replica(self, context: grpc.aio.ServicerContext, action: str) -> Peer:
        """The calling replica; any other identity is refused, audited and aborted."""
        actor = ""
        try:
            peer = peer_of(context)
            actor = peer.actor
            if peer.identity.kind != "replica":
                raise PermissionDenied(
                    f"{peer.actor} is not a controller replica",
                    "only controller replicas call the peer service",
                )
            return peer
        except FleetopsError as exc:
            await self._audit.record(
                actor=actor or f"peer:{context.peer()}",
                action=action,
                outcome="refused",
                details={"reason": exc.message, "peer": context.peer() or ""},
            )
            log.warning("refused %s from %s: %s", action, actor or context.peer(), exc.message)
            await abort(context, exc)
            raise  # unreachable: abort raises

    async def Deliver(
        self, request: peer_pb2.DeliverRequest, context: grpc.aio.ServicerContext
    ) -> peer_pb2.DeliverReply:
        await self._replica(context, "peer.deliver")
        try:
            delivered = await self._deliver(request)
        except InvalidInput as exc:
            await abort(context, exc)
        return peer_pb2.DeliverReply(delivered=delivered)

    async def DeliverBatch(
        self, request: peer_pb2.DeliverBatchRequest, context: grpc.aio.ServicerContext
    ) -> peer_pb2.DeliverBatchReply:
        """Many Delivers in one call: each host's messages in order, different hosts side by side.
        A message refused (a kind a peer may not deliver, too large) is answered False and logged;
        the others are still sent."""
        replica = await self._replica(context, "peer.deliver")
        delivered = await _take_batch(request.deliveries, self._deliver, "messages to deliver", replica)
        return peer_pb2.DeliverBatchReply(delivered=delivered)

    async def _deliver(self, request: peer_pb2.DeliverRequest) -> bool:
        """Send ``request``'s message on its host's control stream here; False when the host is not linked here.

        Raises:
            InvalidInput: a message a peer may not deliver, or larger than an agent receives.
        """
        kind = request.message.WhichOneof("body")
        if kind not in DELIVERABLE:
            raise InvalidInput(f"a peer may not deliver a {kind or 'empty'} message to a host")
        if request.message.ByteSize() > limits.AGENT_RECEIVE_BYTES:
            raise InvalidInput("the message is larger than an agent receives")
        link = self._presence.link(request.host_id)
        if link is None:
            return False
        try:
            await link.send(request.message)  # type: ignore[attr-defined]  # GrpcAgentLink has send(); fleet's AgentLink need not
        except (grpc.RpcError, RuntimeError, ConnectionError) as exc:
            log.info("could not send to host %s for a peer: %s", request.host_id, exc)
            return False
        return True

    async def Report(self, request: peer_pb2.ReportRequest, context: grpc.aio.ServicerContext) -> peer_pb2.ReportReply:
        await self._replica(context, "peer.report")
        try:
            stored = await self._take_report(request)
        except FleetopsError as exc:
            await abort(context, exc)
        return peer_pb2.ReportReply(stored=stored)

    async def ReportBatch(
        self, request: peer_pb2.ReportBatchRequest, context: grpc.aio.ServicerContext
    ) -> peer_pb2.ReportBatchReply:
        """Many Reports in one call: each host's in order, different hosts side by side.

        Side by side because a result awaits a commit the command service batches across callers:
        taking the batch's reports one after another would wait for one commit per result.
        A report refused (not about an invocation, or a FleetopsError such as a host reporting
        another's invocation) is answered False and logged, naming the host; the others are still
        taken (Report would abort the call, which here would refuse the whole batch).
        """
        replica = await self._replica(context, "peer.report")
        stored = await _take_batch(request.reports, self._take_report, "reports passed on", replica)
        return peer_pb2.ReportBatchReply(stored=stored)

    async def _take_report(self, request: peer_pb2.ReportRequest) -> bool:
        """Take a report passed on by another replica (see InvocationReports.take_for_peer).

        Raises:
            InvalidInput: not a report about an invocation; PermissionDenied: not the host's own.
        """
        kind = request.message.WhichOneof("body")
        if kind not in INVOCATION_MESSAGES:
            raise InvalidInput(
                f"a {kind or 'empty'} message is no invocation report",
                "a peer passes on reports about invocations only",
            )
        return await self._reports.take_for_peer(request.host_id, request.message)

    async def RelaySession(
        self, request_iterator: AsyncIterator[agent_pb2.AgentSessionMessage], context: grpc.aio.ServicerContext
    ) -> None:
        await self._replica(context, "peer.session")
        host_id = dict(context.invocation_metadata() or ()).get(RELAYED_HOST, "")
        if not isinstance(host_id, str) or not host_id:
            await abort(context, InvalidInput(f"a relayed session stream names its host in {RELAYED_HOST}"))
        # As if the host had dialled this replica (the relaying replica checked its certificate).
        await agent_session(self._broker, host_id, request_iterator, context)

    async def KillSession(
        self, request: peer_pb2.KillSessionRequest, context: grpc.aio.ServicerContext
    ) -> peer_pb2.KillSessionReply:
        await self._replica(context, "peer.session")
        if not request.actor.startswith("operator:"):
            await abort(context, InvalidInput("a relayed kill names the operator as operator:NAME"))
        try:
            await self._broker.kill(request.actor, request.session_id)
        except FleetopsError as exc:
            await abort(context, exc)
        return peer_pb2.KillSessionReply()

    async def RelayOperatorSession(
        self, request_iterator: AsyncIterator[operator_pb2.SessionClientMessage], context: grpc.aio.ServicerContext
    ) -> None:
        replica = await self._replica(context, "peer.session")
        try:
            operator = self._relayed_operator(context)
        except FleetopsError as exc:
            await self._audit.record(
                actor=replica.actor,
                action="peer.session",
                outcome="refused",
                details={"reason": exc.message, "peer": context.peer() or ""},
            )
            await abort(context, exc)
        # Authorized here as on a stream of its own (revocation, roles, the session's host).
        await self._operator_leg(operator, request_iterator, context, None)

    def _relayed_operator(self, context: grpc.aio.ServicerContext) -> Peer:
        """The operator whose stream a replica relays, from the certificate it passed on.

        Raises:
            Unauthenticated: no certificate, one this CA did not issue, or an expired one.
            PermissionDenied: not an operator's certificate.
        """
        der = dict(context.invocation_metadata() or ()).get(RELAYED_OPERATOR)
        if not isinstance(der, bytes) or not der:
            raise Unauthenticated(f"a relayed operator stream carries the operator's certificate in {RELAYED_OPERATOR}")
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise Unauthenticated(f"the relayed operator certificate does not parse: {exc}") from exc
        self._authority.verify_issued(cert)
        identity = pki.identity_from_cert(cert)
        if identity.kind != "operator":
            raise PermissionDenied(f"{identity.kind}:{identity.name} is not an operator identity")
        return Peer(identity, cert, f"relayed by {context.peer() or 'a replica'}")


async def _take_batch(
    items: Sequence[Any], take: Callable[[Any], Awaitable[bool]], what: str, replica: Peer
) -> list[bool]:
    """``take(item)`` for each item of a batch call (:func:`each_host_in_order`). An item refused (a
    FleetopsError) is answered False and logged, naming its host; the others are still taken (a
    unary call would abort, which here would refuse the whole batch). One host's trouble is not the
    batch's: an unexpected error is logged and answered False too (the item comes again)."""
    refused: list[str] = []

    async def handle(i: int) -> bool:
        item = items[i]
        try:
            return await take(item)
        except FleetopsError as exc:
            refused.append(f"host {item.host_id[:64]}: {exc.message}")
        except Exception:
            log.exception("taking one of the %s of host %s from %s failed", what, item.host_id[:64], replica.actor)
        return False

    answers = await each_host_in_order([item.host_id for item in items], handle)
    _log_refused(refused, len(items), what, replica)
    return answers


def _log_refused(refused: list[str], total: int, what: str, replica: Peer) -> None:
    if refused:
        log.warning(
            "refused %d of %d %s by %s: %s%s",
            len(refused),
            total,
            what,
            replica.actor,
            "; ".join(refused[:5]),
            "; ..." if len(refused) > 5 else "",
        )
