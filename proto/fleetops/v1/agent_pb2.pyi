import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from fleetops.v1 import common_pb2 as _common_pb2
from fleetops.v1 import patching_pb2 as _patching_pb2
from fleetops.v1 import session_pb2 as _session_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InvocationPhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INVOCATION_PHASE_UNSPECIFIED: _ClassVar[InvocationPhase]
    INVOCATION_PHASE_DELIVERED: _ClassVar[InvocationPhase]
    INVOCATION_PHASE_RUNNING: _ClassVar[InvocationPhase]

class OutputStream(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_STREAM_UNSPECIFIED: _ClassVar[OutputStream]
    OUTPUT_STREAM_STDOUT: _ClassVar[OutputStream]
    OUTPUT_STREAM_STDERR: _ClassVar[OutputStream]

class InvocationOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INVOCATION_OUTCOME_UNSPECIFIED: _ClassVar[InvocationOutcome]
    INVOCATION_OUTCOME_SUCCESS: _ClassVar[InvocationOutcome]
    INVOCATION_OUTCOME_FAILED: _ClassVar[InvocationOutcome]
    INVOCATION_OUTCOME_TIMED_OUT: _ClassVar[InvocationOutcome]
    INVOCATION_OUTCOME_CANCELLED: _ClassVar[InvocationOutcome]
INVOCATION_PHASE_UNSPECIFIED: InvocationPhase
INVOCATION_PHASE_DELIVERED: InvocationPhase
INVOCATION_PHASE_RUNNING: InvocationPhase
OUTPUT_STREAM_UNSPECIFIED: OutputStream
OUTPUT_STREAM_STDOUT: OutputStream
OUTPUT_STREAM_STDERR: OutputStream
INVOCATION_OUTCOME_UNSPECIFIED: InvocationOutcome
INVOCATION_OUTCOME_SUCCESS: InvocationOutcome
INVOCATION_OUTCOME_FAILED: InvocationOutcome
INVOCATION_OUTCOME_TIMED_OUT: InvocationOutcome
INVOCATION_OUTCOME_CANCELLED: InvocationOutcome

class AgentMessage(_message.Message):
    __slots__ = ("hello", "heartbeat", "inventory", "invocation_update", "output", "result")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    INVENTORY_FIELD_NUMBER: _ClassVar[int]
    INVOCATION_UPDATE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    heartbeat: Heartbeat
    inventory: InventoryReport
    invocation_update: InvocationUpdate
    output: OutputChunk
    result: InvocationResult
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., inventory: _Optional[_Union[InventoryReport, _Mapping]] = ..., invocation_update: _Optional[_Union[InvocationUpdate, _Mapping]] = ..., output: _Optional[_Union[OutputChunk, _Mapping]] = ..., result: _Optional[_Union[InvocationResult, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("host_id", "inventory", "agent_version", "ssh_host_key")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    INVENTORY_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    SSH_HOST_KEY_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    inventory: _common_pb2.Inventory
    agent_version: str
    ssh_host_key: str
    def __init__(self, host_id: _Optional[str] = ..., inventory: _Optional[_Union[_common_pb2.Inventory, _Mapping]] = ..., agent_version: _Optional[str] = ..., ssh_host_key: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("sequence", "sent_at")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    sent_at: _timestamp_pb2.Timestamp
    def __init__(self, sequence: _Optional[int] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class InventoryReport(_message.Message):
    __slots__ = ("host_id", "inventory")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    INVENTORY_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    inventory: _common_pb2.Inventory
    def __init__(self, host_id: _Optional[str] = ..., inventory: _Optional[_Union[_common_pb2.Inventory, _Mapping]] = ...) -> None: ...

class ControllerMessage(_message.Message):
    __slots__ = ("welcome", "heartbeat_ack", "disconnect", "run", "cancel", "result_ack", "open_session")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_ACK_FIELD_NUMBER: _ClassVar[int]
    DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    RESULT_ACK_FIELD_NUMBER: _ClassVar[int]
    OPEN_SESSION_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    heartbeat_ack: HeartbeatAck
    disconnect: Disconnect
    run: RunInvocation
    cancel: CancelInvocation
    result_ack: ResultAck
    open_session: OpenSession
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., heartbeat_ack: _Optional[_Union[HeartbeatAck, _Mapping]] = ..., disconnect: _Optional[_Union[Disconnect, _Mapping]] = ..., run: _Optional[_Union[RunInvocation, _Mapping]] = ..., cancel: _Optional[_Union[CancelInvocation, _Mapping]] = ..., result_ack: _Optional[_Union[ResultAck, _Mapping]] = ..., open_session: _Optional[_Union[OpenSession, _Mapping]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("host_id", "hostname", "heartbeat_interval_seconds", "inventory_interval_seconds", "tags")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    INVENTORY_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    hostname: str
    heartbeat_interval_seconds: int
    inventory_interval_seconds: int
    tags: _containers.ScalarMap[str, str]
    def __init__(self, host_id: _Optional[str] = ..., hostname: _Optional[str] = ..., heartbeat_interval_seconds: _Optional[int] = ..., inventory_interval_seconds: _Optional[int] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class HeartbeatAck(_message.Message):
    __slots__ = ("sequence",)
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    def __init__(self, sequence: _Optional[int] = ...) -> None: ...

class Disconnect(_message.Message):
    __slots__ = ("reason", "revoked")
    REASON_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    reason: str
    revoked: bool
    def __init__(self, reason: _Optional[str] = ..., revoked: _Optional[bool] = ...) -> None: ...

class RenewCertificateRequest(_message.Message):
    __slots__ = ("csr_pem",)
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    csr_pem: bytes
    def __init__(self, csr_pem: _Optional[bytes] = ...) -> None: ...

class RenewCertificateResponse(_message.Message):
    __slots__ = ("certificate_pem", "ca_pem")
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_PEM_FIELD_NUMBER: _ClassVar[int]
    certificate_pem: bytes
    ca_pem: bytes
    def __init__(self, certificate_pem: _Optional[bytes] = ..., ca_pem: _Optional[bytes] = ...) -> None: ...

class RunInvocation(_message.Message):
    __slots__ = ("invocation_id", "command_id", "argv", "script", "cwd", "env", "run_as", "timeout_seconds", "kill_grace_seconds", "stdout_offset", "stderr_offset", "agent_task", "task_input")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    ARGV_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    CWD_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    RUN_AS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    KILL_GRACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STDOUT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    STDERR_OFFSET_FIELD_NUMBER: _ClassVar[int]
    AGENT_TASK_FIELD_NUMBER: _ClassVar[int]
    TASK_INPUT_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    command_id: str
    argv: _containers.RepeatedScalarFieldContainer[str]
    script: bytes
    cwd: str
    env: _containers.ScalarMap[str, str]
    run_as: str
    timeout_seconds: int
    kill_grace_seconds: int
    stdout_offset: int
    stderr_offset: int
    agent_task: str
    task_input: bytes
    def __init__(self, invocation_id: _Optional[str] = ..., command_id: _Optional[str] = ..., argv: _Optional[_Iterable[str]] = ..., script: _Optional[bytes] = ..., cwd: _Optional[str] = ..., env: _Optional[_Mapping[str, str]] = ..., run_as: _Optional[str] = ..., timeout_seconds: _Optional[int] = ..., kill_grace_seconds: _Optional[int] = ..., stdout_offset: _Optional[int] = ..., stderr_offset: _Optional[int] = ..., agent_task: _Optional[str] = ..., task_input: _Optional[bytes] = ...) -> None: ...

class CancelInvocation(_message.Message):
    __slots__ = ("invocation_id",)
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    def __init__(self, invocation_id: _Optional[str] = ...) -> None: ...

class ResultAck(_message.Message):
    __slots__ = ("invocation_id",)
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    def __init__(self, invocation_id: _Optional[str] = ...) -> None: ...

class InvocationUpdate(_message.Message):
    __slots__ = ("invocation_id", "phase", "at")
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    phase: InvocationPhase
    at: _timestamp_pb2.Timestamp
    def __init__(self, invocation_id: _Optional[str] = ..., phase: _Optional[_Union[InvocationPhase, str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OutputChunk(_message.Message):
    __slots__ = ("invocation_id", "stream", "offset", "data")
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    stream: OutputStream
    offset: int
    data: bytes
    def __init__(self, invocation_id: _Optional[str] = ..., stream: _Optional[_Union[OutputStream, str]] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class InvocationResult(_message.Message):
    __slots__ = ("invocation_id", "outcome", "exit_code", "reason", "stdout_bytes", "stderr_bytes", "started_at", "finished_at", "rebooted", "patch_report", "patch_report_error")
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STDOUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    STDERR_BYTES_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    REBOOTED_FIELD_NUMBER: _ClassVar[int]
    PATCH_REPORT_FIELD_NUMBER: _ClassVar[int]
    PATCH_REPORT_ERROR_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    outcome: InvocationOutcome
    exit_code: int
    reason: str
    stdout_bytes: int
    stderr_bytes: int
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    rebooted: bool
    patch_report: _patching_pb2.PatchReport
    patch_report_error: str
    def __init__(self, invocation_id: _Optional[str] = ..., outcome: _Optional[_Union[InvocationOutcome, str]] = ..., exit_code: _Optional[int] = ..., reason: _Optional[str] = ..., stdout_bytes: _Optional[int] = ..., stderr_bytes: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rebooted: _Optional[bool] = ..., patch_report: _Optional[_Union[_patching_pb2.PatchReport, _Mapping]] = ..., patch_report_error: _Optional[str] = ...) -> None: ...

class OpenSession(_message.Message):
    __slots__ = ("session_id", "run_as", "command", "size", "term", "env", "ssh")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_AS_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    SSH_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    run_as: str
    command: str
    size: _session_pb2.TerminalSize
    term: str
    env: _containers.ScalarMap[str, str]
    ssh: SshServerSetup
    def __init__(self, session_id: _Optional[str] = ..., run_as: _Optional[str] = ..., command: _Optional[str] = ..., size: _Optional[_Union[_session_pb2.TerminalSize, _Mapping]] = ..., term: _Optional[str] = ..., env: _Optional[_Mapping[str, str]] = ..., ssh: _Optional[_Union[SshServerSetup, _Mapping]] = ...) -> None: ...

class SshServerSetup(_message.Message):
    __slots__ = ("host_certificate", "user_ca_keys", "operator", "forward_to", "forward_denied", "forward_remote", "agent_forwarding", "file_transfer")
    HOST_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    USER_CA_KEYS_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    FORWARD_TO_FIELD_NUMBER: _ClassVar[int]
    FORWARD_DENIED_FIELD_NUMBER: _ClassVar[int]
    FORWARD_REMOTE_FIELD_NUMBER: _ClassVar[int]
    AGENT_FORWARDING_FIELD_NUMBER: _ClassVar[int]
    FILE_TRANSFER_FIELD_NUMBER: _ClassVar[int]
    host_certificate: str
    user_ca_keys: _containers.RepeatedScalarFieldContainer[str]
    operator: str
    forward_to: _containers.RepeatedScalarFieldContainer[str]
    forward_denied: _containers.RepeatedScalarFieldContainer[str]
    forward_remote: bool
    agent_forwarding: bool
    file_transfer: bool
    def __init__(self, host_certificate: _Optional[str] = ..., user_ca_keys: _Optional[_Iterable[str]] = ..., operator: _Optional[str] = ..., forward_to: _Optional[_Iterable[str]] = ..., forward_denied: _Optional[_Iterable[str]] = ..., forward_remote: _Optional[bool] = ..., agent_forwarding: _Optional[bool] = ..., file_transfer: _Optional[bool] = ...) -> None: ...

class AgentSessionMessage(_message.Message):
    __slots__ = ("attach", "output", "input_ack")
    ATTACH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    INPUT_ACK_FIELD_NUMBER: _ClassVar[int]
    attach: _session_pb2.SessionAttach
    output: _session_pb2.SessionOutput
    input_ack: int
    def __init__(self, attach: _Optional[_Union[_session_pb2.SessionAttach, _Mapping]] = ..., output: _Optional[_Union[_session_pb2.SessionOutput, _Mapping]] = ..., input_ack: _Optional[int] = ...) -> None: ...

class ControllerSessionMessage(_message.Message):
    __slots__ = ("attach", "input", "output_ack", "terminate")
    ATTACH_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ACK_FIELD_NUMBER: _ClassVar[int]
    TERMINATE_FIELD_NUMBER: _ClassVar[int]
    attach: _session_pb2.SessionAttach
    input: _session_pb2.SessionInput
    output_ack: int
    terminate: SessionTerminate
    def __init__(self, attach: _Optional[_Union[_session_pb2.SessionAttach, _Mapping]] = ..., input: _Optional[_Union[_session_pb2.SessionInput, _Mapping]] = ..., output_ack: _Optional[int] = ..., terminate: _Optional[_Union[SessionTerminate, _Mapping]] = ...) -> None: ...

class SessionTerminate(_message.Message):
    __slots__ = ("reason", "message")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    message: str
    def __init__(self, reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class DownloadReleaseRequest(_message.Message):
    __slots__ = ("file_name",)
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    file_name: str
    def __init__(self, file_name: _Optional[str] = ...) -> None: ...

class ReleaseManifest(_message.Message):
    __slots__ = ("file_name", "version", "kind", "arch", "sha256", "size", "signature", "key_id")
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    file_name: str
    version: str
    kind: str
    arch: str
    sha256: str
    size: int
    signature: bytes
    key_id: str
    def __init__(self, file_name: _Optional[str] = ..., version: _Optional[str] = ..., kind: _Optional[str] = ..., arch: _Optional[str] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ..., signature: _Optional[bytes] = ..., key_id: _Optional[str] = ...) -> None: ...

class ReleaseChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: ReleaseHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[ReleaseHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class ReleaseHeader(_message.Message):
    __slots__ = ("manifest", "public_key")
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    manifest: ReleaseManifest
    public_key: bytes
    def __init__(self, manifest: _Optional[_Union[ReleaseManifest, _Mapping]] = ..., public_key: _Optional[bytes] = ...) -> None: ...
