"""OperatorService calls for commands (controller/commands): run, list, show, cancel, progress and output."""

from __future__ import annotations

from typing import Any

from fleetops.common.errors import InvalidInput, NotFound
from fleetops.common.rates import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_ERRORS
from fleetops.common.states import CommandStatus
from fleetops.controller.commands.models import (
    DEFAULT_DELIVERY_TIMEOUT_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    Command,
    CommandSpec,
)
from fleetops.controller.documents.runs import RunOptions, start_document_run
from fleetops.controller.documents.service import parameters_shown
from fleetops.controller.fleet.models import Host
from fleetops.controller.rpc import command_output, convert
from fleetops.controller.rpc.operator.base import OperatorAdapter, operator_call, operator_stream
from fleetops.controller.rpc.peer import Peer
from fleetops.v1 import operator_pb2


class CommandCalls(OperatorAdapter):
    """Commands: run, list, show, cancel, and their progress and output as streams."""

    async def _require_command_hosts(self, peer: Peer, command_id: str) -> None:
        """command.run on every host of the command (no login: reading or cancelling, not running);
        for a run of a document, document.run for it does too."""
        if peer.access.require_everywhere():
            await self._commands.command(command_id)  # NotFound for an unknown id, as before
            return
        command = await self._commands.command(command_id)
        hosts = await self._hosts((await self._commands.hosts_of([command_id])).get(command_id, ()))
        if command.spec.document:
            document = command.spec.document.partition(":")[0]
            peer.access.require_one_of(hosts, [("command.run", None, None), ("document.run", None, document)])
        else:
            peer.access.require(hosts)

    @operator_call("command.run")
    async def RunCommand(self, request: operator_pb2.RunCommandRequest, peer: Peer) -> tuple[Any, str]:
        if request.document:
            return await self._run_document(request, peer)
        if request.parameters:
            raise InvalidInput("parameters are for documents", "add --doc NAME, or pass values with --env NAME=VALUE")
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

    async def _run_document(self, request: operator_pb2.RunCommandRequest, peer: Peer) -> tuple[Any, str]:
        """``opsctl run --doc NAME[:VERSION] --param k=v``: parameters checked before anything is
        stored; allowed by the action the document performs on the hosts, or by ``document.run``
        for it (docs/automation.md#who-may-run-a-document)."""
        if request.argv or request.script:
            raise InvalidInput(
                "give a document or a command, not both", "opsctl run --doc NAME --param K=V --target SEL"
            )
        info, doc = await self._documents.resolve(request.document)
        if doc.kind == "runbook":
            raise InvalidInput(
                f"document {info.name!r} is a runbook", f"start it with opsctl automation start {info.name}"
            )
        values = doc.resolve(dict(request.parameters))
        shown = parameters_shown(doc, values)
        peer.access.details["document"] = info.reference
        peer.access.details["parameters"] = sorted(shown)  # names only: values may be secrets
        target = convert.target_from_proto(request.target)

        def authorize(hosts: list[Host], action: str, login: str | None) -> None:
            peer.access.require_one_of(hosts, [(action, login, None), ("document.run", login or "", info.name)])

        options = RunOptions(
            max_concurrency=request.max_concurrency,
            max_errors=request.max_errors,
            timeout_seconds=request.timeout_seconds,
            delivery_timeout_seconds=request.delivery_timeout_seconds,
            run_as=request.run_as,
            cwd=request.cwd,
            env=dict(request.env),
            comment=request.comment,
        )
        command, hosts = await start_document_run(
            self._commands, self._patching, peer.actor, target, info, doc, values, options, authorize=authorize
        )
        response = operator_pb2.RunCommandResponse(
            command=convert.command_to_proto(command), host_names=[h.name for h in hosts]
        )
        return response, command.id

    @operator_call("command.list")
    async def ListCommands(self, request: operator_pb2.ListCommandsRequest, peer: Peer) -> tuple[Any, str]:
        host_id = ""
        if request.host:
            # A host one may not see is answered as one that does not exist: the same words.
            unseen = NotFound(f"no such host: {request.host[:255]}", "opsctl hosts list shows the hosts you may see")
            try:
                host = await self._fleet.get_host(request.host)
            except NotFound:
                raise unseen from None
            if not peer.access.visible([host], "hosts.read"):
                raise unseen  # (one it may read lists only the commands the caller may see, as always)
            host_id = host.id
        commands = await self._commands.list(request.limit or 50, host_id)
        hosts_of = await self._commands.hosts_of([c.id for c in commands])
        hosts = await self._hosts(i for ids in hosts_of.values() for i in ids)
        allowed = {h.id for h in peer.access.visible(hosts)}
        by_document: dict[str, set[str]] = {}  # document name -> hosts where document.run allows it

        def shown(command: Command) -> bool:
            ids = set(hosts_of.get(command.id, ()))
            if ids <= allowed:
                return True
            if not command.spec.document:
                return False
            name = command.spec.document.partition(":")[0]
            if name not in by_document:
                by_document[name] = {h.id for h in peer.access.visible(hosts, "document.run", document=name)}
            return ids <= by_document[name]

        commands = [c for c in commands if shown(c)]
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
