"""The wire under a session: one ``AgentService.SessionStream`` call, on a channel of its own.

:class:`~fleetops.agent.sessions.runner.SessionRunner` sees a session stream only through the
:class:`SessionStream` Protocol, opened by a :data:`StreamOpener`; tests give it an in-memory one.
Errors are reported in two kinds:

- :class:`StreamLost` (a ``ConnectionError``): the stream broke or could not be opened; the session
  survives and the runner opens a new stream (resume).
- :class:`SessionRejected`: the controller refuses the session for good (``NOT_FOUND``: it does not
  know the session, e.g. after a restart; ``PERMISSION_DENIED`` / ``UNAUTHENTICATED``): the runner
  hangs up the terminal at once.

Each stream gets a channel (HTTP/2 connection) of its own, with the mTLS credentials of the control
link, so a bulk ``cat`` never delays heartbeats or other sessions, and closing the stream closes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

import grpc

from fleetops.agent.link import CHANNEL_OPTIONS
from fleetops.agent.state import AgentState
from fleetops.common.errors import FleetopsError
from fleetops.common.rpc_client import error_from_rpc, read_message
from fleetops.v1 import agent_pb2, agent_pb2_grpc

#: Status codes that end a session at once instead of being resumed.
REJECTING_CODES = frozenset(
    {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED}
)


class StreamLost(ConnectionError):
    """The session stream broke (or could not be opened); a new one may resume the session."""


class SessionRejected(FleetopsError):
    """The controller refuses the session's stream for good (it does not know the session, or not us).

    Attributes:
        code: the gRPC status name (``NOT_FOUND``, ``PERMISSION_DENIED``, ``UNAUTHENTICATED``).
    """

    def __init__(self, message: str, hint: str = "", code: str = "") -> None:
        super().__init__(message, hint)
        self.code = code


class SessionStream(Protocol):
    """One bidirectional session stream to the controller (one call of ``AgentService.SessionStream``).

    ``send`` is called by one task at a time; ``receive`` by one task. Both raise :class:`StreamLost`
    or :class:`SessionRejected` when the stream fails.
    """

    async def send(self, message: agent_pb2.AgentSessionMessage) -> None:
        """Write one message (waits for HTTP/2 flow control)."""
        ...

    async def receive(self) -> agent_pb2.ControllerSessionMessage | None:
        """The next message from the controller; ``None`` when it ended the stream normally."""
        ...

    async def done_writing(self) -> None:
        """Half-close: the agent sends nothing more (the controller then ends the call). Never raises."""
        ...

    async def close(self) -> None:
        """Tear the stream and its channel down (cancels the call if it is still open). Idempotent."""
        ...


#: Opens a new session stream (a new channel each time). Raises StreamLost or SessionRejected.
StreamOpener = Callable[[], Awaitable[SessionStream]]


def stream_error(code: grpc.StatusCode, details: str, cause: grpc.RpcError | None = None) -> Exception:
    """The :class:`SessionRejected` or :class:`StreamLost` a call that ended with ``code`` stands for."""
    if code in REJECTING_CODES:
        if cause is not None:
            err = error_from_rpc(cause)
            return SessionRejected(err.message, err.hint, code.name)
        return SessionRejected(details or f"the controller answered {code.name}", code=code.name)
    return StreamLost(f"session stream ended with {code.name}: {details}")


class GrpcSessionStream:
    """A :class:`SessionStream` over a ``grpc.aio`` call; owns the channel the call runs on."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        call: grpc.aio.StreamStreamCall[agent_pb2.AgentSessionMessage, agent_pb2.ControllerSessionMessage],
    ) -> None:
        self._channel = channel
        self._call = call
        self._closed = False

    async def send(self, message: agent_pb2.AgentSessionMessage) -> None:
        try:
            await self._call.write(message)
        except grpc.aio.AioRpcError as exc:
            raise stream_error(exc.code(), exc.details() or "", exc) from exc
        except asyncio.InvalidStateError as exc:  # the call is over already: its status says why
            raise await self._ended() from exc

    async def receive(self) -> agent_pb2.ControllerSessionMessage | None:
        try:
            message = await read_message(self._call)
        except grpc.aio.AioRpcError as exc:
            raise stream_error(exc.code(), exc.details() or "", exc) from exc
        if message is None:
            code = await self._call.code()
            if code != grpc.StatusCode.OK:
                raise await self._ended()
            return None
        return message

    async def done_writing(self) -> None:
        try:
            await self._call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # the call is over anyway

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._call.cancel()
        await self._channel.close(grace=None)

    async def _ended(self) -> Exception:
        code = await self._call.code()
        details = await self._call.details()
        if code == grpc.StatusCode.OK:
            return StreamLost("the controller ended the session stream")
        return stream_error(code, details or "")


class GrpcStreamOpener:
    """Opens session streams to the controller of ``state``, each on a new mTLS channel.

    Credentials are read from the state directory on every open, so a renewed certificate is used
    by the next stream, as by the control link.
    """

    def __init__(self, state: AgentState) -> None:
        self._state = state

    async def __call__(self) -> GrpcSessionStream:
        identity = self._state.load()
        creds = grpc.ssl_channel_credentials(
            root_certificates=identity.ca_pem, private_key=identity.key_pem, certificate_chain=identity.cert_pem
        )
        channel = grpc.aio.secure_channel(identity.controller, creds, options=CHANNEL_OPTIONS)
        try:
            call = agent_pb2_grpc.AgentServiceStub(channel).SessionStream()
        except BaseException:
            await channel.close(grace=None)
            raise
        return GrpcSessionStream(channel, call)
