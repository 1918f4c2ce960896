"""The session broker: starts, relays, ends and looks up sessions, and records them.

Each running session is a :class:`~fleetops.controller.sessions.live.LiveSession` (flow control
and recording, in ``live.py``). The rpc layer attaches one stream per side and pumps frames through
it; a dropped stream detaches, and a new one with the same session id resumes where the other
side's acknowledgements say (docs/sessions.md). The broker supervises each session's clock (idle
timeout, maximum duration, resume windows) and finishes its record, transcript and audit events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleetops.common.errors import Conflict, FleetopsError, InvalidInput, NotFound, PermissionDenied, Unavailable
from fleetops.common.limits import KIB, truncate_utf8
from fleetops.common.states import EndReason, SessionState, TranscriptState
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.authz.ssh import SshRights
from fleetops.controller.fleet.models import Host, HostStatus
from fleetops.controller.fleet.service import FleetService
from fleetops.controller.objects.interfaces import ObjectStore
from fleetops.controller.sessions.asciicast import AsciicastEncoder
from fleetops.controller.sessions.interfaces import SessionOpener, SshCertifier
from fleetops.controller.sessions.live import Attachment, LiveSession
from fleetops.controller.sessions.models import (
    LOST_EXIT_CODE,
    Activity,
    ActivityNote,
    AgentAttach,
    Session,
    SessionEnd,
    SessionKind,
    SessionLimits,
    SessionRequest,
    SshServerSetup,
    TerminalOpened,
    TerminalOutput,
    check_request,
    new_session_id,
    transcript_key,
)
from fleetops.controller.sessions.spool import DEFAULT_PART_SIZE, SpoolPaths, TranscriptInfo
from fleetops.controller.sessions.store import SessionStore
from fleetops.controller.sessions.transcript import TranscriptSink
from fleetops.controller.sessions.uploader import TranscriptUploader

log = logging.getLogger(__name__)


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


class SessionBroker:
    """The sessions room's service: start, relay, end and look up sessions.

    Args:
        store: session records.
        fleet: resolves host names and tells which hosts are online.
        audit: every start, refusal, resume and end is an audit event.
        objects: where transcripts are kept.
        spool_dir: the local spool for transcripts (``<state_dir>/transcripts``).
        broker_name: this replica's name in session records (a restart ends only its sessions).
        ssh: certifies hosts for SSH sessions (``opsctl proxy``); without it they are refused.
    """

    def __init__(
        self,
        store: SessionStore,
        fleet: FleetService,
        audit: AuditLog,
        objects: ObjectStore,
        spool_dir: Path,
        broker_name: str,
        limits: SessionLimits | None = None,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        upload_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        ssh: SshCertifier | None = None,
    ) -> None:
        self._store = store
        self._ssh = ssh
        self._fleet = fleet
        self._audit = audit
        self._objects = objects
        self._spool_dir = Path(spool_dir)
        self.name = broker_name
        self.limits = limits or SessionLimits()
        self._part_size = part_size
        self._upload_interval = upload_interval
        self._clock = clock
        self._live: dict[str, LiveSession] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._opener: SessionOpener | None = None
        self._uploader = TranscriptUploader(objects, self._spool_dir, part_size=part_size)
        self._uploader_task: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self, opener: SessionOpener) -> None:
        """End what a previous run of this replica left unfinished, then start the transcript uploader."""
        self._opener = opener
        for session in await self._store.unfinished(self.name):
            spooled = await asyncio.to_thread(SpoolPaths(self._spool_dir, session.id).meta.exists)
            await self._store.end(
                session.id,
                ended_at=datetime.now(UTC),
                end_reason=EndReason.CONTROLLER_RESTART.value,
                end_message="the controller stopped during the session",
                transcript_state=(TranscriptState.SPOOLED if spooled else TranscriptState.NONE).value,
            )
            await self._audit.record(
                actor="controller",
                action="session.end",
                target=session.id,
                details={"host": session.host_name, "reason": EndReason.CONTROLLER_RESTART.value},
            )
            log.warning("session %s on %s ended: the controller stopped during it", session.id, session.host_name)
        await self._uploader.recover_unfinished()
        self._uploader_task = asyncio.create_task(
            self._uploader.run(self._upload_interval, self._transcript_stored, recover=False),
            name="transcript uploader",
        )

    async def stop(self) -> None:
        """Hang up every session (briefly waiting for the hosts to confirm) and finish their records."""
        running = [live for live in self._live.values() if live.end is None]
        for live in running:
            live.request_terminate(EndReason.CONTROLLER_RESTART, "the controller is stopping")
        if running:
            waiters = [asyncio.ensure_future(live.finished.wait()) for live in running]
            await asyncio.wait(waiters, timeout=3)
            for waiter in waiters:
                waiter.cancel()
        for live in running:
            if live.end is None:
                self._end(live, SessionEnd(LOST_EXIT_CODE, EndReason.CONTROLLER_RESTART, "the controller is stopping"))
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        for task in self._tasks:
            task.cancel()
        if self._uploader_task is not None:
            self._uploader_task.cancel()
            await asyncio.gather(self._uploader_task, return_exceptions=True)

    # -- operator calls -------------------------------------------------------------------------
    async def open(
        self,
        operator: str,
        request: SessionRequest,
        *,
        authorize: Callable[[Host, str], None] | None = None,
        identity: str = "",
        ssh_rights: Callable[[Host], SshRights] | None = None,
    ) -> LiveSession:
        """Start a session: the host must be online here; returns once the agent started it.

        ``operator`` is the actor recorded (``operator:alice``); ``identity`` the operator's name,
        which an SSH session's user certificate must carry (default: ``operator`` after its kind).
        ``ssh_rights`` decides what an SSH session may do besides logging in (nothing without it).

        Raises:
            InvalidInput: a malformed request.
            NotFound: no such host.
            Unavailable: the host is offline, or did not start the session in time.
            NotFound/PermissionDenied/InvalidInput: as the agent refused (no such user, not root...).
        """
        request = check_request(request)
        host = await self._fleet.get_host(request.host)
        if authorize is not None:
            authorize(host, request.run_as)  # raises PermissionDenied: nothing is started
        assert self._opener is not None, "the broker was not started"
        if host.status != HostStatus.ONLINE:
            raise Unavailable(
                f"host {host.name} is {host.status.value}",
                "a session needs the host's agent connected; see `opsctl hosts show " + host.name + "`",
            )
        name = identity or operator.partition(":")[2] or operator
        ssh = None
        if request.kind is SessionKind.SSH:
            ssh = self._ssh_setup(host, name, ssh_rights(host) if ssh_rights is not None else SshRights())
        session_id = new_session_id()
        record = await self._store.create(
            id=session_id,
            host_id=host.id,
            host_name=host.name,
            operator=operator,
            run_as=request.run_as,
            command=request.command,
            term=request.term,
            cols=request.cols,
            rows=request.rows,
            record_input=request.record_input,
            kind=request.kind.value,
            broker=self.name,
            transcript_key=transcript_key(session_id),
            transcript_state=TranscriptState.RECORDING.value,
            end_reason="",
            end_message="",
            transcript_sha256="",
        )
        live = LiveSession(record, request, self.limits, self._clock)
        self._live[session_id] = live
        # What was attempted (docs/operations.md#audit-review): of the environment only the names.
        details = {
            "host": host.name,
            "host_id": host.id,
            "run_as": request.run_as,
            "command": truncate_utf8(request.command, 4 * KIB),
            "env": sorted(request.env),
            "record_input": request.record_input,
            **({"kind": request.kind.value} if request.kind is not SessionKind.TERMINAL else {}),
        }
        try:
            if not await self._opener.open_session(host.id, session_id, request, ssh):
                raise Unavailable(f"host {host.name} went offline", "retry when `opsctl hosts list` shows it online")
            try:
                await asyncio.wait_for(live.agent_attached.wait(), self.limits.agent_start_timeout)
            except TimeoutError:
                raise Unavailable(
                    f"host {host.name} did not start the session within {_duration(self.limits.agent_start_timeout)}",
                    "check the agent's log on the host; retry",
                ) from None
            if live.refused is not None:
                raise live.refused
        except FleetopsError as exc:
            self._live.pop(session_id, None)
            await self._store.end(
                session_id,
                ended_at=datetime.now(UTC),
                end_reason=EndReason.REFUSED.value,
                end_message=exc.message,
                transcript_state=TranscriptState.NONE.value,
            )
            await self._audit.record(
                actor=operator,
                action="session.start",
                target=session_id,
                outcome="refused",
                details={**details, "error": exc.message},
            )
            live.request_terminate(EndReason.REFUSED, exc.message)
            raise
        await self._audit.record(actor=operator, action="session.start", target=session_id, details=details)
        self._spawn(self._supervise(live), f"session {session_id}")
        return live

    def _ssh_setup(self, host: Host, operator: str, rights: SshRights) -> SshServerSetup:
        """What the host's SSH server needs for this SSH session.

        Raises:
            Unavailable: SSH is not set up here, or the host's agent has no SSH server (too old).
        """
        if self._ssh is None:
            raise Unavailable("this controller has no SSH CA", "check the controller's ca/ directory and its log")
        if not host.ssh_host_key:
            raise Unavailable(
                f"the agent on host {host.name} has no SSH server (it sent no SSH host key)",
                "update the agent on the host to this controller's version",
            )
        try:
            return self._ssh.server_setup(host, operator, rights)
        except InvalidInput as exc:
            raise Unavailable(f"host {host.name}: {exc.message}", "restart the agent on the host") from exc

    async def reattach(
        self, operator: str, session_id: str, *, authorize: Callable[[Host, str], None] | None = None
    ) -> LiveSession:
        """opsctl rejoining its session after a dropped stream.

        Raises:
            NotFound: the session is not live here (it ended and its end was delivered, or never was).
            PermissionDenied: another operator's session.
        """
        live = self._live.get(session_id)
        if live is None:
            raise NotFound(f"session {session_id} is no longer running", "see `opsctl session show " + session_id + "`")
        where = {"host": live.record.host_name, "host_id": live.record.host_id, "run_as": live.record.run_as}
        if live.record.operator != operator:
            await self._audit.record(
                actor=operator,
                action="session.attach",
                target=session_id,
                outcome="denied",
                details={**where, "owner": live.record.operator},
            )
            raise PermissionDenied(f"session {session_id} belongs to another operator")
        if authorize is not None:
            authorize(await self._fleet.get_host(live.record.host_id), live.record.run_as)
        await self._audit.record(actor=operator, action="session.attach", target=session_id, details=where)
        return live

    async def connect_client(self, live: LiveSession) -> Attachment:
        """A new operator stream for ``live`` (any previous one is superseded and waited for)."""
        await self._supersede(live.client)
        attachment = Attachment()
        live.client = attachment
        live.client_detached_at = None
        live.poke()
        return attachment

    def disconnect_client(self, live: LiveSession, attachment: Attachment) -> None:
        attachment.closed.set()
        if live.client is attachment:
            live.client = None
            live.client_detached_at = self._clock()
            live.poke()
            if live.end is None:
                log.info("session %s: the operator's stream dropped; waiting for a resume", live.id)

    async def kill(self, operator: str, session_id: str) -> Session:
        """Hang a session up; returns its record once it ended.

        Raises:
            NotFound: no such session.
            Conflict: it already ended, or another replica brokers it.
        """
        live = self._live.get(session_id)
        if live is None:
            record = await self._store.get(session_id)
            if record.state == SessionState.ENDED:
                raise Conflict(f"session {session_id} already ended ({record.end_reason})")
            raise Conflict(
                f"session {session_id} is brokered by controller {record.broker}",
                "send the kill to that controller",
            )
        live.request_terminate(EndReason.KILLED, f"the session was killed by {operator}")
        await asyncio.wait_for(live.finished.wait(), self.limits.terminate_timeout + 30)
        return await self._store.get(session_id)

    async def get(self, session_id: str) -> Session:
        return await self._store.get(session_id)

    async def brokered_elsewhere(self, session_id: str) -> str | None:
        """The broker name of a running session another replica brokers; None when it runs here,
        is over, or is unknown (the agent's stream is then refused here as before)."""
        if session_id in self._live:
            return None
        try:
            session = await self._store.get(session_id)
        except NotFound:
            return None
        if session.state is SessionState.ENDED or session.broker == self.name:
            return None
        return session.broker

    async def list(self, *, active_only: bool = False, host: str = "", limit: int = 50) -> list[Session]:
        host_id = (await self._fleet.get_host(host)).id if host else ""
        return await self._store.list(active_only=active_only, host_id=host_id, limit=limit)

    async def transcript(self, session_id: str) -> AsyncIterator[bytes]:
        """The transcript's bytes: the stored object, or the spool while it is not uploaded.

        Raises:
            NotFound: no such session, or nothing was recorded.
            Unavailable: the store is unreachable (and the spool no longer has it).
        """
        record = await self._store.get(session_id)
        spool = SpoolPaths(self._spool_dir, session_id).cast
        if record.transcript_state != TranscriptState.STORED and await asyncio.to_thread(spool.exists):
            with open(spool, "rb") as handle:  # noqa: ASYNC230 - chunks are read in a thread
                while chunk := await asyncio.to_thread(handle.read, 1 << 20):
                    yield chunk
            return
        if record.transcript_state == TranscriptState.NONE:
            if record.kind is SessionKind.SSH:
                raise NotFound(
                    f"session {session_id} has no transcript",
                    "it was an SSH connection that never opened a terminal (scp, a command, a forward): "
                    "see its events with opsctl audit list",
                )
            raise NotFound(f"session {session_id} has no transcript", "it never started on the host")
        async for chunk in self._objects.read(record.transcript_key):
            yield chunk

    # -- agent calls ----------------------------------------------------------------------------
    async def agent_attach(self, host_id: str, attach: AgentAttach) -> LiveSession | None:
        """The agent (re)joining a session; ``None`` when it refused to start it.

        Raises:
            NotFound: the session is not live here.
            PermissionDenied: the session belongs to another host (audited).
        """
        live = self._live.get(attach.session_id)
        if live is None or live.end is not None:
            raise NotFound(f"session {attach.session_id} is not running on this controller", "hang it up")
        if live.record.host_id != host_id:
            await self._audit.record(
                actor=f"host:{host_id}",
                action="session.attach",
                target=attach.session_id,
                outcome="denied",
                details={"error": "the session belongs to another host"},
            )
            raise PermissionDenied(f"session {attach.session_id} is not this host's")
        if not live.agent_attached.is_set():
            if attach.refused is not None:
                live.refused = attach.refused
                live.agent_attached.set()
                return None
            try:
                if live.request.kind is SessionKind.TERMINAL:  # SSH's bytes are its own encryption
                    await self._start_recording(live, attach.shell)
            except FleetopsError as exc:
                live.refused = Unavailable(
                    f"the session cannot be recorded: {exc.message}", "check the controller's state directory"
                )
                live.agent_attached.set()
                raise live.refused from exc
            await self._store.activate(live.id)
            live.agent_attached.set()
            log.info("session %s started on %s by %s", live.id, live.record.host_name, live.record.operator)
        else:
            log.info("session %s: the agent resumed its stream", live.id)
        return live

    async def connect_agent(self, live: LiveSession) -> Attachment:
        await self._supersede(live.agent)
        attachment = Attachment()
        live.agent = attachment
        live.agent_detached_at = None
        live.poke()
        return attachment

    def disconnect_agent(self, live: LiveSession, attachment: Attachment) -> None:
        attachment.closed.set()
        if live.agent is attachment:
            live.agent = None
            if live.end is None:
                live.agent_detached_at = self._clock()
                log.info("session %s: the agent's stream dropped; waiting for a resume", live.id)
            live.poke()

    def end_from_agent(self, live: LiveSession, end: SessionEnd) -> None:
        self._end(live, end)

    # -- internals ------------------------------------------------------------------------------
    async def _supersede(self, attachment: Attachment | None) -> None:
        if attachment is not None:
            attachment.superseded.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(attachment.closed.wait(), 5)

    async def agent_activity(self, live: LiveSession, activity: Activity) -> None:
        """What the host reports happened inside an SSH session: its terminals are recorded like
        ``opsctl session`` (from the first pty on), its forwards and transfers are audit events."""
        record = live.record
        if isinstance(activity, ActivityNote):
            details = {"host": record.host_name, "host_id": record.host_id, **activity.details}
            details["reported_by"] = f"host:{record.host_id}"  # the host's word (docs/ssh.md "Records")
            await self._audit.record(actor=record.operator, action=activity.action, target=live.id, details=details)
            return
        if isinstance(activity, TerminalOpened):
            if live.sink is None and live.end is None:
                try:
                    await self._start_recording(
                        live, activity.command or "ssh", cols=activity.cols, rows=activity.rows, term=activity.term
                    )
                except FleetopsError as exc:
                    log.error("session %s: cannot record the SSH terminal: %s", live.id, exc.message)
                    live.request_terminate(
                        EndReason.RECORDING_FAILED, f"the session ended because it could not be recorded: {exc.message}"
                    )
            return
        if live.encoder is None:
            return
        if isinstance(activity, TerminalOutput):
            await live.record_line(live.encoder.output(live.elapsed(), activity.data))
        else:
            await live.record_line(live.encoder.resize(live.elapsed(), activity.cols, activity.rows))

    async def _start_recording(
        self, live: LiveSession, shell: str, *, cols: int = 0, rows: int = 0, term: str = ""
    ) -> None:
        record = live.record
        live.encoder = AsciicastEncoder(
            cols or record.cols,
            rows or record.rows,
            timestamp=record.started_at.timestamp(),
            term=term or record.term,
            shell=shell or None,
            title=f"{record.operator}@{record.host_name}" + (f" as {record.run_as}" if record.run_as else ""),
            record_input=record.record_input,
        )
        sink = TranscriptSink(
            self._objects, record.transcript_key, self._spool_dir, session_id=record.id, part_size=self._part_size
        )
        await sink.start()
        live.sink = sink
        live.recording = True
        live.started = self._clock()
        await live.record_line(live.encoder.header())

    def _end(self, live: LiveSession, end: SessionEnd) -> None:
        """The session is over: tell the operator now, then finish the record in the background."""
        if live.end is not None:
            return
        live.end = end
        live.out_window.push_nowait(end, 0)
        live.output_ack.set(live.out_cursor.received)
        live.poke()
        self._spawn(self._finish(live), f"finish session {live.id}")

    async def _finish(self, live: LiveSession) -> None:
        end = live.end
        assert end is not None
        record = live.record
        try:
            await self._store.end(
                live.id,
                ended_at=datetime.now(UTC),
                end_reason=str(end.reason),
                end_message=end.message,
                exit_code=end.exit_code,
            )
            info: TranscriptInfo | None = None
            if live.sink is not None:
                try:
                    info = await live.finish_recording()
                except FleetopsError as exc:
                    log.error("session %s: finishing the transcript failed: %s", live.id, exc)
            transcript = {}
            if info is not None:
                state = TranscriptState.STORED if info.stored else TranscriptState.SPOOLED
                await self._store.update(
                    live.id, transcript_state=state.value, transcript_sha256=info.sha256, transcript_size=info.size
                )
                transcript = {"transcript": info.key, "sha256": info.sha256, "size": info.size, "stored": info.stored}
            elif live.sink is None:
                await self._store.update(live.id, transcript_state=TranscriptState.NONE.value)
            await self._audit.record(
                actor=record.operator,
                action="session.end",
                target=live.id,
                details={
                    "host": record.host_name,
                    "reason": str(end.reason),
                    "exit_code": end.exit_code,
                    **({"message": end.message} if end.message else {}),
                    **transcript,
                },
            )
            log.info("session %s on %s ended: %s (exit code %d)", live.id, record.host_name, end.reason, end.exit_code)
        finally:
            live.finished.set()

    async def _supervise(self, live: LiveSession) -> None:
        """Enforce the session's clock: idle timeout, maximum duration, resume windows."""
        limits = self.limits
        while True:
            deadline = live.next_deadline()
            if live.end is not None and (deadline is None or live.delivered.is_set()):
                break
            live.changed.clear()
            if deadline is not None:
                remaining = deadline[0] - self._clock()
                if remaining > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(live.changed.wait(), remaining)
                    continue
                what = deadline[1]
                if what == "idle":
                    live.request_terminate(
                        EndReason.IDLE_TIMEOUT,
                        f"the session ended after {_duration(limits.idle_timeout)} without input (idle timeout: "
                        "the controller's --session-idle-timeout)",
                    )
                elif what == "max":
                    live.request_terminate(
                        EndReason.MAX_DURATION,
                        f"the session reached its maximum duration of {_duration(limits.max_duration)} (the "
                        "controller's --session-max-duration)",
                    )
                elif what == "client":
                    live.request_terminate(
                        EndReason.CLIENT_LOST,
                        f"the operator's connection did not come back within {_duration(limits.resume)}",
                    )
                elif what == "agent":
                    message = f"the host's connection did not come back within {_duration(limits.resume)}"
                    self._end(live, SessionEnd(LOST_EXIT_CODE, EndReason.AGENT_LOST, message))
                elif what == "terminate":
                    reason, message = live.terminate_request or (EndReason.AGENT_LOST, "")
                    message = f"{message}; the host did not confirm the hang-up".lstrip("; ")
                    self._end(live, SessionEnd(LOST_EXIT_CODE, reason, message))
                elif what == "forget":
                    break
                continue
            await live.changed.wait()
        await live.finished.wait()
        self._live.pop(live.id, None)

    async def _transcript_stored(self, info: TranscriptInfo) -> None:
        await self._store.update(
            info.session_id,
            transcript_state=TranscriptState.STORED.value,
            transcript_sha256=info.sha256,
            transcript_size=info.size,
        )
        await self._audit.record(
            actor="controller",
            action="session.transcript",
            target=info.session_id,
            details={"transcript": info.key, "sha256": info.sha256, "size": info.size, "recovered": info.recovered},
        )

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
