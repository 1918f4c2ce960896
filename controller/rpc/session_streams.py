"""The two legs of a session over gRPC: opsctl's Session stream and the agent's SessionStream.

Each handler converts frames between the wire and the sessions room, and pumps them: one task
reads the peer's messages, one sends the frames waiting in the session's window, one relays
acknowledgements (and, to the agent, a hang-up). The room decides everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import grpc

from fleetops.common import errors
from fleetops.common.errors import FleetopsError, InvalidInput
from fleetops.common.session_flow import RESUME_SECONDS, ProtocolError
from fleetops.common.terminal import check_size
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.authz.ssh import SshRights
from fleetops.controller.fleet.models import Host
from fleetops.controller.rpc.errors import abort
from fleetops.controller.rpc.peer import Peer
from fleetops.controller.sessions.broker import SessionBroker
from fleetops.controller.sessions.live import Attachment, LiveSession
from fleetops.controller.sessions.models import (
    ACTIVITY_ACTIONS,
    MAX_ACTIVITY_DETAILS,
    Activity,
    ActivityNote,
    AgentAttach,
    Resize,
    SessionEnd,
    SessionKind,
    SessionRequest,
    TerminalOpened,
    TerminalOutput,
)
from fleetops.v1 import agent_pb2, operator_pb2, session_pb2

log = logging.getLogger(__name__)

#: Seconds a new stream has to send its first message.
FIRST_MESSAGE_TIMEOUT = 30.0


def error_from_detail(detail: session_pb2.ErrorDetail) -> FleetopsError:
    """An error the agent sent inside the stream, as the fleetops error it names."""
    cls = getattr(errors, detail.kind, None)
    if not (isinstance(cls, type) and issubclass(cls, FleetopsError)):
        cls = FleetopsError
    return cls(detail.message or "the host refused the session", detail.hint)


class _Writer:
    """Serialises writes of several tasks onto one stream."""

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self._context = context
        self._lock = asyncio.Lock()

    async def __call__(self, message: Any) -> None:
        async with self._lock:
            await self._context.write(message)


async def _pump(tasks: list[asyncio.Task[Any]], attachment: Attachment) -> None:
    """Run until one task ends (or the stream is superseded); cancel the rest; re-raise a failure."""
    superseded = asyncio.create_task(attachment.superseded.wait())
    try:
        done, _ = await asyncio.wait({*tasks, superseded}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        superseded.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, superseded, return_exceptions=True)
    for task in done:
        if task is superseded or task.cancelled():
            continue
        error = task.exception()
        if error is not None:
            raise error


async def _first(request_iterator: AsyncIterator[Any]) -> Any | None:
    with contextlib.suppress(TimeoutError, StopAsyncIteration):
        return await asyncio.wait_for(anext(request_iterator), FIRST_MESSAGE_TIMEOUT)
    return None


# -- operator leg -------------------------------------------------------------------------------


def _request_from_proto(start: operator_pb2.StartSessionRequest) -> SessionRequest:
    return SessionRequest(
        host=start.host,
        run_as=start.run_as,
        command=start.command,
        cols=start.size.cols,
        rows=start.size.rows,
        term=start.term,
        env=dict(start.env),
        record_input=start.record_input,
        kind=SessionKind.SSH if start.kind == session_pb2.SESSION_KIND_SSH else SessionKind.TERMINAL,
    )


def _input_from_proto(frame: session_pb2.SessionInput) -> bytes | Resize:
    kind = frame.WhichOneof("event")
    if kind == "data":
        return frame.data
    if kind == "resize":
        return Resize(frame.resize.cols, frame.resize.rows)
    raise InvalidInput(f"input frame {frame.seq} carries nothing")


async def operator_session(
    broker: SessionBroker,
    audit: AuditLog,
    peer: Peer,
    request_iterator: AsyncIterator[operator_pb2.SessionClientMessage],
    context: grpc.aio.ServicerContext,
    authorize: Callable[[Any, str], None] | None = None,
    relay: SessionRelay | None = None,
    ssh_rights: Callable[[Host], SshRights] | None = None,
) -> None:
    """opsctl's leg of a session; a resume of one another replica brokers is relayed there whole.

    ``ssh_rights`` says what an SSH session may do on its host besides logging in (none without it).
    """
    first = await _first(request_iterator)
    if first is None:
        return
    kind = first.WhichOneof("body")
    if kind == "attach" and relay is not None:
        replica_id = await relay.broker_of(first.attach.session_id)
        if replica_id is not None:
            await relay.relay_operator(replica_id, peer, first, request_iterator, context)
            return
    try:
        if kind == "start":
            live = await broker.open(
                peer.actor,
                _request_from_proto(first.start),
                authorize=authorize,
                identity=peer.identity.name,
                ssh_rights=ssh_rights,
            )
            received = 0
        elif kind == "attach":
            live = await broker.reattach(peer.actor, first.attach.session_id, authorize=authorize)
            received = first.attach.received_seq
        else:
            raise InvalidInput("a session stream must begin with start or attach")
        attachment = await broker.connect_client(live)
    except FleetopsError as exc:
        await abort(context, exc)
    write = _Writer(context)
    try:
        live.out_window.rewind(received)
        await write(
            operator_pb2.SessionServerMessage(
                started=operator_pb2.SessionStarted(
                    session_id=live.id,
                    host_id=live.record.host_id,
                    host_name=live.record.host_name,
                    received_seq=live.in_window.acked,
                    idle_timeout_seconds=int(broker.limits.idle_timeout),
                    max_duration_seconds=int(broker.limits.max_duration),
                    resume_seconds=int(RESUME_SECONDS),
                )
            )
        )
        await _pump(
            [
                asyncio.create_task(_send_output(live, write)),
                asyncio.create_task(_send_acks(live.input_ack.beyond, live.in_window.acked, write, _input_ack)),
                asyncio.create_task(_read_operator(live, request_iterator)),
            ],
            attachment,
        )
    except ProtocolError as exc:
        log.warning("session %s: operator stream broke the protocol: %s", live.id, exc)
        await abort(context, InvalidInput(f"session protocol error: {exc.message}"))
    except InvalidInput as exc:  # a refused frame (a resize past common/terminal.py): as an open is refused
        await abort(context, exc)
    except (grpc.RpcError, asyncio.InvalidStateError, RuntimeError, ConnectionError) as exc:
        log.debug("session %s: operator stream ended: %r", live.id, exc)
    finally:
        broker.disconnect_client(live, attachment)


def _input_ack(seq: int) -> operator_pb2.SessionServerMessage:
    return operator_pb2.SessionServerMessage(input_ack=seq)


async def _send_output(live: LiveSession, write: Callable[[Any], Awaitable[None]]) -> None:
    while True:
        seq, event = await live.out_window.take()
        if isinstance(event, SessionEnd):
            await write(
                operator_pb2.SessionServerMessage(
                    ended=operator_pb2.SessionEnded(
                        exit_code=event.exit_code, reason=event.reason, message=event.message
                    )
                )
            )
            live.delivered.set()
            live.poke()
            return
        message = operator_pb2.SessionServerMessage()
        message.output.seq = seq
        message.output.data = event
        await write(message)


async def _send_acks(
    beyond: Callable[[int], Awaitable[int]],
    sent: int,
    write: Callable[[Any], Awaitable[None]],
    make: Callable[[int], Any],
) -> None:
    while True:
        sent = await beyond(sent)
        await write(make(sent))


async def _read_operator(live: LiveSession, request_iterator: AsyncIterator[operator_pb2.SessionClientMessage]) -> None:
    async for message in request_iterator:
        kind = message.WhichOneof("body")
        if kind == "input":
            await live.client_input(message.input.seq, _input_from_proto(message.input))
        elif kind == "output_ack":
            live.client_ack(message.output_ack)
        else:
            raise ProtocolError(f"unexpected {kind} in the middle of a session")


# -- agent leg ----------------------------------------------------------------------------------


def _output_from_proto(frame: session_pb2.SessionOutput) -> bytes | SessionEnd | Activity | None:
    """The frame's event; ``None`` for a malformed activity report (skipped, logged)."""
    kind = frame.WhichOneof("event")
    if kind == "data":
        return frame.data
    if kind == "exit":
        return SessionEnd(frame.exit.exit_code, frame.exit.reason or "exited", frame.exit.message)
    if kind == "activity":
        try:
            return activity_from_proto(frame.activity)
        except InvalidInput as exc:
            log.warning("output frame %d: ignoring an activity report: %s", frame.seq, exc.message)
            return None
    raise ProtocolError(f"output frame {frame.seq} carries nothing")


def activity_from_proto(activity: session_pb2.SessionActivity) -> Activity:
    """What the host reports about its SSH connection, checked (it is the host's word).

    Raises:
        InvalidInput: a report that is empty, too large, of an unknown action or not a JSON object.
    """
    kind = activity.WhichOneof("event")
    if kind == "terminal_output":
        return TerminalOutput(activity.terminal_output)
    if kind == "terminal_resized":
        return Resize(activity.terminal_resized.cols, activity.terminal_resized.rows)
    if kind == "terminal_opened":
        opened = activity.terminal_opened
        check_size(opened.size.cols, opened.size.rows)
        return TerminalOpened(opened.term[:64], opened.size.cols, opened.size.rows, opened.command[:4096])
    if kind == "audit":
        note = activity.audit
        if note.action not in ACTIVITY_ACTIONS:
            raise InvalidInput(f"unknown action {note.action[:64]!r}")
        if len(note.details_json) > MAX_ACTIVITY_DETAILS:
            raise InvalidInput(f"{note.action}: details longer than {MAX_ACTIVITY_DETAILS} bytes")
        try:
            details = json.loads(note.details_json)
        except ValueError:
            details = None
        if not isinstance(details, dict):
            raise InvalidInput(f"{note.action}: details are not a JSON object")
        return ActivityNote(note.action, details)
    raise InvalidInput("an empty activity report")


class SessionRelay(Protocol):
    """Passes an agent's session stream to the replica brokering the session (rpc/session_relay.py)."""

    async def broker_of(self, session_id: str) -> str | None:
        """The other live replica brokering ``session_id``, if any."""
        ...

    async def relay(
        self,
        replica_id: str,
        host_id: str,
        first: agent_pb2.AgentSessionMessage,
        request_iterator: AsyncIterator[agent_pb2.AgentSessionMessage],
        context: grpc.aio.ServicerContext,
    ) -> None: ...

    async def kill(self, replica_id: str, actor: str, session_id: str, timeout: float) -> None: ...

    async def relay_operator(
        self,
        replica_id: str,
        operator: Peer,
        first: operator_pb2.SessionClientMessage,
        request_iterator: AsyncIterator[operator_pb2.SessionClientMessage],
        context: grpc.aio.ServicerContext,
    ) -> None: ...


async def agent_session(
    broker: SessionBroker,
    host_id: str,
    request_iterator: AsyncIterator[agent_pb2.AgentSessionMessage],
    context: grpc.aio.ServicerContext,
    relay: SessionRelay | None = None,
) -> None:
    """The agent's leg of a session; one brokered by another replica is relayed there whole."""
    first = await _first(request_iterator)
    if first is None:
        return
    try:
        if first.WhichOneof("body") != "attach":
            raise InvalidInput("a session stream must begin with attach")
        attach = first.attach
        if relay is not None:
            replica_id = await relay.broker_of(attach.session_id)
            if replica_id is not None:
                await relay.relay(replica_id, host_id, first, request_iterator, context)
                return
        refused = error_from_detail(attach.refused) if attach.HasField("refused") else None
        live = await broker.agent_attach(
            host_id, AgentAttach(attach.session_id, attach.received_seq, shell=attach.shell, refused=refused)
        )
        if live is None:
            return  # the refusal went to the operator; nothing more on this stream
        attachment = await broker.connect_agent(live)
    except FleetopsError as exc:
        await abort(context, exc)
    write = _Writer(context)
    try:
        live.in_window.rewind(attach.received_seq)
        await write(
            agent_pb2.ControllerSessionMessage(
                attach=session_pb2.SessionAttach(session_id=live.id, received_seq=live.out_window.acked)
            )
        )
        await _pump(
            [
                asyncio.create_task(_send_input(live, write)),
                asyncio.create_task(_send_acks(live.output_ack.beyond, live.out_window.acked, write, _output_ack)),
                asyncio.create_task(_send_terminate(live, write)),
                asyncio.create_task(_read_agent(broker, live, request_iterator)),
            ],
            attachment,
        )
    except ProtocolError as exc:
        log.warning("session %s: agent stream broke the protocol: %s", live.id, exc)
        live.request_terminate("agent_lost", f"the host broke the session protocol: {exc.message}")
        await abort(context, InvalidInput(f"session protocol error: {exc.message}"))
    except (grpc.RpcError, asyncio.InvalidStateError, RuntimeError, ConnectionError) as exc:
        log.debug("session %s: agent stream ended: %r", live.id, exc)
    finally:
        broker.disconnect_agent(live, attachment)


def _output_ack(seq: int) -> agent_pb2.ControllerSessionMessage:
    return agent_pb2.ControllerSessionMessage(output_ack=seq)


async def _send_input(live: LiveSession, write: Callable[[Any], Awaitable[None]]) -> None:
    while True:
        seq, event = await live.in_window.take()
        message = agent_pb2.ControllerSessionMessage()
        message.input.seq = seq
        if isinstance(event, Resize):
            message.input.resize.cols, message.input.resize.rows = event.cols, event.rows
        else:
            message.input.data = event
        await write(message)


async def _send_terminate(live: LiveSession, write: Callable[[Any], Awaitable[None]]) -> None:
    await live.terminate_requested.wait()
    assert live.terminate_request is not None
    reason, message = live.terminate_request
    await write(
        agent_pb2.ControllerSessionMessage(terminate=agent_pb2.SessionTerminate(reason=str(reason), message=message))
    )
    await asyncio.Event().wait()  # stay: the other tasks carry on until the agent reports the end


async def _read_agent(
    broker: SessionBroker, live: LiveSession, request_iterator: AsyncIterator[agent_pb2.AgentSessionMessage]
) -> None:
    async for message in request_iterator:
        kind = message.WhichOneof("body")
        if kind == "output":
            await live.agent_output(
                message.output.seq,
                _output_from_proto(message.output),
                lambda end: broker.end_from_agent(live, end),
                lambda activity: broker.agent_activity(live, activity),
            )
        elif kind == "input_ack":
            live.agent_input_ack(message.input_ack)
        else:
            raise ProtocolError(f"unexpected {kind} in the middle of a session")
