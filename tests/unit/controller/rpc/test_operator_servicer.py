"""The composed OperatorServicer: every RPC answered by exactly one room module, none UNIMPLEMENTED."""

from __future__ import annotations

from fleetops.controller.rpc.operator import OperatorServicer
from fleetops.controller.rpc.operator.base import OperatorAdapter
from fleetops.v1 import operator_pb2, operator_pb2_grpc

RPCS = [m.name for m in operator_pb2.DESCRIPTOR.services_by_name["OperatorService"].methods]
ROOMS = [c for c in OperatorServicer.__mro__[1:] if issubclass(c, OperatorAdapter) and c is not OperatorAdapter]


def test_every_rpc_is_implemented_by_a_room() -> None:
    generated = operator_pb2_grpc.OperatorServiceServicer
    unimplemented = [name for name in RPCS if getattr(OperatorServicer, name) is getattr(generated, name)]
    assert not unimplemented


def test_no_rpc_is_defined_by_two_rooms() -> None:
    # The first room in the class bases would silently win: one definition of each call.
    owners = {name: [room.__name__ for room in ROOMS if name in vars(room)] for name in RPCS}
    assert {name: rooms for name, rooms in owners.items() if len(rooms) != 1} == {}


def test_each_room_lives_in_its_own_module() -> None:
    modules = [room.__module__ for room in ROOMS]
    assert len(set(modules)) == len(modules) == 16
    assert all(m.startswith("fleetops.controller.rpc.operator.") for m in modules)
    assert OperatorServicer.__module__ == "fleetops.controller.rpc.operator.servicer"
