from fleetops.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OperatorLoginRequest(_message.Message):
    __slots__ = ("token_id", "token_secret", "csr_pem")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_SECRET_FIELD_NUMBER: _ClassVar[int]
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    token_secret: str
    csr_pem: bytes
    def __init__(self, token_id: _Optional[str] = ..., token_secret: _Optional[str] = ..., csr_pem: _Optional[bytes] = ...) -> None: ...

class OperatorCertificate(_message.Message):
    __slots__ = ("operator", "certificate_pem", "ca_pem")
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_PEM_FIELD_NUMBER: _ClassVar[int]
    operator: str
    certificate_pem: bytes
    ca_pem: bytes
    def __init__(self, operator: _Optional[str] = ..., certificate_pem: _Optional[bytes] = ..., ca_pem: _Optional[bytes] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("activation_id", "activation_code", "csr_pem", "inventory", "tags", "name")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACTIVATION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_CODE_FIELD_NUMBER: _ClassVar[int]
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    INVENTORY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    activation_id: str
    activation_code: str
    csr_pem: bytes
    inventory: _common_pb2.Inventory
    tags: _containers.ScalarMap[str, str]
    name: str
    def __init__(self, activation_id: _Optional[str] = ..., activation_code: _Optional[str] = ..., csr_pem: _Optional[bytes] = ..., inventory: _Optional[_Union[_common_pb2.Inventory, _Mapping]] = ..., tags: _Optional[_Mapping[str, str]] = ..., name: _Optional[str] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("host_id", "certificate_pem", "ca_pem", "hostname", "tags")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_PEM_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    certificate_pem: bytes
    ca_pem: bytes
    hostname: str
    tags: _containers.ScalarMap[str, str]
    def __init__(self, host_id: _Optional[str] = ..., certificate_pem: _Optional[bytes] = ..., ca_pem: _Optional[bytes] = ..., hostname: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...
