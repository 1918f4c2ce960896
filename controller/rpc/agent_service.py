"""AgentService: the agents' control stream and certificate renewal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc

from fleetops.common.errors import (
    FleetopsError,
    InternalError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from fleetops.common.wire import inventory_from_proto
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.commands.service import CommandService
from fleetops.controller.enrollment.service import EnrollmentService
from fleetops.controller.fleet.service import FleetService
from fleetops.controller.metrics import ControllerMetrics
from fleetops.controller.releases.service import AgentReleases
from fleetops.controller.rpc.errors import abort
from fleetops.controller.rpc.invocation_reports import INVOCATION_MESSAGES, InvocationReports
from fleetops.controller.rpc.peer import Peer, peer_of
from fleetops.controller.rpc.session_streams import SessionRelay, agent_session
from fleetops.controller.sessions.broker import SessionBroker
from fleetops.v1 import agent_pb2, agent_pb2_grpc

log = logging.getLogger(__name__)

# How long an agent has to send its Hello after the stream opens.
HELLO_TIMEOUT = 30.0
#: An SSH host key line longer than this is not a key (Ed25519's is about 100 characters).
MAX_SSH_HOST_KEY = 512
#: Bytes per DownloadRelease message (well under the agent's receive limit).
RELEASE_CHUNK = 256 * 1024


def _ssh_host_key(hello: agent_pb2.Hello, host_id: str) -> str:
    """The Hello's SSH host key, or "" when there is none or it is not one plausible key line.

    Only the shape is checked here (the host is not trusted, and the column is bounded); the key
    is parsed when a session needs it certified, and a bad one fails that session only.
    """
    key = hello.ssh_host_key
    if not key:
        return ""
    if len(key) > MAX_SSH_HOST_KEY or not key.isprintable() or len(key.split()) not in (2, 3):
        log.warning("host %s sent an SSH host key that is not one key line; ignoring it", host_id)
        return ""
    return key


class GrpcAgentLink:
    """One agent's control stream, as the fleet room's ``AgentLink``."""

    def __init__(self, context: grpc.aio.ServicerContext, peer_address: str) -> None:
        self._context = context
        self.peer_address = peer_address
        self._write_lock = asyncio.Lock()
        self.closed = asyncio.Event()
        self.revoked = False
        self.reason = ""

    async def send(self, message: agent_pb2.ControllerMessage) -> None:
        async with self._write_lock:
            await self._context.write(message)

    async def close(self, reason: str, *, revoked: bool) -> None:
        if self.closed.is_set():
            return
        self.reason, self.revoked = reason, revoked
        self.closed.set()
        try:
            await asyncio.wait_for(
                self.send(agent_pb2.ControllerMessage(disconnect=agent_pb2.Disconnect(reason=reason, revoked=revoked))),
                timeout=2.0,
            )
        except (TimeoutError, grpc.RpcError, RuntimeError, asyncio.InvalidStateError):
            pass  # the stream is already gone; ending it below is all that is left


class AgentServicer(agent_pb2_grpc.AgentServiceServicer):
    def __init__(
        self,
        fleet: FleetService,
        enrollment: EnrollmentService,
        audit: AuditLog,
        metrics: ControllerMetrics,
        commands: CommandService,
        sessions: SessionBroker,
        reports: InvocationReports,
        session_relay: SessionRelay | None = None,
        *,
        heartbeat_interval: float,
        inventory_interval: float,
    ) -> None:
        self._fleet = fleet
        self._enrollment = enrollment
        self._audit = audit
        self._metrics = metrics
        self._commands = commands
        self._sessions = sessions
        self._reports = reports
        self._session_relay = session_relay
        self._heartbeat_interval = heartbeat_interval
        self._inventory_interval = inventory_interval
        #: Agent releases (set by the composition root); None: DownloadRelease answers NOT_FOUND.
        self.releases: AgentReleases | None = None

    async def _host_peer(self, context: grpc.aio.ServicerContext, action: str) -> Peer:
        """The calling host, admitted; anything else is refused, audited and aborted."""
        actor = ""
        admitting = False
        try:
            peer = peer_of(context)
            actor = peer.actor
            if peer.identity.kind != "host":
                raise PermissionDenied(
                    f"{peer.actor} is not a host identity",
                    "agents connect with the certificate from fleetops-agent register",
                )
            admitting = True
            await self._fleet.admit(peer.identity.name)
            return peer
        except FleetopsError as exc:
            # The fleet's refusal of this host (deregistered, unknown) is the one refusal that tells
            # the agent it is revoked; anything else it retries.
            revoked = admitting and isinstance(exc, Unauthenticated)
            await self._refuse(context, action, actor, exc, reason="identity", revoked=revoked)
            raise  # unreachable: _refuse aborts

    async def _refuse(
        self,
        context: grpc.aio.ServicerContext,
        action: str,
        actor: str,
        exc: FleetopsError,
        *,
        reason: str,
        revoked: bool = False,
    ) -> None:
        self._metrics.refused_agent_messages.labels(reason).inc()
        await self._audit.record(
            actor=actor or f"peer:{context.peer()}",
            action=action,
            target=actor.removeprefix("host:"),
            outcome="refused",
            details={"reason": exc.message, "peer": context.peer() or ""},
        )
        log.warning("refused %s from %s: %s", action, actor or context.peer(), exc.message)
        await abort(context, exc, revoked=revoked)

    async def SessionStream(
        self, request_iterator: AsyncIterator[agent_pb2.AgentSessionMessage], context: grpc.aio.ServicerContext
    ) -> None:
        peer = await self._host_peer(context, "agent.session")
        await agent_session(self._sessions, peer.identity.name, request_iterator, context, self._session_relay)

    async def Connect(
        self, request_iterator: AsyncIterator[agent_pb2.AgentMessage], context: grpc.aio.ServicerContext
    ) -> None:
        peer = await self._host_peer(context, "agent.connect")
        host_id = peer.identity.name
        try:
            first = await asyncio.wait_for(anext(request_iterator), HELLO_TIMEOUT)
        except (TimeoutError, StopAsyncIteration):
            return
        if first.WhichOneof("body") != "hello":
            exc: FleetopsError = Unauthenticated("the first message on the stream must be a Hello")
            await self._refuse(context, "agent.connect", peer.actor, exc, reason="protocol")
        if first.hello.host_id and first.hello.host_id != host_id:
            # Final for the agent (revoked): its own state contradicts its certificate, which no
            # retry fixes; only its own files can cause this, so nobody else can stop an agent so.
            await self._refuse(
                context,
                "agent.connect",
                peer.actor,
                PermissionDenied(
                    f"certificate of host {host_id} was used to speak for host {first.hello.host_id}",
                    "each host connects only as itself; check the agent's state directory, or register again",
                ),
                reason="impersonation",
                revoked=True,
            )
        link = GrpcAgentLink(context, peer.address)
        inventory = inventory_from_proto(first.hello.inventory) if first.hello.HasField("inventory") else None
        replaced = self._fleet.presence.connected(host_id, link, inventory, _ssh_host_key(first.hello, host_id))
        if replaced is not None:
            await replaced.close("replaced by a newer connection from the same host", revoked=False)
        self._metrics.connected_agents.set(self._fleet.presence.connected_count)
        failure: FleetopsError | None = None
        try:
            await link.send(
                agent_pb2.ControllerMessage(
                    welcome=agent_pb2.Welcome(
                        host_id=host_id,
                        heartbeat_interval_seconds=max(1, round(self._heartbeat_interval)),
                        inventory_interval_seconds=max(1, round(self._inventory_interval)),
                    )
                )
            )
            await self._commands.host_connected(host_id)
            reader = asyncio.create_task(self._read_loop(request_iterator, context, peer, link))
            closer = asyncio.create_task(link.closed.wait())
            try:
                await asyncio.wait({reader, closer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (reader, closer):
                    task.cancel()
                await asyncio.gather(reader, closer, return_exceptions=True)
                if reader.done() and not reader.cancelled():
                    error = reader.exception()
                    if isinstance(error, FleetopsError):
                        failure = error
        finally:
            self._fleet.presence.disconnected(host_id, link)
            self._metrics.connected_agents.set(self._fleet.presence.connected_count)
        if isinstance(failure, Unavailable | InternalError):
            # The controller's own trouble (its database, its disk): nothing the agent did, so no
            # refusal and no audit row; the agent reconnects and re-sends what was not acknowledged.
            await abort(context, failure)
        if failure is not None:
            await self._refuse(context, "agent.message", peer.actor, failure, reason="message")
        if link.revoked:
            await abort(
                context, Unauthenticated(f"host {host_id} was deregistered", "register the host again"), revoked=True
            )

    async def _read_loop(
        self,
        request_iterator: AsyncIterator[agent_pb2.AgentMessage],
        context: grpc.aio.ServicerContext,
        peer: Peer,
        link: GrpcAgentLink,
    ) -> None:
        host_id = peer.identity.name
        deadline = 3 * self._heartbeat_interval
        while True:
            try:
                message = await asyncio.wait_for(anext(request_iterator), deadline)
            except StopAsyncIteration:
                return
            except TimeoutError:
                await link.close(f"no heartbeat for {deadline:.0f}s", revoked=False)
                return
            kind = message.WhichOneof("body")
            if kind == "heartbeat":
                self._metrics.heartbeats.inc()
                if datetime.now(UTC) >= peer.expires_at:
                    # TLS checked the certificate at connect time only; a stream outliving it ends here.
                    await link.close("client certificate expired; reconnect with the renewed one", revoked=False)
                    return
                try:
                    self._fleet.check_admitted(host_id)
                except Unauthenticated as exc:  # deregistered meanwhile (through another replica)
                    await link.close(exc.message, revoked=True)
                    return
                # No HeartbeatAck: agents never used it (gRPC keepalive tells them of a dead link),
                # and at ten thousand agents it was a thousand writes a second.
                self._fleet.presence.seen(host_id)
            elif kind == "inventory":
                if message.inventory.host_id and message.inventory.host_id != host_id:
                    raise PermissionDenied(
                        f"host {host_id} sent inventory for host {message.inventory.host_id}",
                        "each host reports only its own inventory",
                    )
                self._fleet.presence.seen(host_id, inventory_from_proto(message.inventory.inventory))
            elif kind in INVOCATION_MESSAGES:
                if await self._reports.take(host_id, message) and kind == "result":
                    await link.send(
                        agent_pb2.ControllerMessage(
                            result_ack=agent_pb2.ResultAck(invocation_id=message.result.invocation_id)
                        )
                    )
            else:
                log.debug("ignoring unexpected %s message from %s", kind, host_id)

    async def RenewCertificate(
        self, request: agent_pb2.RenewCertificateRequest, context: grpc.aio.ServicerContext
    ) -> agent_pb2.RenewCertificateResponse:
        peer = await self._host_peer(context, "host.certificate.renew")
        try:
            cert_pem, ca_pem = await self._enrollment.renew(peer.identity.name, request.csr_pem)
        except FleetopsError as exc:
            await self._refuse(context, "host.certificate.renew", peer.actor, exc, reason="renewal")
            raise
        return agent_pb2.RenewCertificateResponse(certificate_pem=cert_pem, ca_pem=ca_pem)

    async def DownloadRelease(
        self, request: agent_pb2.DownloadReleaseRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[agent_pb2.ReleaseChunk]:
        """A release's manifest, the release public key, then the package (docs/install.md#updating-agents)."""
        peer = await self._host_peer(context, "agent.release.download")
        try:
            if self.releases is None:
                raise NotFound("this controller serves no agent releases", "add one: fleetops-controller release add")
            stored = await self.releases.get(request.file_name)
        except FleetopsError as exc:
            await self._refuse(context, "agent.release.download", peer.actor, exc, reason="release")
            raise
        m = stored.manifest
        manifest = agent_pb2.ReleaseManifest(
            file_name=m.file_name, version=m.version, kind=m.kind, arch=m.arch, sha256=m.sha256,
            size=m.size, signature=m.signature, key_id=m.key_id,
        )  # fmt: skip
        yield agent_pb2.ReleaseChunk(
            header=agent_pb2.ReleaseHeader(manifest=manifest, public_key=self.releases.public_key)
        )
        async for data in self.releases.read(m.file_name):
            for start in range(0, len(data), RELEASE_CHUNK):
                yield agent_pb2.ReleaseChunk(data=data[start : start + RELEASE_CHUNK])
