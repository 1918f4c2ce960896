"""OperatorService calls for the fleet (controller/fleet): who am I, hosts, their tags, deregistration."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fleetops.controller.authz.decision import MAX_AUDIT_HOSTS
from fleetops.controller.fleet.models import Target
from fleetops.controller.fleet.service import TagChange
from fleetops.controller.rpc import convert
from fleetops.controller.rpc.operator.associations import host_status_to_proto
from fleetops.controller.rpc.operator.base import OperatorAdapter, operator_call
from fleetops.controller.rpc.peer import Peer
from fleetops.v1 import operator_pb2


class HostCalls(OperatorAdapter):
    """The fleet: who am I, hosts, their tags, deregistration."""

    @operator_call("whoami")
    async def WhoAmI(self, request: operator_pb2.WhoAmIRequest, peer: Peer) -> tuple[Any, str]:
        return (
            operator_pb2.WhoAmIResponse(
                operator=peer.identity.name, certificate_expires_at=convert.timestamp(peer.expires_at)
            ),
            peer.identity.name,
        )

    @operator_call("hosts.list")
    async def ListHosts(self, request: operator_pb2.ListHostsRequest, peer: Peer) -> tuple[Any, str]:
        target = convert.target_from_proto(request.target)
        hosts = peer.access.visible(
            await self._fleet.list_hosts(target, include_deregistered=request.include_deregistered)
        )
        return operator_pb2.ListHostsResponse(hosts=[convert.host_to_proto(h) for h in hosts]), target.describe()

    @operator_call("hosts.show")
    async def GetHost(self, request: operator_pb2.GetHostRequest, peer: Peer) -> tuple[Any, str]:
        host = await self._fleet.get_host(request.host)
        peer.access.require([host])
        message = convert.host_to_proto(host)
        for association, compliance in await self._associations.store.of_host(host.id):
            message.associations.append(
                operator_pb2.HostAssociation(
                    association_id=association.id,
                    name=association.name,
                    document=association.document,
                    status=host_status_to_proto(replace(compliance, host_name=host.name)),
                )
            )
        return message, host.id

    def _tag_changes(self, peer: Peer, set_tags: dict[str, str], remove: list[str], dry_run: bool) -> Any:
        """The authorize callback of a tag change: audit every host's tags before and after, then decide.

        Someone who may tag no host at all is refused here, before any host is looked up.
        """
        peer.access.require()

        def authorize(changes: list[TagChange]) -> None:
            changed = [c for c in changes if c.changed]
            peer.access.details["tags"] = {
                "set": set_tags,
                "remove": remove,
                "dry_run": dry_run,
                "hosts": len(changes),
                "changed_count": len(changed),
                "changed": [
                    {"host": c.before.name, "id": c.before.id, "before": c.before.tags, "after": c.after.tags}
                    for c in changed[:MAX_AUDIT_HOSTS]
                ],
            }
            peer.access.require_retag([(c.before, c.after.tags) for c in changes])

        return authorize

    @operator_call("hosts.tag")
    async def TagHost(self, request: operator_pb2.TagHostRequest, peer: Peer) -> tuple[Any, str]:
        set_tags, remove = dict(request.set), list(request.remove)
        (change,) = await self._fleet.tag_hosts(
            Target(hosts=(request.host,)), set_tags, remove, authorize=self._tag_changes(peer, set_tags, remove, False)
        )
        return convert.host_to_proto(change.after), change.after.id

    @operator_call("hosts.tag")
    async def TagHosts(self, request: operator_pb2.TagHostsRequest, peer: Peer) -> tuple[Any, str]:
        target = convert.target_from_proto(request.target)
        set_tags, remove, dry_run = dict(request.set), list(request.remove), request.dry_run
        changes = await self._fleet.tag_hosts(
            target, set_tags, remove, dry_run=dry_run, authorize=self._tag_changes(peer, set_tags, remove, dry_run)
        )
        return convert.tag_changes_to_proto(changes, dry_run), target.describe()

    @operator_call("hosts.deregister")
    async def DeregisterHost(self, request: operator_pb2.DeregisterHostRequest, peer: Peer) -> tuple[Any, str]:
        host = await self._fleet.deregister_host(request.host, peer.actor)
        return convert.host_to_proto(host), host.id
