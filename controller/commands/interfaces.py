"""Seams of the run-command room."""

from __future__ import annotations

from typing import Protocol

from fleetops.controller.commands.models import RunInstruction


class AgentChannel(Protocol):
    """Reaches agents connected to this replica (the rpc layer implements it over the control streams).

    Each method returns False when the host has no live link here; the message is then not sent
    and the caller relies on re-sending when the host connects.
    """

    def is_connected(self, host_id: str) -> bool: ...

    async def run(self, host_id: str, instruction: RunInstruction) -> bool: ...

    async def cancel(self, host_id: str, invocation_id: str) -> bool: ...

    async def ack_result(self, host_id: str, invocation_id: str) -> bool: ...
