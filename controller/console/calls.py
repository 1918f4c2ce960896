"""Operator calls made by the console, through the same servicer as gRPC's.

A page calls the :class:`~fleetops.controller.rpc.operator.servicer.OperatorServicer` method a
CLI command would, with a :class:`ConsoleContext` in place of gRPC's: it presents the session's
certificate as the TLS layer presents a client's, so authentication (the operator still exists,
is enabled, the certificate is theirs), authorization and the audit event are the API's own.
A refusal or error comes back as :class:`CallFailed` with the API's status, message and hint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, NoReturn

import grpc
from starlette.requests import HTTPConnection

from fleetops.common.rpc_client import HINT_KEY


def client_address(connection: HTTPConnection) -> str:
    """The browser's address, as calls and audit events record it."""
    return connection.client.host if connection.client else "unknown"


class CallFailed(Exception):
    """An operator call the API refused or could not do: its status, message and hint."""

    def __init__(self, code: grpc.StatusCode, message: str, hint: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


class ConsoleContext:
    """What an operator call reads of its ``grpc.aio.ServicerContext``, for a call from a browser."""

    def __init__(self, certificate_pem: str, address: str) -> None:
        self._pem = certificate_pem.encode()
        self._address = address

    def peer(self) -> str:
        return f"console:{self._address}"

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"x509_pem_cert": [self._pem]}

    def invocation_metadata(self) -> tuple[()]:
        return ()

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Sequence[tuple[str, Any]] = ()
    ) -> NoReturn:
        hint = next((v for k, v in trailing_metadata if k == HINT_KEY), b"")
        raise CallFailed(code, details, hint.decode() if isinstance(hint, bytes) else str(hint))

    def set_trailing_metadata(self, metadata: Sequence[tuple[str, Any]]) -> None:
        pass

    def cancelled(self) -> bool:
        return False

    def done(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None


class Calls:
    """Operator calls as the session's operator (*servicer*: the controller's OperatorServicer)."""

    def __init__(self, servicer: Any, certificate_pem: str, address: str) -> None:
        self._servicer = servicer
        self._context = ConsoleContext(certificate_pem, address)

    async def unary(self, method: str, request: Any) -> Any:
        """The response of *method*; raises :class:`CallFailed`."""
        return await getattr(self._servicer, method)(request, self._context)

    def stream(self, method: str, request: Any) -> AsyncIterator[Any]:
        """The responses of a server-streaming *method*; raises :class:`CallFailed`."""
        stream: AsyncIterator[Any] = getattr(self._servicer, method)(request, self._context)
        return stream
