"""When the agent gives up for good: only on the controller's explicit revocation (issue 11)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from fleetops.agent import link as link_module
from fleetops.agent.backoff import Backoff
from fleetops.agent.link import ControllerLink, HostRevoked, _raise_status
from fleetops.agent.state import AgentIdentity
from fleetops.common.rpc_client import REVOKED_KEY


class FakeState:
    directory = Path("/nonexistent")

    def load(self) -> AgentIdentity:
        now = datetime.now(UTC)
        return AgentIdentity("h-1", "127.0.0.1:1", "web-1", b"", b"", b"", now, now + timedelta(days=1))


def rpc_error(code: grpc.StatusCode, *, revoked: bool = False) -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata(*((REVOKED_KEY, "1"),) if revoked else ())
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details="refused")


def make_link(failures: list[BaseException], stop_after: int) -> tuple[ControllerLink, list[int]]:
    link = ControllerLink(FakeState(), backoff=Backoff(base=0.001, cap=0.001, rng=random.Random(1)))  # type: ignore[arg-type]  # a fake state
    attempts: list[int] = []

    async def session(identity: Any) -> None:
        attempts.append(1)
        if len(attempts) >= stop_after:
            link.stop()
        raise failures[min(len(attempts), len(failures)) - 1]

    link._session = session  # type: ignore[method-assign]  # the dial is what is faked here
    return link, attempts


@pytest.mark.parametrize(
    "failure",
    [
        rpc_error(grpc.StatusCode.UNAUTHENTICATED),  # e.g. a store refusing the controller, mapped wrongly
        rpc_error(grpc.StatusCode.PERMISSION_DENIED),
        rpc_error(grpc.StatusCode.NOT_FOUND),
        rpc_error(grpc.StatusCode.INTERNAL),
        ConnectionError("stream ended with UNAUTHENTICATED: refused"),
        ValueError("a malformed answer"),
    ],
    ids=lambda e: type(e).__name__ + (f"-{e.code().name}" if isinstance(e, grpc.aio.AioRpcError) else ""),
)
async def test_refusals_without_the_marker_are_retried(failure: BaseException) -> None:
    link, attempts = make_link([failure], stop_after=5)
    await link.run()  # returns when stopped; never raises HostRevoked
    assert len(attempts) == 5


async def test_the_revocation_marker_stops_the_agent() -> None:
    link, attempts = make_link([rpc_error(grpc.StatusCode.UNAUTHENTICATED, revoked=True)], stop_after=99)
    with pytest.raises(HostRevoked, match="refused"):
        await link.run()
    assert len(attempts) == 1


class FakeCall:
    def __init__(self, code: grpc.StatusCode, trailing: tuple[tuple[str, str], ...]) -> None:
        self._code, self._trailing = code, trailing

    async def code(self) -> grpc.StatusCode:
        return self._code

    async def details(self) -> str:
        return "host h-1 was deregistered"

    async def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._trailing


async def test_the_stream_status_means_revoked_only_with_the_marker() -> None:
    with pytest.raises(ConnectionError):
        await _raise_status(FakeCall(grpc.StatusCode.UNAUTHENTICATED, ()))  # type: ignore[arg-type]  # a fake call
    with pytest.raises(HostRevoked, match="deregistered"):
        await _raise_status(FakeCall(grpc.StatusCode.UNAUTHENTICATED, ((REVOKED_KEY, "1"),)))  # type: ignore[arg-type]  # a fake call
    await _raise_status(FakeCall(grpc.StatusCode.OK, ()))  # type: ignore[arg-type]  # a fake call


def test_exit_status_is_the_one_the_unit_will_not_restart() -> None:
    assert link_module.EXIT_REVOKED == 78
