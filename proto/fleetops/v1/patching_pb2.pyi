import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PatchInstalledPackage(_message.Message):
    __slots__ = ("name", "version", "arch")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    arch: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., arch: _Optional[str] = ...) -> None: ...

class PatchUpdate(_message.Message):
    __slots__ = ("name", "candidate_version", "installed_version", "arch", "repository", "classification", "severity", "release_date", "advisory_ids", "kb", "title", "reboot_required")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    INSTALLED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    RELEASE_DATE_FIELD_NUMBER: _ClassVar[int]
    ADVISORY_IDS_FIELD_NUMBER: _ClassVar[int]
    KB_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    REBOOT_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    name: str
    candidate_version: str
    installed_version: str
    arch: str
    repository: str
    classification: str
    severity: str
    release_date: _timestamp_pb2.Timestamp
    advisory_ids: _containers.RepeatedScalarFieldContainer[str]
    kb: str
    title: str
    reboot_required: bool
    def __init__(self, name: _Optional[str] = ..., candidate_version: _Optional[str] = ..., installed_version: _Optional[str] = ..., arch: _Optional[str] = ..., repository: _Optional[str] = ..., classification: _Optional[str] = ..., severity: _Optional[str] = ..., release_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., advisory_ids: _Optional[_Iterable[str]] = ..., kb: _Optional[str] = ..., title: _Optional[str] = ..., reboot_required: _Optional[bool] = ...) -> None: ...

class PatchScanReport(_message.Message):
    __slots__ = ("os_family", "provider", "installed", "updates", "reboot_pending", "reboot_reasons", "scanned_at")
    OS_FAMILY_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    INSTALLED_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    REBOOT_PENDING_FIELD_NUMBER: _ClassVar[int]
    REBOOT_REASONS_FIELD_NUMBER: _ClassVar[int]
    SCANNED_AT_FIELD_NUMBER: _ClassVar[int]
    os_family: str
    provider: str
    installed: _containers.RepeatedCompositeFieldContainer[PatchInstalledPackage]
    updates: _containers.RepeatedCompositeFieldContainer[PatchUpdate]
    reboot_pending: bool
    reboot_reasons: _containers.RepeatedScalarFieldContainer[str]
    scanned_at: _timestamp_pb2.Timestamp
    def __init__(self, os_family: _Optional[str] = ..., provider: _Optional[str] = ..., installed: _Optional[_Iterable[_Union[PatchInstalledPackage, _Mapping]]] = ..., updates: _Optional[_Iterable[_Union[PatchUpdate, _Mapping]]] = ..., reboot_pending: _Optional[bool] = ..., reboot_reasons: _Optional[_Iterable[str]] = ..., scanned_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PatchInstallOutcome(_message.Message):
    __slots__ = ("name", "status", "version", "message", "at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    status: str
    version: str
    message: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., status: _Optional[str] = ..., version: _Optional[str] = ..., message: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PatchReport(_message.Message):
    __slots__ = ("operation", "scan", "outcomes", "reboot")
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    SCAN_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    REBOOT_FIELD_NUMBER: _ClassVar[int]
    operation: str
    scan: PatchScanReport
    outcomes: _containers.RepeatedCompositeFieldContainer[PatchInstallOutcome]
    reboot: str
    def __init__(self, operation: _Optional[str] = ..., scan: _Optional[_Union[PatchScanReport, _Mapping]] = ..., outcomes: _Optional[_Iterable[_Union[PatchInstallOutcome, _Mapping]]] = ..., reboot: _Optional[str] = ...) -> None: ...
