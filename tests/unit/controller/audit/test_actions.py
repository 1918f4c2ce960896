"""Every OperatorService call records an action that the read/change table classifies."""

from __future__ import annotations

from fleetops.controller.audit.actions import OPERATOR_ACTIONS, READ_ACTIONS, kind_of
from fleetops.controller.rpc.operator import OperatorServicer
from fleetops.v1 import operator_pb2

# Calls that record their events themselves rather than through operator_call/operator_stream.
RECORDED_ELSEWHERE = {"Session": ("session.start", "session.attach")}


def test_every_operator_rpc_records_a_classified_action() -> None:
    service = operator_pb2.DESCRIPTOR.services_by_name["OperatorService"]
    unclassified, unaudited = [], []
    for method in service.methods:
        if method.name in RECORDED_ELSEWHERE:
            unclassified += [a for a in RECORDED_ELSEWHERE[method.name] if a not in OPERATOR_ACTIONS]
            continue
        action = getattr(getattr(OperatorServicer, method.name, None), "audit_action", None)
        if action is None:
            unaudited.append(method.name)
        elif action not in OPERATOR_ACTIONS:
            unclassified.append(f"{method.name} ({action})")
    assert not unaudited, f"not wrapped in operator_call/operator_stream: {unaudited}"
    assert not unclassified, f"add to OPERATOR_ACTIONS in controller/audit/actions.py: {unclassified}"


def test_reads_and_changes() -> None:
    assert {"hosts.list", "hosts.show", "command.show", "audit.list", "whoami"} <= READ_ACTIONS
    assert not {"command.run", "hosts.tag", "session.start", "window.update", "user.renew"} & READ_ACTIONS
    # What the table does not know (host, controller and enrollment events, newer actions) is shown.
    assert kind_of("host.register") == kind_of("some.future.action") == "change"
