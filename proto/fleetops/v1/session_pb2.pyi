from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SessionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_KIND_TERMINAL: _ClassVar[SessionKind]
    SESSION_KIND_SSH: _ClassVar[SessionKind]
SESSION_KIND_TERMINAL: SessionKind
SESSION_KIND_SSH: SessionKind

class TerminalSize(_message.Message):
    __slots__ = ("cols", "rows")
    COLS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    cols: int
    rows: int
    def __init__(self, cols: _Optional[int] = ..., rows: _Optional[int] = ...) -> None: ...

class SessionInput(_message.Message):
    __slots__ = ("seq", "data", "resize")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    RESIZE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    data: bytes
    resize: TerminalSize
    def __init__(self, seq: _Optional[int] = ..., data: _Optional[bytes] = ..., resize: _Optional[_Union[TerminalSize, _Mapping]] = ...) -> None: ...

class SessionOutput(_message.Message):
    __slots__ = ("seq", "data", "exit", "activity")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    EXIT_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    seq: int
    data: bytes
    exit: SessionExit
    activity: SessionActivity
    def __init__(self, seq: _Optional[int] = ..., data: _Optional[bytes] = ..., exit: _Optional[_Union[SessionExit, _Mapping]] = ..., activity: _Optional[_Union[SessionActivity, _Mapping]] = ...) -> None: ...

class SessionActivity(_message.Message):
    __slots__ = ("terminal_opened", "terminal_output", "terminal_resized", "audit")
    TERMINAL_OPENED_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_RESIZED_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    terminal_opened: TerminalOpened
    terminal_output: bytes
    terminal_resized: TerminalSize
    audit: ActivityAudit
    def __init__(self, terminal_opened: _Optional[_Union[TerminalOpened, _Mapping]] = ..., terminal_output: _Optional[bytes] = ..., terminal_resized: _Optional[_Union[TerminalSize, _Mapping]] = ..., audit: _Optional[_Union[ActivityAudit, _Mapping]] = ...) -> None: ...

class TerminalOpened(_message.Message):
    __slots__ = ("term", "size", "command")
    TERM_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    term: str
    size: TerminalSize
    command: str
    def __init__(self, term: _Optional[str] = ..., size: _Optional[_Union[TerminalSize, _Mapping]] = ..., command: _Optional[str] = ...) -> None: ...

class ActivityAudit(_message.Message):
    __slots__ = ("action", "details_json")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    action: str
    details_json: str
    def __init__(self, action: _Optional[str] = ..., details_json: _Optional[str] = ...) -> None: ...

class SessionExit(_message.Message):
    __slots__ = ("exit_code", "reason", "message")
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    exit_code: int
    reason: str
    message: str
    def __init__(self, exit_code: _Optional[int] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class SessionAttach(_message.Message):
    __slots__ = ("session_id", "received_seq", "refused", "shell")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_SEQ_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    SHELL_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    received_seq: int
    refused: ErrorDetail
    shell: str
    def __init__(self, session_id: _Optional[str] = ..., received_seq: _Optional[int] = ..., refused: _Optional[_Union[ErrorDetail, _Mapping]] = ..., shell: _Optional[str] = ...) -> None: ...

class ErrorDetail(_message.Message):
    __slots__ = ("kind", "message", "hint")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HINT_FIELD_NUMBER: _ClassVar[int]
    kind: str
    message: str
    hint: str
    def __init__(self, kind: _Optional[str] = ..., message: _Optional[str] = ..., hint: _Optional[str] = ...) -> None: ...
