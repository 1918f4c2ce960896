"""Client side of the wire: gRPC errors back into the fleetops exception tree, addresses, stream reads."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, TypeVar, cast

import grpc

from fleetops.common import errors

HINT_KEY = "fleetops-hint-bin"
ERROR_CLASS_KEY = "fleetops-error"
#: Trailing metadata the controller adds when it refuses a host for good: deregistered, unknown to
#: it, or speaking for another host than its certificate names. With the stream's
#: Disconnect{revoked}, the only signal on which an agent stops for good: any other refusal is
#: retried with backoff.
REVOKED_KEY = "fleetops-host-revoked"

#: What ``read()`` of a ``grpc.aio`` streaming call returns once the server has ended the stream.
EOF: Final[object] = grpc.aio.EOF  # type: ignore[attr-defined]  # grpc-stubs lack aio.EOF

_Response = TypeVar("_Response")


def trailing_metadata(exc: grpc.RpcError) -> list[tuple[str, str | bytes]]:
    """The (key, value) pairs of a failed call's trailing metadata; none if it carries none.

    Works for synchronous and ``grpc.aio`` errors alike: at runtime both yield pairs (a namedtuple,
    or the items of ``grpc.aio.Metadata``).
    """
    trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    pairs: Iterable[tuple[str, str | bytes]] = trailing or ()  # type: ignore[assignment]  # grpc-stubs: items are _Metadatum
    return list(pairs)


def is_revocation(exc: grpc.RpcError) -> bool:
    """Whether a failed call carries the controller's explicit revocation marker (:data:`REVOKED_KEY`)."""
    return any(key == REVOKED_KEY for key, _ in trailing_metadata(exc))


async def read_message(
    call: grpc.aio.StreamStreamCall[Any, _Response] | grpc.aio.UnaryStreamCall[Any, _Response],
) -> _Response | None:
    """The next message of a streaming call, or ``None`` once the server has ended the stream.

    Raises:
        grpc.aio.AioRpcError: the call failed.
    """
    message = await call.read()
    if message is EOF:
        return None
    # grpc-stubs declare read() as ``object | _Response`` (EOF's type is ``object``): anything but EOF is a response.
    return cast(_Response, message)


_BY_CODE: dict[grpc.StatusCode, type[errors.FleetopsError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidInput,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: errors.Conflict,
    grpc.StatusCode.ALREADY_EXISTS: errors.Conflict,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.Unavailable,
    grpc.StatusCode.INTERNAL: errors.InternalError,
}


def split_host_port(address: str) -> tuple[str, int]:
    """``"host:port"`` or ``"[v6]:port"`` -> (host, port).

    Raises:
        InvalidInput: no port, or not a number in 1..65535.
    """
    host, sep, port = address.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise errors.InvalidInput(f"bad controller address {address!r}", "use HOST:PORT, e.g. fleet.example.com:7443")
    return host.strip("[]"), int(port)


def error_from_rpc(exc: grpc.RpcError, peer: str = "the controller") -> errors.FleetopsError:
    """The fleetops error a failed call stands for, with the server's message and hint."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = (exc.details() if hasattr(exc, "details") else "") or ""
    hint = ""
    class_name = ""
    for key, value in trailing_metadata(exc):
        if key == HINT_KEY:
            hint = value.decode() if isinstance(value, bytes) else str(value)
        elif key == ERROR_CLASS_KEY:
            class_name = str(value)
    if code == grpc.StatusCode.UNAVAILABLE and not class_name:
        # Transport-level: the controller is down, unreachable, or refused our TLS handshake.
        return errors.Unavailable(
            f"cannot reach {peer}: {details}",
            hint or "check the address, that the controller is running, and that this certificate is still valid",
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return errors.Unavailable(f"{peer} did not answer in time", "retry; check the controller's load and logs")
    cls = getattr(errors, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.FleetopsError)) or cls is errors.SelectorError:
        cls = _BY_CODE.get(code, errors.FleetopsError)
    return cls(details or f"{peer} answered {code.name}", hint)
