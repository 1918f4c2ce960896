"""OperatorService calls for patching (controller/patching): scan, install, compliance, baselines, groups."""

from __future__ import annotations

from typing import Any

from fleetops.common.rates import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_ERRORS
from fleetops.controller.patching.models import PatchGroup
from fleetops.controller.patching.service import DEFAULT_PATCH_TIMEOUT, PatchOptions
from fleetops.controller.rpc import convert
from fleetops.controller.rpc.operator.base import OperatorAdapter, operator_call
from fleetops.controller.rpc.peer import Peer
from fleetops.v1 import operator_pb2


class PatchCalls(OperatorAdapter):
    """Patch management: scan and install runs, compliance, baselines and patch groups."""

    def _patch_options(self, request: operator_pb2.PatchOperationRequest) -> PatchOptions:
        return PatchOptions(
            max_concurrency=request.max_concurrency or DEFAULT_MAX_CONCURRENCY,
            max_errors=request.max_errors or DEFAULT_MAX_ERRORS,
            timeout_seconds=request.timeout_seconds or DEFAULT_PATCH_TIMEOUT,
            refresh=not request.no_refresh,
            reboot=request.reboot or "if-needed",
            comment=request.comment,
        )

    @operator_call("patch.scan")
    async def ScanPatches(self, request: operator_pb2.PatchOperationRequest, peer: Peer) -> tuple[Any, str]:
        target = convert.target_from_proto(request.target)
        command, hosts = await self._patching.scan(
            peer.actor, target, self._patch_options(request), authorize=lambda hosts: peer.access.require(hosts)
        )
        response = operator_pb2.RunCommandResponse(
            command=convert.command_to_proto(command), host_names=[h.name for h in hosts]
        )
        return response, command.id

    @operator_call("patch.install")
    async def InstallPatches(self, request: operator_pb2.PatchOperationRequest, peer: Peer) -> tuple[Any, str]:
        target = convert.target_from_proto(request.target)
        command, hosts = await self._patching.install(
            peer.actor, target, self._patch_options(request), authorize=lambda hosts: peer.access.require(hosts)
        )
        response = operator_pb2.RunCommandResponse(
            command=convert.command_to_proto(command), host_names=[h.name for h in hosts]
        )
        return response, command.id

    @operator_call("patch.compliance")
    async def GetPatchCompliance(self, request: operator_pb2.PatchComplianceRequest, peer: Peer) -> tuple[Any, str]:
        if request.host:
            latest, findings, history = await self._patching.host_compliance(request.host)
            peer.access.require([latest.host])
            reports = [latest]
        else:
            target = convert.target_from_proto(request.target)
            reports = await self._patching.compliance(None if target.empty else target)
            allowed = {h.id for h in peer.access.visible([r.host for r in reports])}
            reports = [r for r in reports if r.host.id in allowed]
            findings, history = [], []
        return convert.patch_compliance_to_proto(reports, findings, history, one_host=bool(request.host)), request.host

    @operator_call("patch.baseline.create")
    async def CreatePatchBaseline(self, request: operator_pb2.PatchBaseline, peer: Peer) -> tuple[Any, str]:
        stored = await self._patching.create_baseline(peer.actor, convert.baseline_document(request))
        return convert.baseline_to_proto(stored), stored.baseline.name

    @operator_call("patch.baseline.update")
    async def UpdatePatchBaseline(self, request: operator_pb2.PatchBaseline, peer: Peer) -> tuple[Any, str]:
        stored = await self._patching.update_baseline(peer.actor, request.name, convert.baseline_document(request))
        return convert.baseline_to_proto(stored), stored.baseline.name

    @operator_call("patch.baseline.list")
    async def ListPatchBaselines(self, request: operator_pb2.ListPatchBaselinesRequest, peer: Peer) -> tuple[Any, str]:
        baselines = await self._patching.baselines()
        return operator_pb2.ListPatchBaselinesResponse(baselines=[convert.baseline_to_proto(b) for b in baselines]), ""

    @operator_call("patch.baseline.show")
    async def GetPatchBaseline(self, request: operator_pb2.GetPatchBaselineRequest, peer: Peer) -> tuple[Any, str]:
        return convert.baseline_to_proto(await self._patching.baseline(request.name)), request.name

    @operator_call("patch.baseline.delete")
    async def DeletePatchBaseline(self, request: operator_pb2.GetPatchBaselineRequest, peer: Peer) -> tuple[Any, str]:
        await self._patching.delete_baseline(request.name)
        return operator_pb2.DeletePatchBaselineResponse(), request.name

    @operator_call("patch.group.assign")
    async def AssignPatchBaseline(self, request: operator_pb2.PatchGroup, peer: Peer) -> tuple[Any, str]:
        group = await self._patching.assign(
            PatchGroup(request.name, request.selector, request.baseline, request.priority or 100)
        )
        return convert.patch_group_to_proto(group), group.name

    @operator_call("patch.group.list")
    async def ListPatchGroups(self, request: operator_pb2.ListPatchGroupsRequest, peer: Peer) -> tuple[Any, str]:
        groups = await self._patching.groups()
        return operator_pb2.ListPatchGroupsResponse(groups=[convert.patch_group_to_proto(g) for g in groups]), ""

    @operator_call("patch.group.delete")
    async def DeletePatchGroup(self, request: operator_pb2.DeletePatchGroupRequest, peer: Peer) -> tuple[Any, str]:
        await self._patching.delete_group(request.name)
        return operator_pb2.DeletePatchGroupResponse(), request.name
