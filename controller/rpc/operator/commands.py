"""OperatorService calls for commands (controller/commands): run, list, show, cancel, progress and output."""

from __future__ import annotations

from typing import Any

from fleetops.common.rates import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_ERRORS
from fleetops.common.states import CommandStatus
from fleetops.controller.commands.models import DEFAULT_DELIVERY_TIMEOUT_SECONDS, DEFAULT_TIMEOUT_SECONDS, CommandSpec
from fleetops.controller.rpc import command_output, convert
from fleetops.controller.rpc.operator.base import OperatorAdapter, operator_call, operator_stream
from fleetops.controller.rpc.peer import Peer
from fleetops.v1 import operator_pb2


class CommandCalls(OperatorAdapter):
    """Commands: run, list, show, cancel, and their progress and output as streams."""

    async def _require_command_hosts(self, peer: Peer, command_id: str) -> None:
        """command.run on every host of the command (no login: reading or cancelling, not running)."""
        if peer.access.require_everywhere():
            await self._commands.command(command_id)  # NotFound for an unknown id, as before
            return
        hosts_of = await self._commands.hosts_of([command_id])
        if command_id not in hosts_of:
            await self._commands.command(command_id)
        peer.access.require(await self._hosts(hosts_of.get(command_id, ())))

    @operator_call("command.run")
    async def RunCommand(self, request: operator_pb2.RunCommandRequest, peer: Peer) -> tuple[Any, str]:
        spec = CommandSpec(
            argv=tuple(request.argv),
            script=request.script or None,
            cwd=request.cwd,
            env=dict(request.env),
            run_as=request.run_as,
            max_concurrency=request.max_concurrency or DEFAULT_MAX_CONCURRENCY,
            max_errors=request.max_errors or DEFAULT_MAX_ERRORS,
            timeout_seconds=request.timeout_seconds or DEFAULT_TIMEOUT_SECONDS,
            delivery_timeout_seconds=request.delivery_timeout_seconds or DEFAULT_DELIVERY_TIMEOUT_SECONDS,
            comment=request.comment,
        )
        target = convert.target_from_proto(request.target)
        command, hosts = await self._commands.create(
            peer.actor, target, spec, authorize=lambda hosts: peer.access.require(hosts, request.run_as)
        )
        return (
            operator_pb2.RunCommandResponse(
                command=convert.command_to_proto(command), host_names=[h.name for h in hosts]
            ),
            command.id,
        )

    @operator_call("command.list")
    async def ListCommands(self, request: operator_pb2.ListCommandsRequest, peer: Peer) -> tuple[Any, str]:
        commands = await self._commands.list(request.limit or 50)
        hosts_of = await self._commands.hosts_of([c.id for c in commands])
        allowed = {h.id for h in peer.access.visible(await self._hosts(i for ids in hosts_of.values() for i in ids))}
        commands = [c for c in commands if set(hosts_of.get(c.id, ())) <= allowed]
        return operator_pb2.ListCommandsResponse(commands=[convert.command_to_proto(c) for c in commands]), ""

    @operator_call("command.show")
    async def GetCommand(self, request: operator_pb2.GetCommandRequest, peer: Peer) -> tuple[Any, str]:
        # Live: a running invocation's bytes (and tails) so far, and why an unfinished one waits.
        command, invocations = await self._commands.view(request.id, tails=request.include_output)
        await self._require_command_hosts(peer, request.id)
        return (
            operator_pb2.CommandDetail(
                command=convert.command_to_proto(command),
                invocations=[convert.invocation_to_proto(i, request.include_output) for i in invocations],
                done=command.status is not CommandStatus.IN_PROGRESS,
            ),
            command.id,
        )

    @operator_call("command.cancel")
    async def CancelCommand(self, request: operator_pb2.GetCommandRequest, peer: Peer) -> tuple[Any, str]:
        await self._require_command_hosts(peer, request.id)
        command = await self._commands.cancel(request.id)
        return convert.command_to_proto(command), command.id

    @operator_stream("command.watch")
    async def WatchCommand(self, request: operator_pb2.GetCommandRequest, peer: Peer) -> Any:
        """Progress until the end: counts, and the invocations that changed (controller/rpc/command_output.py)."""
        await self._require_command_hosts(peer, request.id)
        async for detail in command_output.watch_command(self._commands, request.id, request.include_output):
            yield detail

    @operator_stream("command.output")
    async def GetInvocationOutput(self, request: operator_pb2.GetInvocationOutputRequest, peer: Peer) -> Any:
        """One stream of one invocation: all of it once final; while it runs, what arrived so far
        and, with follow, the rest as it comes."""
        _, invocations = await self._commands.view(request.command_id, tails=False)
        invocation = command_output.find_invocation(invocations, request.command_id, request.host)
        peer.access.require(await self._hosts([invocation.host_id]))
        pieces = self._commands.read_live_output(invocation, stderr=request.stderr, follow=request.follow)
        async for piece in pieces:
            yield command_output.output_data(piece)

    @operator_stream("command.output")
    async def WatchOutput(self, request: operator_pb2.WatchOutputRequest, peer: Peer) -> Any:
        """Output of the command's hosts as it arrives, and each host's result as it ends."""
        _, invocations = await self._commands.view(request.command_id, tails=False)
        await self._require_command_hosts(peer, request.command_id)
        chosen = command_output.select_hosts(invocations, request.command_id, list(request.hosts))
        async for event in self._commands.watch_output(request.command_id, chosen):
            yield command_output.output_event(event)
