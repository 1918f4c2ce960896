"""OperatorService calls for configuration as code (controller/config; docs/apply.md).

Neither call has an action of its own: applying decides every object as its own call would
(``admin`` for a role, ``window.manage`` and the tasks' rights for a window...), and exporting
needs each exported kind's read action. All those decisions go into the call's audit event; each
change applied is also audited under its own call's action.
"""

from __future__ import annotations

import json
from typing import Any

from fleetops.common.errors import InternalError, InvalidInput
from fleetops.controller.config import Change, ConfigObject, ConfigService
from fleetops.controller.config.service import spec_json
from fleetops.controller.rpc.operator.base import OperatorAdapter, operator_call
from fleetops.controller.rpc.peer import Peer
from fleetops.v1 import operator_pb2

MAX_SPEC_BYTES = 512 * 1024


def _value(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False)


def change_to_proto(c: Change) -> operator_pb2.ConfigChange:
    return operator_pb2.ConfigChange(
        kind=c.kind,
        name=c.name,
        action=c.action,
        origin=c.origin,
        note=c.note,
        fields=[
            operator_pb2.ConfigFieldChange(path=f.path, before_json=_value(f.before), after_json=_value(f.after))
            for f in c.fields
        ],
    )


def object_from_proto(m: operator_pb2.ConfigObject) -> ConfigObject:
    where = m.origin or f"{m.kind} {m.name}"
    if len(m.spec_json) > MAX_SPEC_BYTES:
        raise InvalidInput(f"{where}: the spec is larger than {MAX_SPEC_BYTES // 1024} KiB", "split it")
    try:
        spec = json.loads(m.spec_json) if m.spec_json else {}
    except ValueError as exc:
        raise InvalidInput(f"{where}: the spec is not JSON: {exc}", "opsctl apply sends specs as JSON") from None
    return ConfigObject(m.kind, m.name, spec, m.origin)


class ConfigCalls(OperatorAdapter):
    """ApplyConfiguration (apply and diff) and ExportConfiguration."""

    def _configuration(self) -> ConfigService:
        if self.configuration is None:
            raise InternalError("configuration as code is not set up", "this is a controller bug")
        return self.configuration

    @operator_call("config.apply")
    async def ApplyConfiguration(self, request: operator_pb2.ApplyConfigurationRequest, peer: Peer) -> tuple[Any, str]:
        access = peer.access
        changes = await self._configuration().apply(
            peer.actor,
            access.user.name,
            access.roles,
            [object_from_proto(o) for o in request.objects],
            dry_run=request.dry_run,
            prune=request.prune,
            source=request.source,
            decisions=access.decisions,
        )
        counts: dict[str, int] = {}
        for c in changes:
            counts[c.action] = counts.get(c.action, 0) + 1
        access.details["changes"] = counts
        response = operator_pb2.ApplyConfigurationResponse(
            changes=[change_to_proto(c) for c in changes], applied=not request.dry_run
        )
        return response, request.source

    @operator_call("config.export")
    async def ExportConfiguration(
        self, request: operator_pb2.ExportConfigurationRequest, peer: Peer
    ) -> tuple[Any, str]:
        service = self._configuration()
        kinds = list(request.kinds)
        for action in service.read_actions(kinds):  # InvalidInput for an unknown kind
            peer.access.require(action=action)
        objects = await service.export(kinds)
        return operator_pb2.ExportConfigurationResponse(
            objects=[operator_pb2.ConfigObject(kind=o.kind, name=o.name, spec_json=spec_json(o.spec)) for o in objects]
        ), ",".join(kinds)
