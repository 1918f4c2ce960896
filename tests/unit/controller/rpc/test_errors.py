"""Domain errors -> gRPC status: the one table, what abort sends, and what the client makes of it."""

from __future__ import annotations

import grpc
import pytest

from fleetops.common import errors
from fleetops.common.limits import ERROR_HINT_BYTES, ERROR_MESSAGE_BYTES
from fleetops.common.rpc_client import ERROR_CLASS_KEY, HINT_KEY, REVOKED_KEY, error_from_rpc
from fleetops.controller.rpc.errors import RETRY_AFTER_KEY, abort, status_for

TABLE = [
    (errors.InvalidInput("bad"), grpc.StatusCode.INVALID_ARGUMENT),
    (errors.SelectorError("unexpected ')'", "env=prod)", 8), grpc.StatusCode.INVALID_ARGUMENT),
    (errors.CertificateRequestError("bad CSR"), grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound("no such host: web-9"), grpc.StatusCode.NOT_FOUND),
    (errors.Conflict("exists"), grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Unauthenticated("who?"), grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied("no"), grpc.StatusCode.PERMISSION_DENIED),
    (errors.RateLimited("slow down", retry_after=2.5), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unavailable("later"), grpc.StatusCode.UNAVAILABLE),
    (errors.InternalError("bug"), grpc.StatusCode.INTERNAL),
    # Classes outside the table (the bare base classes) are UNKNOWN, never OK.
    (errors.AuthError("auth"), grpc.StatusCode.UNKNOWN),
    (errors.FleetopsError("what?"), grpc.StatusCode.UNKNOWN),
]


@pytest.mark.parametrize(("exc", "code"), TABLE, ids=[type(e).__name__ for e, _ in TABLE])
def test_each_error_class_has_its_status(exc: errors.FleetopsError, code: grpc.StatusCode) -> None:
    assert status_for(exc) is code


async def aborted(context, exc: errors.FleetopsError, **kwargs: bool):
    ctx = context(None)
    with pytest.raises(context.Aborted):
        await abort(ctx, exc, **kwargs)
    return ctx


async def test_abort_sends_status_message_hint_and_class(context) -> None:
    ctx = await aborted(context, errors.NotFound("no such host: web-9", "list hosts with opsctl hosts list"))
    assert (ctx.code, ctx.details) == (grpc.StatusCode.NOT_FOUND, "no such host: web-9")
    assert ctx.trailing == {HINT_KEY: b"list hosts with opsctl hosts list", ERROR_CLASS_KEY: "NotFound"}


async def test_a_throttled_call_says_when_to_retry_in_whole_seconds(context) -> None:
    ctx = await aborted(context, errors.RateLimited("too many attempts", "wait", retry_after=0.2))
    assert ctx.trailing[RETRY_AFTER_KEY] == "1"
    ctx = await aborted(context, errors.RateLimited("too many attempts", "wait", retry_after=61.1))
    assert ctx.trailing[RETRY_AFTER_KEY] == "62"


async def test_only_an_explicit_revocation_carries_the_marker(context) -> None:
    assert REVOKED_KEY not in (await aborted(context, errors.PermissionDenied("deregistered"))).trailing
    ctx = await aborted(context, errors.PermissionDenied("deregistered"), revoked=True)
    assert ctx.trailing[REVOKED_KEY] == "1"


async def test_a_huge_message_and_hint_are_cut_to_fit_in_headers(context) -> None:
    ctx = await aborted(context, errors.InvalidInput("é" * 10_000, "h" * 10_000))
    assert 0 < len(ctx.details.encode()) <= ERROR_MESSAGE_BYTES
    assert 0 < len(ctx.trailing[HINT_KEY]) <= ERROR_HINT_BYTES
    ctx.details.encode().decode()  # cut on a character boundary


@pytest.mark.parametrize(("exc", "code"), TABLE[:-2], ids=[type(e).__name__ for e, _ in TABLE[:-2]])
async def test_the_client_maps_the_status_back_to_the_same_class(
    context, exc: errors.FleetopsError, code: grpc.StatusCode
) -> None:
    ctx = await aborted(context, exc)
    failure = grpc.aio.AioRpcError(
        ctx.code, grpc.aio.Metadata(), grpc.aio.Metadata(*ctx.trailing.items()), details=ctx.details
    )
    back = error_from_rpc(failure)
    # A selector error's caret drawing is in its message already: the client rebuilds a plain InvalidInput.
    expected = errors.InvalidInput if isinstance(exc, errors.SelectorError) else type(exc)
    assert type(back) is expected
    assert (back.message, back.hint) == (exc.message, exc.hint)
