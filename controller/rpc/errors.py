"""Domain errors -> gRPC status, in one table. The client maps them back (fleetops.common.rpc_client)."""

from __future__ import annotations

import logging
import math
from typing import NoReturn

import grpc

from fleetops.common import errors
from fleetops.common.limits import ERROR_HINT_BYTES, ERROR_MESSAGE_BYTES, truncate_utf8
from fleetops.common.rpc_client import ERROR_CLASS_KEY, HINT_KEY, REVOKED_KEY

log = logging.getLogger(__name__)

#: Trailing metadata of a throttled call: whole seconds until an attempt will be accepted again.
RETRY_AFTER_KEY = "retry-after"

STATUS_BY_ERROR: tuple[tuple[type[errors.FleetopsError], grpc.StatusCode], ...] = (
    (errors.InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.RateLimited, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.InternalError, grpc.StatusCode.INTERNAL),
)


def status_for(exc: errors.FleetopsError) -> grpc.StatusCode:
    for cls, code in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.UNKNOWN


async def abort(context: grpc.aio.ServicerContext, exc: errors.FleetopsError, *, revoked: bool = False) -> NoReturn:
    """End the call with the status for ``exc``, its message, hint and class name.

    ``revoked`` adds the explicit revocation marker (``REVOKED_KEY``): only for a host the fleet
    refuses for good (deregistered, unknown, its state contradicting its certificate), never for
    anything else: an agent stops on it.

    Message and hint are cut to a few KiB: they travel as HTTP/2 headers, and one echoing a
    caller's huge input would exceed the peer's metadata limit and hide the error itself.
    A :class:`~fleetops.common.errors.RateLimited` also carries ``retry-after`` (whole seconds).
    """
    trailing: tuple[tuple[str, str | bytes], ...] = (
        (HINT_KEY, truncate_utf8(exc.hint, ERROR_HINT_BYTES).encode()),
        (ERROR_CLASS_KEY, type(exc).__name__),
    )
    if isinstance(exc, errors.RateLimited):
        trailing += ((RETRY_AFTER_KEY, str(max(1, math.ceil(exc.retry_after)))),)
    if revoked:
        trailing += ((REVOKED_KEY, "1"),)
    await context.abort(status_for(exc), truncate_utf8(exc.message, ERROR_MESSAGE_BYTES), trailing_metadata=trailing)
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover
