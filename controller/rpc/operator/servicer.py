"""The one OperatorService servicer gRPC registers, composed of the rooms' calls.

Each room module adds its calls to :class:`~fleetops.controller.rpc.operator.base.OperatorAdapter`;
this class only lists them, before the generated base class whose methods answer UNIMPLEMENTED.
What the wire sees is the generated service: one servicer, every method of operator.proto.
"""

from __future__ import annotations

from fleetops.controller.rpc.operator.activations import ActivationCalls
from fleetops.controller.rpc.operator.agent_releases import AgentReleaseCalls
from fleetops.controller.rpc.operator.associations import AssociationCalls
from fleetops.controller.rpc.operator.audit import AuditCalls
from fleetops.controller.rpc.operator.automation import AutomationCalls
from fleetops.controller.rpc.operator.commands import CommandCalls
from fleetops.controller.rpc.operator.config import ConfigCalls
from fleetops.controller.rpc.operator.console import ConsoleCalls
from fleetops.controller.rpc.operator.documents import DocumentCalls
from fleetops.controller.rpc.operator.events import EventCalls
from fleetops.controller.rpc.operator.hosts import HostCalls
from fleetops.controller.rpc.operator.patching import PatchCalls
from fleetops.controller.rpc.operator.sessions import SessionCalls
from fleetops.controller.rpc.operator.ssh import SshCalls
from fleetops.controller.rpc.operator.users import UserCalls
from fleetops.controller.rpc.operator.windows import WindowCalls
from fleetops.v1 import operator_pb2_grpc


class OperatorServicer(
    HostCalls,
    ActivationCalls,
    CommandCalls,
    DocumentCalls,
    AssociationCalls,
    AutomationCalls,
    SessionCalls,
    SshCalls,
    PatchCalls,
    AgentReleaseCalls,
    WindowCalls,
    UserCalls,
    AuditCalls,
    ConsoleCalls,
    EventCalls,
    ConfigCalls,
    operator_pb2_grpc.OperatorServiceServicer,
):
    """OperatorService: what opsctl calls. Every call is authenticated and audited (``base.py``)."""
