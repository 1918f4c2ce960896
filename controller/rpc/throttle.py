"""The enrollment port's throttle, as gRPC sees it: who the caller is (its address) and the guard.

The token buckets and the refusal audit are domain objects (``fleetops.controller.throttle``);
this adapter only turns ``context.peer()`` into a source key and runs one call under them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from fleetops.common.errors import FleetopsError
from fleetops.controller.rpc.errors import abort
from fleetops.controller.throttle import EnrollmentThrottle, RefusalLog, source_key

T = TypeVar("T")


def peer_address(peer: str) -> str:
    """The address in a gRPC peer string: ``ipv4:1.2.3.4:5`` -> ``1.2.3.4``, ``ipv6:[::1]:5`` -> ``::1``."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or rest
    if kind == "ipv6":
        host = rest.rpartition(":")[0] if rest.startswith("[") else rest
        return host.strip("[]").split("%", 1)[0]
    return peer


def source_of(context: grpc.aio.ServicerContext) -> str:
    """The key the caller is throttled and its refusals counted by."""
    return source_key(peer_address(context.peer() or "unknown"))


async def guarded(
    context: grpc.aio.ServicerContext,
    throttle: EnrollmentThrottle,
    refusals: RefusalLog,
    *,
    what: str,
    action: str,
    actor: str,
    target: str,
    call: Callable[[], Awaitable[T]],
    details: dict[str, Any] | None = None,
) -> T:
    """Run ``call`` for an unauthenticated caller: throttled by source, every refusal audited (bounded).

    On any refusal the call is aborted with its status (RESOURCE_EXHAUSTED + ``retry-after`` when
    throttled).
    """
    source = source_of(context)
    try:
        throttle.admit(source, what)
        return await call()
    except FleetopsError as exc:
        await refusals.refused(
            source=source,
            actor=actor,
            action=action,
            target=target,
            error=exc,
            details={"peer": context.peer() or "", **(details or {})},
        )
        await abort(context, exc)
