"""Domain errors -> gRPC status, in one table. The client maps them back (fleetops.common.rpc_client)."""

from __future__ import annotations

import logging
from typing import NoReturn

import grpc

from fleetops.common import errors
from fleetops.common.rpc_client import ERROR_CLASS_KEY, HINT_KEY

log = logging.getLogger(__name__)

STATUS_BY_ERROR: tuple[tuple[type[errors.FleetopsError], grpc.StatusCode], ...] = (
    (errors.InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.InternalError, grpc.StatusCode.INTERNAL),
)


def status_for(exc: errors.FleetopsError) -> grpc.StatusCode:
    for cls, code in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.UNKNOWN


async def abort(context: grpc.aio.ServicerContext, exc: errors.FleetopsError) -> NoReturn:
    """End the call with the status for ``exc``, its message, hint and class name."""
    await context.abort(
        status_for(exc),
        exc.message,
        trailing_metadata=((HINT_KEY, exc.hint.encode()), (ERROR_CLASS_KEY, type(exc).__name__)),
    )
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover
