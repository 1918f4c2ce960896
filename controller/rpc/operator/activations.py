"""OperatorService calls for activations (controller/enrollment): the codes agents register with."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fleetops.controller.rpc import convert
from fleetops.controller.rpc.operator.base import OperatorAdapter, operator_call
from fleetops.controller.rpc.peer import Peer
from fleetops.v1 import operator_pb2


class ActivationCalls(OperatorAdapter):
    """Activations: the codes agents register with."""

    #: The console's base URL (set by the composition root; ConsoleCalls reads it too).
    console_url: str = ""

    @operator_call("activation.create")
    async def CreateActivation(self, request: operator_pb2.CreateActivationRequest, peer: Peer) -> tuple[Any, str]:
        activation, code = await self._enrollment.create_activation(
            created_by=peer.identity.name,
            default_tags=dict(request.default_tags),
            registration_limit=request.registration_limit or 1,
            expires_in=timedelta(seconds=request.expires_in_seconds or 24 * 3600),
            description=request.description,
            allowed_host_tags=list(request.allowed_host_tags),
        )
        return (
            operator_pb2.CreateActivationResponse(
                activation=convert.activation_to_proto(activation),
                code=code,
                download_url=f"{self.console_url}/agent" if self.console_url else "",
            ),
            activation.id,
        )

    @operator_call("activation.list")
    async def ListActivations(self, request: operator_pb2.ListActivationsRequest, peer: Peer) -> tuple[Any, str]:
        activations = await self._enrollment.list_activations()
        return operator_pb2.ListActivationsResponse(
            activations=[convert.activation_to_proto(a) for a in activations]
        ), ""

    @operator_call("activation.delete")
    async def DeleteActivation(self, request: operator_pb2.DeleteActivationRequest, peer: Peer) -> tuple[Any, str]:
        await self._enrollment.delete_activation(request.id)
        return operator_pb2.DeleteActivationResponse(), request.id
