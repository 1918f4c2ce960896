from fleetops.v1 import agent_pb2 as _agent_pb2
from fleetops.v1 import operator_pb2 as _operator_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KillSessionRequest(_message.Message):
    __slots__ = ("session_id", "actor")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    actor: str
    def __init__(self, session_id: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class KillSessionReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeliverRequest(_message.Message):
    __slots__ = ("host_id", "message")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    message: _agent_pb2.ControllerMessage
    def __init__(self, host_id: _Optional[str] = ..., message: _Optional[_Union[_agent_pb2.ControllerMessage, _Mapping]] = ...) -> None: ...

class DeliverReply(_message.Message):
    __slots__ = ("delivered",)
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    delivered: bool
    def __init__(self, delivered: _Optional[bool] = ...) -> None: ...

class DeliverBatchRequest(_message.Message):
    __slots__ = ("deliveries",)
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[DeliverRequest]
    def __init__(self, deliveries: _Optional[_Iterable[_Union[DeliverRequest, _Mapping]]] = ...) -> None: ...

class DeliverBatchReply(_message.Message):
    __slots__ = ("delivered",)
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    delivered: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, delivered: _Optional[_Iterable[bool]] = ...) -> None: ...

class ReportRequest(_message.Message):
    __slots__ = ("host_id", "message")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    message: _agent_pb2.AgentMessage
    def __init__(self, host_id: _Optional[str] = ..., message: _Optional[_Union[_agent_pb2.AgentMessage, _Mapping]] = ...) -> None: ...

class ReportReply(_message.Message):
    __slots__ = ("stored",)
    STORED_FIELD_NUMBER: _ClassVar[int]
    stored: bool
    def __init__(self, stored: _Optional[bool] = ...) -> None: ...

class ReportBatchRequest(_message.Message):
    __slots__ = ("reports",)
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    reports: _containers.RepeatedCompositeFieldContainer[ReportRequest]
    def __init__(self, reports: _Optional[_Iterable[_Union[ReportRequest, _Mapping]]] = ...) -> None: ...

class ReportBatchReply(_message.Message):
    __slots__ = ("stored",)
    STORED_FIELD_NUMBER: _ClassVar[int]
    stored: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, stored: _Optional[_Iterable[bool]] = ...) -> None: ...
