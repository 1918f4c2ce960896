"""OperatorService calls for associations (controller/associations).

Creating one needs ``association.manage`` (decided by the decorator) and the right to run its
document on every host its target could ever match, as the caller (its author): that decision
is added to the call's audit event, and a refusal is the call's answer. Reads need ``hosts.read``
somewhere; a show lists only the hosts the caller may read.
"""

from __future__ import annotations

from typing import Any

from fleetops.controller.associations.models import Association, AssociationRun, HostCompliance
from fleetops.controller.rpc import convert
from fleetops.controller.rpc.operator.base import OperatorAdapter, operator_call
from fleetops.controller.rpc.peer import Peer
from fleetops.v1 import operator_pb2

#: Runs a history shows when the request gives no limit.
DEFAULT_HISTORY = 50


def association_to_proto(a: Association) -> operator_pb2.Association:
    return operator_pb2.Association(
        id=a.id,
        name=a.name,
        document=a.document,
        parameters=a.parameters,
        target=operator_pb2.Target(selector=a.target.selector, hosts=list(a.target.hosts), all=a.target.all),
        schedule=a.schedule,
        max_concurrency=a.max_concurrency,
        max_errors=a.max_errors,
        author=a.author,
        created_at=convert.timestamp(a.created_at),
        next_run=convert.timestamp(a.next_run_at),
        last_run=convert.timestamp(a.last_run_at),
        check_interval_seconds=a.check_interval_seconds,
        status=a.status,
        counts=a.counts,
    )


def host_status_to_proto(h: HostCompliance) -> operator_pb2.AssociationHostStatus:
    return operator_pb2.AssociationHostStatus(
        host_id=h.host_id,
        host_name=h.host_name,
        status=h.status.value,
        last_applied_at=convert.timestamp(h.last_applied_at),
        last_command_id=h.last_command_id,
        detail=h.detail,
        last_check_at=convert.timestamp(h.last_check_at),
    )


def run_to_proto(r: AssociationRun) -> operator_pb2.AssociationRun:
    return operator_pb2.AssociationRun(
        association_id=r.association_id,
        command_id=r.command_id,
        trigger=r.trigger.value,
        started_at=convert.timestamp(r.started_at),
        hosts=r.hosts,
        status=r.status,
    )


class AssociationCalls(OperatorAdapter):
    """Associations: create, list, show with compliance, history, apply now, delete."""

    @operator_call("association.create")
    async def CreateAssociation(self, request: operator_pb2.Association, peer: Peer) -> tuple[Any, str]:
        new = await self._associations.prepare(
            peer.actor,
            name=request.name,
            document=request.document,
            parameters=dict(request.parameters),
            target=convert.target_from_proto(request.target),
            schedule=request.schedule,
            max_concurrency=request.max_concurrency,
            max_errors=request.max_errors,
            check_interval_seconds=request.check_interval_seconds,
        )
        a = new.association
        peer.access.details.update(
            document=new.info.reference,
            parameters=sorted(a.parameters),  # names only: values may be secrets
            target=a.target.describe(),
            schedule=a.schedule,
        )
        decision = self._associations.creator_decision(peer.access.user.name, peer.access.roles, new)
        peer.access.decisions.append(decision)
        if not decision:
            raise decision.to_error()
        created = await self._associations.create(new)
        return association_to_proto(created), created.id

    @operator_call("association.list")
    async def ListAssociations(self, request: operator_pb2.ListAssociationsRequest, peer: Peer) -> tuple[Any, str]:
        found = await self._associations.list()
        return operator_pb2.ListAssociationsResponse(associations=[association_to_proto(a) for a in found]), ""

    @operator_call("association.show")
    async def GetAssociation(self, request: operator_pb2.GetAssociationRequest, peer: Peer) -> tuple[Any, str]:
        association, rows = await self._associations.detail(request.id)
        visible = {h.id for h in peer.access.visible(await self._hosts(r.host_id for r in rows), "hosts.read")}
        detail = operator_pb2.AssociationDetail(
            association=association_to_proto(association),
            hosts=[host_status_to_proto(r) for r in rows if r.host_id in visible],
        )
        return detail, association.id

    @operator_call("association.history")
    async def AssociationHistory(self, request: operator_pb2.GetAssociationRequest, peer: Peer) -> tuple[Any, str]:
        association, runs = await self._associations.history(request.id, request.limit or DEFAULT_HISTORY)
        return operator_pb2.AssociationHistoryResponse(runs=[run_to_proto(r) for r in runs]), association.id

    @operator_call("association.apply")
    async def ApplyAssociation(self, request: operator_pb2.GetAssociationRequest, peer: Peer) -> tuple[Any, str]:
        runs = await self._associations.apply_now(request.id)
        peer.access.details["commands"] = [r.command_id for r in runs]
        peer.access.details["hosts"] = sum(r.hosts for r in runs)
        return run_to_proto(runs[0]), runs[0].association_id

    @operator_call("association.delete")
    async def DeleteAssociation(self, request: operator_pb2.GetAssociationRequest, peer: Peer) -> tuple[Any, str]:
        association = await self._associations.delete(request.id)
        return operator_pb2.DeleteAssociationResponse(), association.id
