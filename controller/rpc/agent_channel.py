"""The run-command room's AgentChannel over the agents' control streams."""

from __future__ import annotations

import logging
from typing import Protocol

import grpc

from fleetops.common.errors import InvalidInput
from fleetops.common.limits import AGENT_RECEIVE_BYTES
from fleetops.controller.commands.models import RunInstruction
from fleetops.controller.fleet.presence import PresenceTracker
from fleetops.controller.sessions.models import SessionRequest, SshServerSetup
from fleetops.v1 import agent_pb2, session_pb2

log = logging.getLogger(__name__)


def run_message(i: RunInstruction) -> agent_pb2.ControllerMessage:
    return agent_pb2.ControllerMessage(
        run=agent_pb2.RunInvocation(
            invocation_id=i.invocation_id,
            command_id=i.command_id,
            argv=list(i.argv),
            script=i.script or b"",
            cwd=i.cwd,
            env=i.env,
            run_as=i.run_as,
            timeout_seconds=i.timeout_seconds,
            kill_grace_seconds=i.kill_grace_seconds,
            stdout_offset=i.stdout_offset,
            stderr_offset=i.stderr_offset,
            agent_task=i.agent_task,
            task_input=i.task_input,
        )
    )


class Router(Protocol):
    """Where a host held by another replica is reached (the replica registry plus peer clients)."""

    def route(self, host_id: str) -> str | None: ...

    async def deliver(self, replica_id: str, host_id: str, message: agent_pb2.ControllerMessage) -> bool: ...


class GrpcAgentChannel:
    """The control streams of hosts connected here and, through ``router``, of hosts held by other replicas."""

    def __init__(self, presence: PresenceTracker, router: Router | None = None) -> None:
        self._presence = presence
        self._router = router

    def is_connected(self, host_id: str) -> bool:
        if self._presence.link(host_id) is not None:
            return True
        return self._router is not None and self._router.route(host_id) is not None

    async def _send(self, host_id: str, message: agent_pb2.ControllerMessage) -> bool:
        link = self._presence.link(host_id)
        if link is None:
            replica_id = self._router.route(host_id) if self._router is not None else None
            if replica_id is None or self._router is None:
                return False
            return await self._router.deliver(replica_id, host_id, message)
        try:
            await link.send(message)  # type: ignore[attr-defined]  # GrpcAgentLink has send(); fleet's AgentLink need not
            return True
        except (grpc.RpcError, RuntimeError, ConnectionError) as exc:
            # The stream is going away; the host gets the message again when it reconnects.
            log.info("could not send to host %s: %s", host_id, exc)
            return False

    async def run(self, host_id: str, instruction: RunInstruction) -> bool:
        """Send a RunInvocation; False when the host has no link here.

        Raises:
            InvalidInput: the message cannot be built or is larger than an agent receives (a command
                stored before the limits of common/limits.py); it must end, never be sent.
        """
        try:
            message = run_message(instruction)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"the invocation does not fit the wire: {exc}") from exc
        size = message.ByteSize()
        if size > AGENT_RECEIVE_BYTES:
            raise InvalidInput(
                f"the invocation is {size} bytes, the limit an agent receives is {AGENT_RECEIVE_BYTES} bytes",
                "see the limits in docs/run-command.md",
            )
        return await self._send(host_id, message)

    async def cancel(self, host_id: str, invocation_id: str) -> bool:
        return await self._send(
            host_id, agent_pb2.ControllerMessage(cancel=agent_pb2.CancelInvocation(invocation_id=invocation_id))
        )

    async def ack_result(self, host_id: str, invocation_id: str) -> bool:
        return await self._send(
            host_id, agent_pb2.ControllerMessage(result_ack=agent_pb2.ResultAck(invocation_id=invocation_id))
        )

    async def open_session(
        self, host_id: str, session_id: str, request: SessionRequest, ssh: SshServerSetup | None = None
    ) -> bool:
        open_session = agent_pb2.OpenSession(
            session_id=session_id,
            run_as=request.run_as,
            command=request.command,
            size=session_pb2.TerminalSize(cols=request.cols, rows=request.rows),
            term=request.term,
            env=request.env,
        )
        if ssh is not None:
            open_session.ssh.CopyFrom(
                agent_pb2.SshServerSetup(
                    host_certificate=ssh.host_certificate,
                    user_ca_keys=ssh.user_ca_keys,
                    operator=ssh.operator,
                    forward_to=ssh.rights.forward_to,
                    forward_denied=ssh.rights.forward_denied,
                    forward_remote=ssh.rights.forward_remote,
                    agent_forwarding=ssh.rights.agent_forwarding,
                    file_transfer=ssh.rights.file_transfer,
                )
            )
        return await self._send(host_id, agent_pb2.ControllerMessage(open_session=open_session))
