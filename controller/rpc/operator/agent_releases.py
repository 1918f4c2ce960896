"""OperatorService calls for agent releases (controller/releases): list them, roll one out."""

from __future__ import annotations

from typing import Any

from fleetops.common.errors import Unavailable
from fleetops.common.rates import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_ERRORS
from fleetops.controller.releases.service import (
    DEFAULT_RECONNECT_TIMEOUT,
    DEFAULT_UPDATE_TIMEOUT,
    AgentReleases,
    StoredRelease,
    UpdateOptions,
)
from fleetops.controller.rpc import convert
from fleetops.controller.rpc.operator.base import OperatorAdapter, operator_call
from fleetops.controller.rpc.peer import Peer
from fleetops.v1 import operator_pb2


def release_to_proto(release: StoredRelease) -> operator_pb2.AgentRelease:
    m = release.manifest
    message = operator_pb2.AgentRelease(
        file_name=m.file_name, version=m.version, kind=m.kind, arch=m.arch, sha256=m.sha256, size=m.size,
        key_id=m.key_id,
    )  # fmt: skip
    message.added_at.FromDatetime(release.added_at)
    return message


class AgentReleaseCalls(OperatorAdapter):
    """Agent releases and updates."""

    #: Set by the composition root.
    agent_releases: AgentReleases | None = None

    def _releases(self) -> AgentReleases:
        if self.agent_releases is None:
            raise Unavailable("this controller has no agent releases", "it starts them with its object store")
        return self.agent_releases

    @operator_call("agent.release.list")
    async def ListAgentReleases(self, request: operator_pb2.ListAgentReleasesRequest, peer: Peer) -> tuple[Any, str]:
        releases = self._releases()
        listed = await releases.list_releases()
        return operator_pb2.ListAgentReleasesResponse(
            releases=[release_to_proto(r) for r in listed], key_id=releases.key_id
        ), ""

    @operator_call("agent.update")
    async def UpdateAgents(self, request: operator_pb2.UpdateAgentsRequest, peer: Peer) -> tuple[Any, str]:
        options = UpdateOptions(
            version=request.version,
            max_concurrency=request.max_concurrency or DEFAULT_MAX_CONCURRENCY,
            max_errors=request.max_errors or DEFAULT_MAX_ERRORS,
            timeout_seconds=request.timeout_seconds or DEFAULT_UPDATE_TIMEOUT,
            reconnect_timeout_seconds=request.reconnect_timeout_seconds or DEFAULT_RECONNECT_TIMEOUT,
            comment=request.comment,
        )
        command, hosts = await self._releases().update(
            peer.actor,
            convert.target_from_proto(request.target),
            options,
            authorize=lambda hosts: peer.access.require(hosts),
        )
        response = operator_pb2.RunCommandResponse(
            command=convert.command_to_proto(command), host_names=[h.name for h in hosts]
        )
        return response, command.id
