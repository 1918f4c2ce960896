import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from fleetops.v1 import common_pb2 as _common_pb2
from fleetops.v1 import session_pb2 as _session_pb2
from fleetops.v1 import enrollment_pb2 as _enrollment_pb2
from fleetops.v1 import events_pb2 as _events_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HostStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HOST_STATUS_UNSPECIFIED: _ClassVar[HostStatus]
    HOST_STATUS_ONLINE: _ClassVar[HostStatus]
    HOST_STATUS_OFFLINE: _ClassVar[HostStatus]
    HOST_STATUS_DEREGISTERED: _ClassVar[HostStatus]

class InvocationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INVOCATION_STATE_UNSPECIFIED: _ClassVar[InvocationState]
    INVOCATION_STATE_PENDING: _ClassVar[InvocationState]
    INVOCATION_STATE_DELIVERED: _ClassVar[InvocationState]
    INVOCATION_STATE_RUNNING: _ClassVar[InvocationState]
    INVOCATION_STATE_SUCCESS: _ClassVar[InvocationState]
    INVOCATION_STATE_FAILED: _ClassVar[InvocationState]
    INVOCATION_STATE_TIMED_OUT: _ClassVar[InvocationState]
    INVOCATION_STATE_CANCELLED: _ClassVar[InvocationState]
    INVOCATION_STATE_UNDELIVERABLE: _ClassVar[InvocationState]
    INVOCATION_STATE_NOT_STARTED: _ClassVar[InvocationState]
HOST_STATUS_UNSPECIFIED: HostStatus
HOST_STATUS_ONLINE: HostStatus
HOST_STATUS_OFFLINE: HostStatus
HOST_STATUS_DEREGISTERED: HostStatus
INVOCATION_STATE_UNSPECIFIED: InvocationState
INVOCATION_STATE_PENDING: InvocationState
INVOCATION_STATE_DELIVERED: InvocationState
INVOCATION_STATE_RUNNING: InvocationState
INVOCATION_STATE_SUCCESS: InvocationState
INVOCATION_STATE_FAILED: InvocationState
INVOCATION_STATE_TIMED_OUT: InvocationState
INVOCATION_STATE_CANCELLED: InvocationState
INVOCATION_STATE_UNDELIVERABLE: InvocationState
INVOCATION_STATE_NOT_STARTED: InvocationState

class CreateConsoleLinkRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ConsoleLink(_message.Message):
    __slots__ = ("url", "expires_at", "session_expires_at")
    URL_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    SESSION_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    url: str
    expires_at: _timestamp_pb2.Timestamp
    session_expires_at: _timestamp_pb2.Timestamp
    def __init__(self, url: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., session_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ("operator", "certificate_expires_at")
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    operator: str
    certificate_expires_at: _timestamp_pb2.Timestamp
    def __init__(self, operator: _Optional[str] = ..., certificate_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Target(_message.Message):
    __slots__ = ("selector", "hosts", "all")
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    selector: str
    hosts: _containers.RepeatedScalarFieldContainer[str]
    all: bool
    def __init__(self, selector: _Optional[str] = ..., hosts: _Optional[_Iterable[str]] = ..., all: _Optional[bool] = ...) -> None: ...

class Host(_message.Message):
    __slots__ = ("id", "name", "status", "tags", "inventory", "registered_at", "last_seen_at", "connected_at", "certificate_expires_at", "activation_id", "peer_address", "host_tags", "replica", "associations")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class HostTagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    INVENTORY_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_AT_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HOST_TAGS_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATIONS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    status: HostStatus
    tags: _containers.ScalarMap[str, str]
    inventory: _common_pb2.Inventory
    registered_at: _timestamp_pb2.Timestamp
    last_seen_at: _timestamp_pb2.Timestamp
    connected_at: _timestamp_pb2.Timestamp
    certificate_expires_at: _timestamp_pb2.Timestamp
    activation_id: str
    peer_address: str
    host_tags: _containers.ScalarMap[str, str]
    replica: str
    associations: _containers.RepeatedCompositeFieldContainer[HostAssociation]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[_Union[HostStatus, str]] = ..., tags: _Optional[_Mapping[str, str]] = ..., inventory: _Optional[_Union[_common_pb2.Inventory, _Mapping]] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., connected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., certificate_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., activation_id: _Optional[str] = ..., peer_address: _Optional[str] = ..., host_tags: _Optional[_Mapping[str, str]] = ..., replica: _Optional[str] = ..., associations: _Optional[_Iterable[_Union[HostAssociation, _Mapping]]] = ...) -> None: ...

class HostAssociation(_message.Message):
    __slots__ = ("association_id", "name", "document", "status")
    ASSOCIATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    association_id: str
    name: str
    document: str
    status: AssociationHostStatus
    def __init__(self, association_id: _Optional[str] = ..., name: _Optional[str] = ..., document: _Optional[str] = ..., status: _Optional[_Union[AssociationHostStatus, _Mapping]] = ...) -> None: ...

class ListHostsRequest(_message.Message):
    __slots__ = ("target", "include_deregistered")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_DEREGISTERED_FIELD_NUMBER: _ClassVar[int]
    target: Target
    include_deregistered: bool
    def __init__(self, target: _Optional[_Union[Target, _Mapping]] = ..., include_deregistered: _Optional[bool] = ...) -> None: ...

class ListHostsResponse(_message.Message):
    __slots__ = ("hosts",)
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[Host]
    def __init__(self, hosts: _Optional[_Iterable[_Union[Host, _Mapping]]] = ...) -> None: ...

class GetHostRequest(_message.Message):
    __slots__ = ("host",)
    HOST_FIELD_NUMBER: _ClassVar[int]
    host: str
    def __init__(self, host: _Optional[str] = ...) -> None: ...

class TagHostRequest(_message.Message):
    __slots__ = ("host", "set", "remove")
    class SetEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HOST_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    host: str
    set: _containers.ScalarMap[str, str]
    remove: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, host: _Optional[str] = ..., set: _Optional[_Mapping[str, str]] = ..., remove: _Optional[_Iterable[str]] = ...) -> None: ...

class TagHostsRequest(_message.Message):
    __slots__ = ("target", "set", "remove", "dry_run")
    class SetEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TARGET_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    target: Target
    set: _containers.ScalarMap[str, str]
    remove: _containers.RepeatedScalarFieldContainer[str]
    dry_run: bool
    def __init__(self, target: _Optional[_Union[Target, _Mapping]] = ..., set: _Optional[_Mapping[str, str]] = ..., remove: _Optional[_Iterable[str]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class HostTagChange(_message.Message):
    __slots__ = ("host_id", "host_name", "before", "after", "changed")
    class BeforeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class AfterEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    HOST_NAME_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    host_name: str
    before: _containers.ScalarMap[str, str]
    after: _containers.ScalarMap[str, str]
    changed: bool
    def __init__(self, host_id: _Optional[str] = ..., host_name: _Optional[str] = ..., before: _Optional[_Mapping[str, str]] = ..., after: _Optional[_Mapping[str, str]] = ..., changed: _Optional[bool] = ...) -> None: ...

class TagHostsResponse(_message.Message):
    __slots__ = ("hosts", "dry_run")
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[HostTagChange]
    dry_run: bool
    def __init__(self, hosts: _Optional[_Iterable[_Union[HostTagChange, _Mapping]]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class DeregisterHostRequest(_message.Message):
    __slots__ = ("host",)
    HOST_FIELD_NUMBER: _ClassVar[int]
    host: str
    def __init__(self, host: _Optional[str] = ...) -> None: ...

class CreateActivationRequest(_message.Message):
    __slots__ = ("default_tags", "registration_limit", "expires_in_seconds", "description", "allowed_host_tags")
    class DefaultTagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DEFAULT_TAGS_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_LIMIT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_HOST_TAGS_FIELD_NUMBER: _ClassVar[int]
    default_tags: _containers.ScalarMap[str, str]
    registration_limit: int
    expires_in_seconds: int
    description: str
    allowed_host_tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, default_tags: _Optional[_Mapping[str, str]] = ..., registration_limit: _Optional[int] = ..., expires_in_seconds: _Optional[int] = ..., description: _Optional[str] = ..., allowed_host_tags: _Optional[_Iterable[str]] = ...) -> None: ...

class Activation(_message.Message):
    __slots__ = ("id", "description", "default_tags", "registration_limit", "registrations_count", "created_at", "expires_at", "expired", "created_by", "allowed_host_tags", "failed_codes", "locked", "locked_at")
    class DefaultTagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TAGS_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_LIMIT_FIELD_NUMBER: _ClassVar[int]
    REGISTRATIONS_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_HOST_TAGS_FIELD_NUMBER: _ClassVar[int]
    FAILED_CODES_FIELD_NUMBER: _ClassVar[int]
    LOCKED_FIELD_NUMBER: _ClassVar[int]
    LOCKED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    description: str
    default_tags: _containers.ScalarMap[str, str]
    registration_limit: int
    registrations_count: int
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    expired: bool
    created_by: str
    allowed_host_tags: _containers.RepeatedScalarFieldContainer[str]
    failed_codes: int
    locked: bool
    locked_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., description: _Optional[str] = ..., default_tags: _Optional[_Mapping[str, str]] = ..., registration_limit: _Optional[int] = ..., registrations_count: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expired: _Optional[bool] = ..., created_by: _Optional[str] = ..., allowed_host_tags: _Optional[_Iterable[str]] = ..., failed_codes: _Optional[int] = ..., locked: _Optional[bool] = ..., locked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateActivationResponse(_message.Message):
    __slots__ = ("activation", "code", "download_url")
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_URL_FIELD_NUMBER: _ClassVar[int]
    activation: Activation
    code: str
    download_url: str
    def __init__(self, activation: _Optional[_Union[Activation, _Mapping]] = ..., code: _Optional[str] = ..., download_url: _Optional[str] = ...) -> None: ...

class ListActivationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListActivationsResponse(_message.Message):
    __slots__ = ("activations",)
    ACTIVATIONS_FIELD_NUMBER: _ClassVar[int]
    activations: _containers.RepeatedCompositeFieldContainer[Activation]
    def __init__(self, activations: _Optional[_Iterable[_Union[Activation, _Mapping]]] = ...) -> None: ...

class DeleteActivationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteActivationResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("id", "time", "actor", "action", "target", "outcome", "details_json", "previous_hash", "hash")
    ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    id: int
    time: _timestamp_pb2.Timestamp
    actor: str
    action: str
    target: str
    outcome: str
    details_json: str
    previous_hash: str
    hash: str
    def __init__(self, id: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., target: _Optional[str] = ..., outcome: _Optional[str] = ..., details_json: _Optional[str] = ..., previous_hash: _Optional[str] = ..., hash: _Optional[str] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("since", "actor", "action", "outcome", "limit", "until", "host", "before_id", "include_reads")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    BEFORE_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_READS_FIELD_NUMBER: _ClassVar[int]
    since: _timestamp_pb2.Timestamp
    actor: str
    action: str
    outcome: str
    limit: int
    until: _timestamp_pb2.Timestamp
    host: str
    before_id: int
    include_reads: bool
    def __init__(self, since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., outcome: _Optional[str] = ..., limit: _Optional[int] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., host: _Optional[str] = ..., before_id: _Optional[int] = ..., include_reads: _Optional[bool] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ...) -> None: ...

class VerifyAuditRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyAuditResponse(_message.Message):
    __slots__ = ("ok", "events_checked", "first_bad_event_id", "problem", "checkpoint")
    OK_FIELD_NUMBER: _ClassVar[int]
    EVENTS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    FIRST_BAD_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    events_checked: int
    first_bad_event_id: int
    problem: str
    checkpoint: AuditCheckpointCheck
    def __init__(self, ok: _Optional[bool] = ..., events_checked: _Optional[int] = ..., first_bad_event_id: _Optional[int] = ..., problem: _Optional[str] = ..., checkpoint: _Optional[_Union[AuditCheckpointCheck, _Mapping]] = ...) -> None: ...

class AuditCheckpointCheck(_message.Message):
    __slots__ = ("status", "message", "key", "time", "head_event_id", "head_hash", "key_id", "missing_from", "missing_to")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    HEAD_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    MISSING_FROM_FIELD_NUMBER: _ClassVar[int]
    MISSING_TO_FIELD_NUMBER: _ClassVar[int]
    status: str
    message: str
    key: str
    time: _timestamp_pb2.Timestamp
    head_event_id: int
    head_hash: str
    key_id: str
    missing_from: int
    missing_to: int
    def __init__(self, status: _Optional[str] = ..., message: _Optional[str] = ..., key: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., head_event_id: _Optional[int] = ..., head_hash: _Optional[str] = ..., key_id: _Optional[str] = ..., missing_from: _Optional[int] = ..., missing_to: _Optional[int] = ...) -> None: ...

class RunCommandRequest(_message.Message):
    __slots__ = ("target", "argv", "script", "cwd", "env", "run_as", "max_concurrency", "max_errors", "timeout_seconds", "delivery_timeout_seconds", "comment", "document", "parameters")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ARGV_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    CWD_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    RUN_AS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    MAX_ERRORS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    target: Target
    argv: _containers.RepeatedScalarFieldContainer[str]
    script: bytes
    cwd: str
    env: _containers.ScalarMap[str, str]
    run_as: str
    max_concurrency: str
    max_errors: str
    timeout_seconds: int
    delivery_timeout_seconds: int
    comment: str
    document: str
    parameters: _containers.ScalarMap[str, str]
    def __init__(self, target: _Optional[_Union[Target, _Mapping]] = ..., argv: _Optional[_Iterable[str]] = ..., script: _Optional[bytes] = ..., cwd: _Optional[str] = ..., env: _Optional[_Mapping[str, str]] = ..., run_as: _Optional[str] = ..., max_concurrency: _Optional[str] = ..., max_errors: _Optional[str] = ..., timeout_seconds: _Optional[int] = ..., delivery_timeout_seconds: _Optional[int] = ..., comment: _Optional[str] = ..., document: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Command(_message.Message):
    __slots__ = ("id", "created_by", "created_at", "argv", "script", "target", "max_concurrency", "max_errors", "concurrency_limit", "error_limit", "timeout_seconds", "delivery_timeout_seconds", "status", "total", "counts", "finished_at", "run_as", "comment", "agent_task", "document", "parameters")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ARGV_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    MAX_ERRORS_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    ERROR_LIMIT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    RUN_AS_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    AGENT_TASK_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    id: str
    created_by: str
    created_at: _timestamp_pb2.Timestamp
    argv: _containers.RepeatedScalarFieldContainer[str]
    script: bytes
    target: str
    max_concurrency: str
    max_errors: str
    concurrency_limit: int
    error_limit: int
    timeout_seconds: int
    delivery_timeout_seconds: int
    status: str
    total: int
    counts: _containers.ScalarMap[str, int]
    finished_at: _timestamp_pb2.Timestamp
    run_as: str
    comment: str
    agent_task: str
    document: str
    parameters: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., created_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., argv: _Optional[_Iterable[str]] = ..., script: _Optional[bytes] = ..., target: _Optional[str] = ..., max_concurrency: _Optional[str] = ..., max_errors: _Optional[str] = ..., concurrency_limit: _Optional[int] = ..., error_limit: _Optional[int] = ..., timeout_seconds: _Optional[int] = ..., delivery_timeout_seconds: _Optional[int] = ..., status: _Optional[str] = ..., total: _Optional[int] = ..., counts: _Optional[_Mapping[str, int]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., run_as: _Optional[str] = ..., comment: _Optional[str] = ..., agent_task: _Optional[str] = ..., document: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Invocation(_message.Message):
    __slots__ = ("id", "command_id", "host_id", "host_name", "state", "exit_code", "has_exit_code", "reason", "stdout_tail", "stderr_tail", "stdout_bytes", "stderr_bytes", "delivered_at", "started_at", "finished_at", "rebooted", "waiting_reason", "host_offline_since")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    HOST_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    HAS_EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STDOUT_TAIL_FIELD_NUMBER: _ClassVar[int]
    STDERR_TAIL_FIELD_NUMBER: _ClassVar[int]
    STDOUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    STDERR_BYTES_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    REBOOTED_FIELD_NUMBER: _ClassVar[int]
    WAITING_REASON_FIELD_NUMBER: _ClassVar[int]
    HOST_OFFLINE_SINCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    command_id: str
    host_id: str
    host_name: str
    state: InvocationState
    exit_code: int
    has_exit_code: bool
    reason: str
    stdout_tail: bytes
    stderr_tail: bytes
    stdout_bytes: int
    stderr_bytes: int
    delivered_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    rebooted: bool
    waiting_reason: str
    host_offline_since: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., command_id: _Optional[str] = ..., host_id: _Optional[str] = ..., host_name: _Optional[str] = ..., state: _Optional[_Union[InvocationState, str]] = ..., exit_code: _Optional[int] = ..., has_exit_code: _Optional[bool] = ..., reason: _Optional[str] = ..., stdout_tail: _Optional[bytes] = ..., stderr_tail: _Optional[bytes] = ..., stdout_bytes: _Optional[int] = ..., stderr_bytes: _Optional[int] = ..., delivered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rebooted: _Optional[bool] = ..., waiting_reason: _Optional[str] = ..., host_offline_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RunCommandResponse(_message.Message):
    __slots__ = ("command", "host_names")
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    HOST_NAMES_FIELD_NUMBER: _ClassVar[int]
    command: Command
    host_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, command: _Optional[_Union[Command, _Mapping]] = ..., host_names: _Optional[_Iterable[str]] = ...) -> None: ...

class ListCommandsRequest(_message.Message):
    __slots__ = ("limit", "host")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    limit: int
    host: str
    def __init__(self, limit: _Optional[int] = ..., host: _Optional[str] = ...) -> None: ...

class ListCommandsResponse(_message.Message):
    __slots__ = ("commands",)
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    commands: _containers.RepeatedCompositeFieldContainer[Command]
    def __init__(self, commands: _Optional[_Iterable[_Union[Command, _Mapping]]] = ...) -> None: ...

class GetCommandRequest(_message.Message):
    __slots__ = ("id", "include_output")
    ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    id: str
    include_output: bool
    def __init__(self, id: _Optional[str] = ..., include_output: _Optional[bool] = ...) -> None: ...

class CommandDetail(_message.Message):
    __slots__ = ("command", "invocations", "done")
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    INVOCATIONS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    command: Command
    invocations: _containers.RepeatedCompositeFieldContainer[Invocation]
    done: bool
    def __init__(self, command: _Optional[_Union[Command, _Mapping]] = ..., invocations: _Optional[_Iterable[_Union[Invocation, _Mapping]]] = ..., done: _Optional[bool] = ...) -> None: ...

class GetInvocationOutputRequest(_message.Message):
    __slots__ = ("command_id", "host", "stderr", "follow")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    host: str
    stderr: bool
    follow: bool
    def __init__(self, command_id: _Optional[str] = ..., host: _Optional[str] = ..., stderr: _Optional[bool] = ..., follow: _Optional[bool] = ...) -> None: ...

class OutputData(_message.Message):
    __slots__ = ("data", "offset", "skipped")
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    offset: int
    skipped: int
    def __init__(self, data: _Optional[bytes] = ..., offset: _Optional[int] = ..., skipped: _Optional[int] = ...) -> None: ...

class WatchOutputRequest(_message.Message):
    __slots__ = ("command_id", "hosts")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    hosts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, command_id: _Optional[str] = ..., hosts: _Optional[_Iterable[str]] = ...) -> None: ...

class LiveOutput(_message.Message):
    __slots__ = ("stderr", "offset", "data", "skipped")
    STDERR_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    stderr: bool
    offset: int
    data: bytes
    skipped: int
    def __init__(self, stderr: _Optional[bool] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., skipped: _Optional[int] = ...) -> None: ...

class OutputEvent(_message.Message):
    __slots__ = ("host_name", "output", "finished")
    HOST_NAME_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    host_name: str
    output: LiveOutput
    finished: Invocation
    def __init__(self, host_name: _Optional[str] = ..., output: _Optional[_Union[LiveOutput, _Mapping]] = ..., finished: _Optional[_Union[Invocation, _Mapping]] = ...) -> None: ...

class StartSessionRequest(_message.Message):
    __slots__ = ("host", "run_as", "command", "size", "term", "env", "record_input", "kind")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HOST_FIELD_NUMBER: _ClassVar[int]
    RUN_AS_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    RECORD_INPUT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    host: str
    run_as: str
    command: str
    size: _session_pb2.TerminalSize
    term: str
    env: _containers.ScalarMap[str, str]
    record_input: bool
    kind: _session_pb2.SessionKind
    def __init__(self, host: _Optional[str] = ..., run_as: _Optional[str] = ..., command: _Optional[str] = ..., size: _Optional[_Union[_session_pb2.TerminalSize, _Mapping]] = ..., term: _Optional[str] = ..., env: _Optional[_Mapping[str, str]] = ..., record_input: _Optional[bool] = ..., kind: _Optional[_Union[_session_pb2.SessionKind, str]] = ...) -> None: ...

class SessionClientMessage(_message.Message):
    __slots__ = ("start", "attach", "input", "output_ack")
    START_FIELD_NUMBER: _ClassVar[int]
    ATTACH_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ACK_FIELD_NUMBER: _ClassVar[int]
    start: StartSessionRequest
    attach: _session_pb2.SessionAttach
    input: _session_pb2.SessionInput
    output_ack: int
    def __init__(self, start: _Optional[_Union[StartSessionRequest, _Mapping]] = ..., attach: _Optional[_Union[_session_pb2.SessionAttach, _Mapping]] = ..., input: _Optional[_Union[_session_pb2.SessionInput, _Mapping]] = ..., output_ack: _Optional[int] = ...) -> None: ...

class SessionStarted(_message.Message):
    __slots__ = ("session_id", "host_id", "host_name", "received_seq", "idle_timeout_seconds", "max_duration_seconds", "resume_seconds")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    HOST_NAME_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_SEQ_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RESUME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    host_id: str
    host_name: str
    received_seq: int
    idle_timeout_seconds: int
    max_duration_seconds: int
    resume_seconds: int
    def __init__(self, session_id: _Optional[str] = ..., host_id: _Optional[str] = ..., host_name: _Optional[str] = ..., received_seq: _Optional[int] = ..., idle_timeout_seconds: _Optional[int] = ..., max_duration_seconds: _Optional[int] = ..., resume_seconds: _Optional[int] = ...) -> None: ...

class SessionEnded(_message.Message):
    __slots__ = ("exit_code", "reason", "message")
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    exit_code: int
    reason: str
    message: str
    def __init__(self, exit_code: _Optional[int] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class SessionServerMessage(_message.Message):
    __slots__ = ("started", "output", "input_ack", "ended")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    INPUT_ACK_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    started: SessionStarted
    output: _session_pb2.SessionOutput
    input_ack: int
    ended: SessionEnded
    def __init__(self, started: _Optional[_Union[SessionStarted, _Mapping]] = ..., output: _Optional[_Union[_session_pb2.SessionOutput, _Mapping]] = ..., input_ack: _Optional[int] = ..., ended: _Optional[_Union[SessionEnded, _Mapping]] = ...) -> None: ...

class SessionInfo(_message.Message):
    __slots__ = ("id", "host_id", "host_name", "operator", "run_as", "command", "state", "started_at", "ended_at", "end_reason", "exit_code", "has_exit_code", "cols", "rows", "term", "record_input", "transcript_key", "transcript_sha256", "transcript_size", "transcript_state", "end_message", "kind")
    ID_FIELD_NUMBER: _ClassVar[int]
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    HOST_NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    RUN_AS_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    END_REASON_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    HAS_EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    RECORD_INPUT_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_KEY_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_SHA256_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_SIZE_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_STATE_FIELD_NUMBER: _ClassVar[int]
    END_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    id: str
    host_id: str
    host_name: str
    operator: str
    run_as: str
    command: str
    state: str
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    end_reason: str
    exit_code: int
    has_exit_code: bool
    cols: int
    rows: int
    term: str
    record_input: bool
    transcript_key: str
    transcript_sha256: str
    transcript_size: int
    transcript_state: str
    end_message: str
    kind: _session_pb2.SessionKind
    def __init__(self, id: _Optional[str] = ..., host_id: _Optional[str] = ..., host_name: _Optional[str] = ..., operator: _Optional[str] = ..., run_as: _Optional[str] = ..., command: _Optional[str] = ..., state: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_reason: _Optional[str] = ..., exit_code: _Optional[int] = ..., has_exit_code: _Optional[bool] = ..., cols: _Optional[int] = ..., rows: _Optional[int] = ..., term: _Optional[str] = ..., record_input: _Optional[bool] = ..., transcript_key: _Optional[str] = ..., transcript_sha256: _Optional[str] = ..., transcript_size: _Optional[int] = ..., transcript_state: _Optional[str] = ..., end_message: _Optional[str] = ..., kind: _Optional[_Union[_session_pb2.SessionKind, str]] = ...) -> None: ...

class IssueSshCertificateRequest(_message.Message):
    __slots__ = ("public_key",)
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    public_key: str
    def __init__(self, public_key: _Optional[str] = ...) -> None: ...

class IssueSshCertificateResponse(_message.Message):
    __slots__ = ("certificate", "expires_at", "host_ca_key", "host_domain")
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    HOST_CA_KEY_FIELD_NUMBER: _ClassVar[int]
    HOST_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    certificate: str
    expires_at: _timestamp_pb2.Timestamp
    host_ca_key: str
    host_domain: str
    def __init__(self, certificate: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., host_ca_key: _Optional[str] = ..., host_domain: _Optional[str] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ("active_only", "limit", "host")
    ACTIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    active_only: bool
    limit: int
    host: str
    def __init__(self, active_only: _Optional[bool] = ..., limit: _Optional[int] = ..., host: _Optional[str] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions",)
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[SessionInfo]
    def __init__(self, sessions: _Optional[_Iterable[_Union[SessionInfo, _Mapping]]] = ...) -> None: ...

class GetSessionRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class PatchOperationRequest(_message.Message):
    __slots__ = ("target", "max_concurrency", "max_errors", "reboot", "timeout_seconds", "no_refresh", "comment")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    MAX_ERRORS_FIELD_NUMBER: _ClassVar[int]
    REBOOT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    NO_REFRESH_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    target: Target
    max_concurrency: str
    max_errors: str
    reboot: str
    timeout_seconds: int
    no_refresh: bool
    comment: str
    def __init__(self, target: _Optional[_Union[Target, _Mapping]] = ..., max_concurrency: _Optional[str] = ..., max_errors: _Optional[str] = ..., reboot: _Optional[str] = ..., timeout_seconds: _Optional[int] = ..., no_refresh: _Optional[bool] = ..., comment: _Optional[str] = ...) -> None: ...

class PatchBaseline(_message.Message):
    __slots__ = ("name", "document_json", "builtin", "updated_at", "updated_by")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    BUILTIN_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    name: str
    document_json: str
    builtin: bool
    updated_at: _timestamp_pb2.Timestamp
    updated_by: str
    def __init__(self, name: _Optional[str] = ..., document_json: _Optional[str] = ..., builtin: _Optional[bool] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_by: _Optional[str] = ...) -> None: ...

class ListPatchBaselinesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPatchBaselinesResponse(_message.Message):
    __slots__ = ("baselines",)
    BASELINES_FIELD_NUMBER: _ClassVar[int]
    baselines: _containers.RepeatedCompositeFieldContainer[PatchBaseline]
    def __init__(self, baselines: _Optional[_Iterable[_Union[PatchBaseline, _Mapping]]] = ...) -> None: ...

class GetPatchBaselineRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeletePatchBaselineResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PatchGroup(_message.Message):
    __slots__ = ("name", "selector", "baseline", "priority")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    name: str
    selector: str
    baseline: str
    priority: int
    def __init__(self, name: _Optional[str] = ..., selector: _Optional[str] = ..., baseline: _Optional[str] = ..., priority: _Optional[int] = ...) -> None: ...

class ListPatchGroupsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPatchGroupsResponse(_message.Message):
    __slots__ = ("groups",)
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[PatchGroup]
    def __init__(self, groups: _Optional[_Iterable[_Union[PatchGroup, _Mapping]]] = ...) -> None: ...

class DeletePatchGroupRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeletePatchGroupResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PatchComplianceRequest(_message.Message):
    __slots__ = ("target", "host")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    target: Target
    host: str
    def __init__(self, target: _Optional[_Union[Target, _Mapping]] = ..., host: _Optional[str] = ...) -> None: ...

class HostPatchCompliance(_message.Message):
    __slots__ = ("host_id", "host_name", "status", "baseline", "patch_group", "scanned_at", "operation", "command_id", "reboot_pending", "counts", "missing_by_severity", "highest_level", "os_family", "provider", "pending_approval", "pending_undated", "next_approval_at")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class MissingBySeverityEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    HOST_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    PATCH_GROUP_FIELD_NUMBER: _ClassVar[int]
    SCANNED_AT_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    REBOOT_PENDING_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    MISSING_BY_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    HIGHEST_LEVEL_FIELD_NUMBER: _ClassVar[int]
    OS_FAMILY_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PENDING_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    PENDING_UNDATED_FIELD_NUMBER: _ClassVar[int]
    NEXT_APPROVAL_AT_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    host_name: str
    status: str
    baseline: str
    patch_group: str
    scanned_at: _timestamp_pb2.Timestamp
    operation: str
    command_id: str
    reboot_pending: bool
    counts: _containers.ScalarMap[str, int]
    missing_by_severity: _containers.ScalarMap[str, int]
    highest_level: str
    os_family: str
    provider: str
    pending_approval: int
    pending_undated: int
    next_approval_at: _timestamp_pb2.Timestamp
    def __init__(self, host_id: _Optional[str] = ..., host_name: _Optional[str] = ..., status: _Optional[str] = ..., baseline: _Optional[str] = ..., patch_group: _Optional[str] = ..., scanned_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., operation: _Optional[str] = ..., command_id: _Optional[str] = ..., reboot_pending: _Optional[bool] = ..., counts: _Optional[_Mapping[str, int]] = ..., missing_by_severity: _Optional[_Mapping[str, int]] = ..., highest_level: _Optional[str] = ..., os_family: _Optional[str] = ..., provider: _Optional[str] = ..., pending_approval: _Optional[int] = ..., pending_undated: _Optional[int] = ..., next_approval_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PendingUpdate(_message.Message):
    __slots__ = ("name", "arch", "installed_version", "candidate_version", "classification", "severity", "kb", "advisory_ids", "approved_at", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    INSTALLED_VERSION_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    KB_FIELD_NUMBER: _ClassVar[int]
    ADVISORY_IDS_FIELD_NUMBER: _ClassVar[int]
    APPROVED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    arch: str
    installed_version: str
    candidate_version: str
    classification: str
    severity: str
    kb: str
    advisory_ids: _containers.RepeatedScalarFieldContainer[str]
    approved_at: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, name: _Optional[str] = ..., arch: _Optional[str] = ..., installed_version: _Optional[str] = ..., candidate_version: _Optional[str] = ..., classification: _Optional[str] = ..., severity: _Optional[str] = ..., kb: _Optional[str] = ..., advisory_ids: _Optional[_Iterable[str]] = ..., approved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class PatchFinding(_message.Message):
    __slots__ = ("name", "state", "installed_version", "candidate_version", "arch", "classification", "severity", "compliance_level", "kb", "advisory_ids", "detail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    INSTALLED_VERSION_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    COMPLIANCE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    KB_FIELD_NUMBER: _ClassVar[int]
    ADVISORY_IDS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: str
    installed_version: str
    candidate_version: str
    arch: str
    classification: str
    severity: str
    compliance_level: str
    kb: str
    advisory_ids: _containers.RepeatedScalarFieldContainer[str]
    detail: str
    def __init__(self, name: _Optional[str] = ..., state: _Optional[str] = ..., installed_version: _Optional[str] = ..., candidate_version: _Optional[str] = ..., arch: _Optional[str] = ..., classification: _Optional[str] = ..., severity: _Optional[str] = ..., compliance_level: _Optional[str] = ..., kb: _Optional[str] = ..., advisory_ids: _Optional[_Iterable[str]] = ..., detail: _Optional[str] = ...) -> None: ...

class PatchComplianceResponse(_message.Message):
    __slots__ = ("hosts", "compliant", "non_compliant", "not_scanned", "missing_by_severity", "findings", "history", "pending_approval", "pending_undated", "pending_approval_hosts", "next_approval_at", "pending_updates")
    class MissingBySeverityEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    COMPLIANT_FIELD_NUMBER: _ClassVar[int]
    NON_COMPLIANT_FIELD_NUMBER: _ClassVar[int]
    NOT_SCANNED_FIELD_NUMBER: _ClassVar[int]
    MISSING_BY_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    PENDING_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    PENDING_UNDATED_FIELD_NUMBER: _ClassVar[int]
    PENDING_APPROVAL_HOSTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_APPROVAL_AT_FIELD_NUMBER: _ClassVar[int]
    PENDING_UPDATES_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[HostPatchCompliance]
    compliant: int
    non_compliant: int
    not_scanned: int
    missing_by_severity: _containers.ScalarMap[str, int]
    findings: _containers.RepeatedCompositeFieldContainer[PatchFinding]
    history: _containers.RepeatedCompositeFieldContainer[HostPatchCompliance]
    pending_approval: int
    pending_undated: int
    pending_approval_hosts: int
    next_approval_at: _timestamp_pb2.Timestamp
    pending_updates: _containers.RepeatedCompositeFieldContainer[PendingUpdate]
    def __init__(self, hosts: _Optional[_Iterable[_Union[HostPatchCompliance, _Mapping]]] = ..., compliant: _Optional[int] = ..., non_compliant: _Optional[int] = ..., not_scanned: _Optional[int] = ..., missing_by_severity: _Optional[_Mapping[str, int]] = ..., findings: _Optional[_Iterable[_Union[PatchFinding, _Mapping]]] = ..., history: _Optional[_Iterable[_Union[HostPatchCompliance, _Mapping]]] = ..., pending_approval: _Optional[int] = ..., pending_undated: _Optional[int] = ..., pending_approval_hosts: _Optional[int] = ..., next_approval_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pending_updates: _Optional[_Iterable[_Union[PendingUpdate, _Mapping]]] = ...) -> None: ...

class MaintenanceWindow(_message.Message):
    __slots__ = ("name", "schedule", "timezone", "duration_seconds", "cutoff_seconds", "cutoff_behavior", "start_date", "end_date", "offset_days", "enabled", "description", "created_at", "created_by", "next_run")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CUTOFF_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CUTOFF_BEHAVIOR_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_DAYS_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_FIELD_NUMBER: _ClassVar[int]
    name: str
    schedule: str
    timezone: str
    duration_seconds: int
    cutoff_seconds: int
    cutoff_behavior: str
    start_date: _timestamp_pb2.Timestamp
    end_date: _timestamp_pb2.Timestamp
    offset_days: int
    enabled: bool
    description: str
    created_at: _timestamp_pb2.Timestamp
    created_by: str
    next_run: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., schedule: _Optional[str] = ..., timezone: _Optional[str] = ..., duration_seconds: _Optional[int] = ..., cutoff_seconds: _Optional[int] = ..., cutoff_behavior: _Optional[str] = ..., start_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., offset_days: _Optional[int] = ..., enabled: _Optional[bool] = ..., description: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., next_run: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WindowTask(_message.Message):
    __slots__ = ("window", "id", "priority", "type", "target", "max_concurrency", "max_errors", "reboot", "argv", "script", "run_as", "timeout_seconds", "description", "author", "document", "parameters")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    MAX_ERRORS_FIELD_NUMBER: _ClassVar[int]
    REBOOT_FIELD_NUMBER: _ClassVar[int]
    ARGV_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    RUN_AS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    window: str
    id: str
    priority: int
    type: str
    target: Target
    max_concurrency: str
    max_errors: str
    reboot: str
    argv: _containers.RepeatedScalarFieldContainer[str]
    script: bytes
    run_as: str
    timeout_seconds: int
    description: str
    author: str
    document: str
    parameters: _containers.ScalarMap[str, str]
    def __init__(self, window: _Optional[str] = ..., id: _Optional[str] = ..., priority: _Optional[int] = ..., type: _Optional[str] = ..., target: _Optional[_Union[Target, _Mapping]] = ..., max_concurrency: _Optional[str] = ..., max_errors: _Optional[str] = ..., reboot: _Optional[str] = ..., argv: _Optional[_Iterable[str]] = ..., script: _Optional[bytes] = ..., run_as: _Optional[str] = ..., timeout_seconds: _Optional[int] = ..., description: _Optional[str] = ..., author: _Optional[str] = ..., document: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListWindowsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWindowsResponse(_message.Message):
    __slots__ = ("windows",)
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    windows: _containers.RepeatedCompositeFieldContainer[MaintenanceWindow]
    def __init__(self, windows: _Optional[_Iterable[_Union[MaintenanceWindow, _Mapping]]] = ...) -> None: ...

class GetWindowRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WindowDetail(_message.Message):
    __slots__ = ("window", "tasks")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    window: MaintenanceWindow
    tasks: _containers.RepeatedCompositeFieldContainer[WindowTask]
    def __init__(self, window: _Optional[_Union[MaintenanceWindow, _Mapping]] = ..., tasks: _Optional[_Iterable[_Union[WindowTask, _Mapping]]] = ...) -> None: ...

class DeleteWindowResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetWindowEnabledRequest(_message.Message):
    __slots__ = ("name", "enabled")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    name: str
    enabled: bool
    def __init__(self, name: _Optional[str] = ..., enabled: _Optional[bool] = ...) -> None: ...

class NextWindowRunsRequest(_message.Message):
    __slots__ = ("name", "window", "count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    window: MaintenanceWindow
    count: int
    def __init__(self, name: _Optional[str] = ..., window: _Optional[_Union[MaintenanceWindow, _Mapping]] = ..., count: _Optional[int] = ...) -> None: ...

class NextWindowRunsResponse(_message.Message):
    __slots__ = ("starts", "local_starts")
    STARTS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_STARTS_FIELD_NUMBER: _ClassVar[int]
    starts: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    local_starts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, starts: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., local_starts: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveWindowTaskRequest(_message.Message):
    __slots__ = ("window", "task_id")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    window: str
    task_id: str
    def __init__(self, window: _Optional[str] = ..., task_id: _Optional[str] = ...) -> None: ...

class RemoveWindowTaskResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WindowHistoryRequest(_message.Message):
    __slots__ = ("name", "limit")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    name: str
    limit: int
    def __init__(self, name: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class WindowTaskExecution(_message.Message):
    __slots__ = ("task_id", "type", "priority", "status", "command_id", "reason", "started_at", "finished_at", "counts", "target", "author", "refused_hosts")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    REFUSED_HOSTS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    type: str
    priority: int
    status: str
    command_id: str
    reason: str
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    counts: _containers.ScalarMap[str, int]
    target: str
    author: str
    refused_hosts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, task_id: _Optional[str] = ..., type: _Optional[str] = ..., priority: _Optional[int] = ..., status: _Optional[str] = ..., command_id: _Optional[str] = ..., reason: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., counts: _Optional[_Mapping[str, int]] = ..., target: _Optional[str] = ..., author: _Optional[str] = ..., refused_hosts: _Optional[_Iterable[str]] = ...) -> None: ...

class WindowExecution(_message.Message):
    __slots__ = ("id", "window", "scheduled_at", "status", "reason", "started_at", "finished_at", "ends_at", "controller", "tasks")
    ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    id: str
    window: str
    scheduled_at: _timestamp_pb2.Timestamp
    status: str
    reason: str
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    ends_at: _timestamp_pb2.Timestamp
    controller: str
    tasks: _containers.RepeatedCompositeFieldContainer[WindowTaskExecution]
    def __init__(self, id: _Optional[str] = ..., window: _Optional[str] = ..., scheduled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[str] = ..., reason: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., controller: _Optional[str] = ..., tasks: _Optional[_Iterable[_Union[WindowTaskExecution, _Mapping]]] = ...) -> None: ...

class WindowHistoryResponse(_message.Message):
    __slots__ = ("executions",)
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    executions: _containers.RepeatedCompositeFieldContainer[WindowExecution]
    def __init__(self, executions: _Optional[_Iterable[_Union[WindowExecution, _Mapping]]] = ...) -> None: ...

class User(_message.Message):
    __slots__ = ("name", "roles", "disabled", "created_at", "created_by", "last_login_at", "certificate_expires_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    LAST_LOGIN_AT_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    disabled: bool
    created_at: _timestamp_pb2.Timestamp
    created_by: str
    last_login_at: _timestamp_pb2.Timestamp
    certificate_expires_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., disabled: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., last_login_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., certificate_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateUserRequest(_message.Message):
    __slots__ = ("name", "roles", "token_ttl_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    TOKEN_TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    token_ttl_seconds: int
    def __init__(self, name: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., token_ttl_seconds: _Optional[int] = ...) -> None: ...

class CreateUserResponse(_message.Message):
    __slots__ = ("user", "token", "token_expires_at", "login_command")
    USER_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    LOGIN_COMMAND_FIELD_NUMBER: _ClassVar[int]
    user: User
    token: str
    token_expires_at: _timestamp_pb2.Timestamp
    login_command: str
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., token: _Optional[str] = ..., token_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., login_command: _Optional[str] = ...) -> None: ...

class IssueLoginTokenRequest(_message.Message):
    __slots__ = ("name", "token_ttl_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    token_ttl_seconds: int
    def __init__(self, name: _Optional[str] = ..., token_ttl_seconds: _Optional[int] = ...) -> None: ...

class ListUsersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListUsersResponse(_message.Message):
    __slots__ = ("users",)
    USERS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[User]
    def __init__(self, users: _Optional[_Iterable[_Union[User, _Mapping]]] = ...) -> None: ...

class UpdateUserRequest(_message.Message):
    __slots__ = ("name", "roles", "set_roles", "disabled", "set_disabled")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    SET_ROLES_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    SET_DISABLED_FIELD_NUMBER: _ClassVar[int]
    name: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    set_roles: bool
    disabled: bool
    set_disabled: bool
    def __init__(self, name: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., set_roles: _Optional[bool] = ..., disabled: _Optional[bool] = ..., set_disabled: _Optional[bool] = ...) -> None: ...

class DeleteUserRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteUserResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Role(_message.Message):
    __slots__ = ("name", "document_json", "builtin")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    BUILTIN_FIELD_NUMBER: _ClassVar[int]
    name: str
    document_json: str
    builtin: bool
    def __init__(self, name: _Optional[str] = ..., document_json: _Optional[str] = ..., builtin: _Optional[bool] = ...) -> None: ...

class ListRolesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRolesResponse(_message.Message):
    __slots__ = ("roles",)
    ROLES_FIELD_NUMBER: _ClassVar[int]
    roles: _containers.RepeatedCompositeFieldContainer[Role]
    def __init__(self, roles: _Optional[_Iterable[_Union[Role, _Mapping]]] = ...) -> None: ...

class GetRoleRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteRoleResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RenewOperatorCertificateRequest(_message.Message):
    __slots__ = ("csr_pem",)
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    csr_pem: bytes
    def __init__(self, csr_pem: _Optional[bytes] = ...) -> None: ...

class GetAuditEventRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class AuditEventDetail(_message.Message):
    __slots__ = ("event", "session", "command")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    event: AuditEvent
    session: SessionInfo
    command: CommandDetail
    def __init__(self, event: _Optional[_Union[AuditEvent, _Mapping]] = ..., session: _Optional[_Union[SessionInfo, _Mapping]] = ..., command: _Optional[_Union[CommandDetail, _Mapping]] = ...) -> None: ...

class ExportAuditRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExportAuditResponse(_message.Message):
    __slots__ = ("chunks", "events", "last_event_id", "last_hash")
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_HASH_FIELD_NUMBER: _ClassVar[int]
    chunks: int
    events: int
    last_event_id: int
    last_hash: str
    def __init__(self, chunks: _Optional[int] = ..., events: _Optional[int] = ..., last_event_id: _Optional[int] = ..., last_hash: _Optional[str] = ...) -> None: ...

class DocumentRequest(_message.Message):
    __slots__ = ("name", "content", "make_default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    MAKE_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    content: str
    make_default: bool
    def __init__(self, name: _Optional[str] = ..., content: _Optional[str] = ..., make_default: _Optional[bool] = ...) -> None: ...

class DocumentVersion(_message.Message):
    __slots__ = ("name", "version", "content", "kind", "description", "builtin", "default_version", "latest_version", "created_at", "created_by", "sha256")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    BUILTIN_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VERSION_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    content: str
    kind: str
    description: str
    builtin: bool
    default_version: int
    latest_version: int
    created_at: _timestamp_pb2.Timestamp
    created_by: str
    sha256: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., content: _Optional[str] = ..., kind: _Optional[str] = ..., description: _Optional[str] = ..., builtin: _Optional[bool] = ..., default_version: _Optional[int] = ..., latest_version: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class ListDocumentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListDocumentsResponse(_message.Message):
    __slots__ = ("documents",)
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[DocumentVersion]
    def __init__(self, documents: _Optional[_Iterable[_Union[DocumentVersion, _Mapping]]] = ...) -> None: ...

class GetDocumentRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ListDocumentVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[DocumentVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[DocumentVersion, _Mapping]]] = ...) -> None: ...

class DeleteDocumentResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: int
    def __init__(self, versions: _Optional[int] = ...) -> None: ...

class Association(_message.Message):
    __slots__ = ("id", "name", "document", "parameters", "target", "schedule", "max_concurrency", "max_errors", "author", "created_at", "next_run", "last_run", "check_interval_seconds", "status", "counts")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    MAX_ERRORS_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_FIELD_NUMBER: _ClassVar[int]
    CHECK_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    document: str
    parameters: _containers.ScalarMap[str, str]
    target: Target
    schedule: str
    max_concurrency: str
    max_errors: str
    author: str
    created_at: _timestamp_pb2.Timestamp
    next_run: _timestamp_pb2.Timestamp
    last_run: _timestamp_pb2.Timestamp
    check_interval_seconds: int
    status: str
    counts: _containers.ScalarMap[str, int]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., document: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ..., target: _Optional[_Union[Target, _Mapping]] = ..., schedule: _Optional[str] = ..., max_concurrency: _Optional[str] = ..., max_errors: _Optional[str] = ..., author: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_run: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_run: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., check_interval_seconds: _Optional[int] = ..., status: _Optional[str] = ..., counts: _Optional[_Mapping[str, int]] = ...) -> None: ...

class ListAssociationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListAssociationsResponse(_message.Message):
    __slots__ = ("associations",)
    ASSOCIATIONS_FIELD_NUMBER: _ClassVar[int]
    associations: _containers.RepeatedCompositeFieldContainer[Association]
    def __init__(self, associations: _Optional[_Iterable[_Union[Association, _Mapping]]] = ...) -> None: ...

class GetAssociationRequest(_message.Message):
    __slots__ = ("id", "limit")
    ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    id: str
    limit: int
    def __init__(self, id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class AssociationHostStatus(_message.Message):
    __slots__ = ("host_id", "host_name", "status", "last_applied_at", "last_command_id", "detail", "last_check_at")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    HOST_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_APPLIED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    LAST_CHECK_AT_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    host_name: str
    status: str
    last_applied_at: _timestamp_pb2.Timestamp
    last_command_id: str
    detail: str
    last_check_at: _timestamp_pb2.Timestamp
    def __init__(self, host_id: _Optional[str] = ..., host_name: _Optional[str] = ..., status: _Optional[str] = ..., last_applied_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_command_id: _Optional[str] = ..., detail: _Optional[str] = ..., last_check_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AssociationDetail(_message.Message):
    __slots__ = ("association", "hosts")
    ASSOCIATION_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    association: Association
    hosts: _containers.RepeatedCompositeFieldContainer[AssociationHostStatus]
    def __init__(self, association: _Optional[_Union[Association, _Mapping]] = ..., hosts: _Optional[_Iterable[_Union[AssociationHostStatus, _Mapping]]] = ...) -> None: ...

class DeleteAssociationResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AssociationRun(_message.Message):
    __slots__ = ("association_id", "command_id", "trigger", "started_at", "hosts", "status")
    ASSOCIATION_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    association_id: str
    command_id: str
    trigger: str
    started_at: _timestamp_pb2.Timestamp
    hosts: int
    status: str
    def __init__(self, association_id: _Optional[str] = ..., command_id: _Optional[str] = ..., trigger: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hosts: _Optional[int] = ..., status: _Optional[str] = ...) -> None: ...

class AssociationHistoryResponse(_message.Message):
    __slots__ = ("runs",)
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[AssociationRun]
    def __init__(self, runs: _Optional[_Iterable[_Union[AssociationRun, _Mapping]]] = ...) -> None: ...

class StartAutomationRequest(_message.Message):
    __slots__ = ("runbook", "parameters", "comment")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RUNBOOK_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    runbook: str
    parameters: _containers.ScalarMap[str, str]
    comment: str
    def __init__(self, runbook: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ..., comment: _Optional[str] = ...) -> None: ...

class AutomationStep(_message.Message):
    __slots__ = ("name", "kind", "status", "started_at", "finished_at", "outputs", "command_ids", "detail", "attempt")
    class OutputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    COMMAND_IDS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    status: str
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    outputs: _containers.ScalarMap[str, str]
    command_ids: _containers.RepeatedScalarFieldContainer[str]
    detail: str
    attempt: int
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., status: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., outputs: _Optional[_Mapping[str, str]] = ..., command_ids: _Optional[_Iterable[str]] = ..., detail: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class AutomationExecution(_message.Message):
    __slots__ = ("id", "runbook", "parameters", "status", "current_step", "started_by", "started_via", "created_at", "finished_at", "steps", "reason", "approvers", "approval_message")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    RUNBOOK_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_STEP_FIELD_NUMBER: _ClassVar[int]
    STARTED_BY_FIELD_NUMBER: _ClassVar[int]
    STARTED_VIA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    APPROVERS_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    runbook: str
    parameters: _containers.ScalarMap[str, str]
    status: str
    current_step: str
    started_by: str
    started_via: str
    created_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    steps: _containers.RepeatedCompositeFieldContainer[AutomationStep]
    reason: str
    approvers: _containers.RepeatedScalarFieldContainer[str]
    approval_message: str
    def __init__(self, id: _Optional[str] = ..., runbook: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ..., status: _Optional[str] = ..., current_step: _Optional[str] = ..., started_by: _Optional[str] = ..., started_via: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[AutomationStep, _Mapping]]] = ..., reason: _Optional[str] = ..., approvers: _Optional[_Iterable[str]] = ..., approval_message: _Optional[str] = ...) -> None: ...

class ListAutomationsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListAutomationsResponse(_message.Message):
    __slots__ = ("executions",)
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    executions: _containers.RepeatedCompositeFieldContainer[AutomationExecution]
    def __init__(self, executions: _Optional[_Iterable[_Union[AutomationExecution, _Mapping]]] = ...) -> None: ...

class GetAutomationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class AutomationApprovalRequest(_message.Message):
    __slots__ = ("id", "approve", "comment")
    ID_FIELD_NUMBER: _ClassVar[int]
    APPROVE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    approve: bool
    comment: str
    def __init__(self, id: _Optional[str] = ..., approve: _Optional[bool] = ..., comment: _Optional[str] = ...) -> None: ...

class ConfigObject(_message.Message):
    __slots__ = ("kind", "name", "spec_json", "origin")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    spec_json: str
    origin: str
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ..., spec_json: _Optional[str] = ..., origin: _Optional[str] = ...) -> None: ...

class ApplyConfigurationRequest(_message.Message):
    __slots__ = ("objects", "dry_run", "prune", "source")
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    PRUNE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.RepeatedCompositeFieldContainer[ConfigObject]
    dry_run: bool
    prune: bool
    source: str
    def __init__(self, objects: _Optional[_Iterable[_Union[ConfigObject, _Mapping]]] = ..., dry_run: _Optional[bool] = ..., prune: _Optional[bool] = ..., source: _Optional[str] = ...) -> None: ...

class ConfigFieldChange(_message.Message):
    __slots__ = ("path", "before_json", "after_json")
    PATH_FIELD_NUMBER: _ClassVar[int]
    BEFORE_JSON_FIELD_NUMBER: _ClassVar[int]
    AFTER_JSON_FIELD_NUMBER: _ClassVar[int]
    path: str
    before_json: str
    after_json: str
    def __init__(self, path: _Optional[str] = ..., before_json: _Optional[str] = ..., after_json: _Optional[str] = ...) -> None: ...

class ConfigChange(_message.Message):
    __slots__ = ("kind", "name", "action", "fields", "origin", "note")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    action: str
    fields: _containers.RepeatedCompositeFieldContainer[ConfigFieldChange]
    origin: str
    note: str
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ..., action: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[ConfigFieldChange, _Mapping]]] = ..., origin: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class ApplyConfigurationResponse(_message.Message):
    __slots__ = ("changes", "applied")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[ConfigChange]
    applied: bool
    def __init__(self, changes: _Optional[_Iterable[_Union[ConfigChange, _Mapping]]] = ..., applied: _Optional[bool] = ...) -> None: ...

class ExportConfigurationRequest(_message.Message):
    __slots__ = ("kinds",)
    KINDS_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kinds: _Optional[_Iterable[str]] = ...) -> None: ...

class ExportConfigurationResponse(_message.Message):
    __slots__ = ("objects",)
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.RepeatedCompositeFieldContainer[ConfigObject]
    def __init__(self, objects: _Optional[_Iterable[_Union[ConfigObject, _Mapping]]] = ...) -> None: ...

class AgentRelease(_message.Message):
    __slots__ = ("file_name", "version", "kind", "arch", "sha256", "size", "key_id", "added_at")
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ADDED_AT_FIELD_NUMBER: _ClassVar[int]
    file_name: str
    version: str
    kind: str
    arch: str
    sha256: str
    size: int
    key_id: str
    added_at: _timestamp_pb2.Timestamp
    def __init__(self, file_name: _Optional[str] = ..., version: _Optional[str] = ..., kind: _Optional[str] = ..., arch: _Optional[str] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ..., key_id: _Optional[str] = ..., added_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListAgentReleasesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListAgentReleasesResponse(_message.Message):
    __slots__ = ("releases", "key_id")
    RELEASES_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    releases: _containers.RepeatedCompositeFieldContainer[AgentRelease]
    key_id: str
    def __init__(self, releases: _Optional[_Iterable[_Union[AgentRelease, _Mapping]]] = ..., key_id: _Optional[str] = ...) -> None: ...

class UpdateAgentsRequest(_message.Message):
    __slots__ = ("target", "version", "max_concurrency", "max_errors", "timeout_seconds", "reconnect_timeout_seconds", "comment")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    MAX_ERRORS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RECONNECT_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    target: Target
    version: str
    max_concurrency: str
    max_errors: str
    timeout_seconds: int
    reconnect_timeout_seconds: int
    comment: str
    def __init__(self, target: _Optional[_Union[Target, _Mapping]] = ..., version: _Optional[str] = ..., max_concurrency: _Optional[str] = ..., max_errors: _Optional[str] = ..., timeout_seconds: _Optional[int] = ..., reconnect_timeout_seconds: _Optional[int] = ..., comment: _Optional[str] = ...) -> None: ...
