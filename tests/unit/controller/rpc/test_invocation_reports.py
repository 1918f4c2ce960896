"""Reports of hosts about commands another replica runs (controller/rpc/invocation_reports.py)."""

from __future__ import annotations

from typing import Any

from fleetops.controller.rpc.invocation_reports import InvocationReports
from fleetops.v1 import agent_pb2


class Commands:
    """The owner lookups of CommandService: ``owners`` answers the lookups in turn."""

    def __init__(self, *owners: str) -> None:
        self.owners = list(owners)
        self.forgotten: list[str] = []
        self.results: list[str] = []

    async def owner_elsewhere(self, host_id: str, invocation_id: str) -> str:
        return self.owners.pop(0)

    def forget_owner(self, invocation_id: str) -> None:
        self.forgotten.append(invocation_id)

    async def invocation_result(self, host_id: str, report: Any) -> bool:
        self.results.append(report.invocation_id)
        return True


class Relay:
    def __init__(self, *reachable: str) -> None:
        self.reachable = set(reachable)
        self.calls: list[str] = []

    async def report(self, replica_id: str, host_id: str, message: agent_pb2.AgentMessage) -> bool:
        self.calls.append(replica_id)
        return replica_id in self.reachable


def result() -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(
        result=agent_pb2.InvocationResult(invocation_id="inv-1", outcome=agent_pb2.INVOCATION_OUTCOME_SUCCESS)
    )


async def test_a_result_for_a_command_adopted_since_goes_to_the_adopter() -> None:
    commands, relay = Commands("r1", "r3"), Relay("r3")  # r1 died; r3 adopted the command
    assert await InvocationReports(commands, relay).take("h-1", result())  # type: ignore[arg-type]  # fakes
    assert relay.calls == ["r1", "r3"] and commands.forgotten == ["inv-1"]


async def test_a_result_whose_owner_is_gone_and_not_yet_replaced_is_not_acknowledged() -> None:
    commands, relay = Commands("r1", "r1"), Relay()
    assert not await InvocationReports(commands, relay).take("h-1", result())  # type: ignore[arg-type]  # fakes
    assert relay.calls == ["r1"] and commands.results == []  # the agent keeps it and sends it again


async def test_a_result_for_a_command_now_run_here_is_stored_here() -> None:
    commands, relay = Commands("r1", ""), Relay()  # r1 died and this replica adopted the command
    assert await InvocationReports(commands, relay).take("h-1", result())  # type: ignore[arg-type]  # fakes
    assert commands.results == ["inv-1"]


async def test_a_fenced_replica_takes_no_report_passed_on_by_another() -> None:
    commands = Commands()
    fenced = True
    reports = InvocationReports(commands, Relay(), lambda: fenced)  # type: ignore[arg-type]  # fakes
    assert not await reports.take_for_peer("h-1", result())  # the passer looks for the owner again
    assert commands.results == []
    fenced = False
    assert await reports.take_for_peer("h-1", result())
    assert commands.results == ["inv-1"]
