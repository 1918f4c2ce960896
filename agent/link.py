"""The agent's one outbound connection: dial, hello, heartbeats, renewal, reconnect.

This layer knows nothing of work. Controller messages other than the link's own (welcome,
heartbeat ack, disconnect) go to handlers registered by message type.

Reconnects use exponential backoff with full jitter and build a new channel each attempt, so the
controller's name is resolved again every time (a moved or fail-over controller is found).
The agent never listens on a socket.

Only an explicit revocation stops the agent for good (:class:`HostRevoked`, exit 78, which the
systemd unit does not restart): a ``Disconnect`` with ``revoked`` set on the stream, or a refusal
carrying the controller's revocation marker (``fleetops.common.rpc_client.REVOKED_KEY``), which
it sends only for a deregistered or unknown host (or a state directory contradicting the
certificate). Every other error, ``UNAUTHENTICATED`` and ``PERMISSION_DENIED`` included (a
controller in trouble, a proxy, a bug), is retried with backoff, forever: one bad answer must
never take a fleet down.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import grpc

from fleetops.agent.backoff import Backoff
from fleetops.agent.inventory import Inventory, collect_inventory
from fleetops.agent.state import AgentIdentity, AgentState
from fleetops.agent.version import AGENT_VERSION
from fleetops.common import limits
from fleetops.common.errors import FleetopsError
from fleetops.common.rpc_client import REVOKED_KEY, error_from_rpc, is_revocation, read_message
from fleetops.common.wire import inventory_to_proto
from fleetops.v1 import agent_pb2, agent_pb2_grpc

#: The control stream (AgentService.Connect) as the agent sees it.
_ControlCall = grpc.aio.StreamStreamCall[agent_pb2.AgentMessage, agent_pb2.ControllerMessage]

log = logging.getLogger(__name__)

# fleetops-agent's exit status when the controller refused the host for good (see cli.py).
EXIT_REVOKED = 78

CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # We run our own backoff across fresh channels; grpc's own would hide the re-resolution.
    ("grpc.enable_retries", 0),
    # Message sizes from the one table (common/limits.py): we receive at least what the controller
    # may send us, and never send what its listener would refuse.
    *limits.channel_options(receive=limits.AGENT_RECEIVE_BYTES, send=limits.CONTROLLER_RECEIVE_BYTES),
)
# Messages queued for the stream at most (output chunks are up to 64 KiB each).
OUTBOX_SIZE = 64
# How often the inventory is re-collected to look for changes (sent only when it changed).
INVENTORY_CHANGE_CHECK = 60.0
# After a failed attempt, log again at warning level only after this long (no log flood).
QUIET_PERIOD = 60.0

Handler = Callable[[agent_pb2.ControllerMessage], Awaitable[None]]


class HostRevoked(FleetopsError):
    """The controller explicitly revoked this host (or its certificate expired): do not retry."""


class _Reconnect(Exception):
    """End the current session and dial again at once (after a certificate renewal)."""


class ControllerLink:
    def __init__(
        self,
        state: AgentState,
        *,
        backoff: Backoff | None = None,
        inventory_source: Callable[[], Inventory] = collect_inventory,
    ) -> None:
        self._state = state
        self._backoff = backoff or Backoff()
        self._inventory_source = inventory_source
        self._handlers: dict[str, Handler] = {}
        self._connect_callbacks: list[Callable[[], Awaitable[None]]] = []
        self._stop = asyncio.Event()
        self.connected = asyncio.Event()
        self._last_inventory: str = ""
        self._outbox: asyncio.Queue[agent_pb2.AgentMessage] | None = None
        self._session_ended: asyncio.Event | None = None
        #: The SSH host public key line sent in every Hello ("": this agent serves no SSH).
        self.ssh_host_key = ""

    def register_handler(self, kind: str, handler: Handler) -> None:
        """Route controller messages whose ``body`` is ``kind`` to ``handler``."""
        self._handlers[kind] = handler

    def on_connected(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Call ``callback`` after every (re)connect, once the controller welcomed us."""
        self._connect_callbacks.append(callback)

    async def send(self, message: agent_pb2.AgentMessage) -> None:
        """Queue ``message`` on the current stream; waits while the outbox is full (backpressure).

        Raises:
            ConnectionError: not connected, or the session ended while waiting.
        """
        outbox, ended = self._outbox, self._session_ended
        if outbox is None or ended is None or ended.is_set():
            raise ConnectionError("not connected to the controller")
        if not outbox.full():
            outbox.put_nowait(message)
            return
        put = asyncio.ensure_future(outbox.put(message))
        end = asyncio.ensure_future(ended.wait())
        try:
            await asyncio.wait({put, end}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            end.cancel()
            if not put.done():
                put.cancel()
        if not put.done() or put.cancelled():
            raise ConnectionError("the link to the controller went down")

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Stay connected until ``stop()``.

        Raises:
            HostRevoked: the controller refused this host's identity; retrying cannot help.
        """
        failures_since_log = 0
        last_warning = 0.0
        while not self._stop.is_set():
            identity = self._state.load()
            self._check_certificate(identity)
            try:
                await self._session(identity)
                failures_since_log = 0
                continue  # a clean end (renewal, controller restart): dial again at once
            except _Reconnect:
                continue
            except HostRevoked:
                raise
            except grpc.aio.AioRpcError as exc:
                if is_revocation(exc):
                    err = error_from_rpc(exc)
                    raise HostRevoked(err.message, err.hint or "register this host again") from exc
                reason = f"{exc.code().name}: {exc.details()}"
            except (TimeoutError, OSError, ConnectionError) as exc:
                reason = repr(exc)
            except Exception as exc:
                # Whatever else went wrong (a malformed answer, a bug on either side) is retried too.
                log.exception("the link to the controller failed unexpectedly")
                reason = repr(exc)
            finally:
                self.connected.clear()
                self._outbox = None
                if self._session_ended is not None:
                    self._session_ended.set()
            delay = self._backoff.next_delay()
            failures_since_log += 1
            now = time.monotonic()
            if now - last_warning >= QUIET_PERIOD:
                log.warning(
                    "controller %s unreachable (%s); retrying in %.1fs%s",
                    identity.controller,
                    reason,
                    delay,
                    f" ({failures_since_log} failed attempts)" if failures_since_log > 1 else "",
                )
                last_warning = now
            else:
                log.debug("attempt %d failed (%s); retrying in %.1fs", self._backoff.attempt, reason, delay)
            try:
                await asyncio.wait_for(self._stop.wait(), delay)
            except TimeoutError:
                pass

    def _check_certificate(self, identity: AgentIdentity) -> None:
        if datetime.now(UTC) < identity.not_after:
            return
        # agent.json says expired; confirm on the certificate itself before giving up for good
        # (a crash in the middle of a renewal can leave agent.json one certificate behind).
        from fleetops.common import pki

        cert = pki.load_cert(identity.cert_pem)
        if datetime.now(UTC) >= cert.not_valid_after_utc:
            raise HostRevoked(
                f"this host's certificate expired at {cert.not_valid_after_utc:%Y-%m-%d %H:%M}Z while the agent "
                "could not renew it",
                "register the host again: fleetops-agent register --force ...",
            )

    async def _session(self, identity: AgentIdentity) -> None:
        creds = grpc.ssl_channel_credentials(
            root_certificates=identity.ca_pem, private_key=identity.key_pem, certificate_chain=identity.cert_pem
        )
        async with grpc.aio.secure_channel(identity.controller, creds, options=CHANNEL_OPTIONS) as channel:
            stub = agent_pb2_grpc.AgentServiceStub(channel)
            inventory = self._inventory_source()
            self._last_inventory = inventory.fingerprint()
            # Bounded: a command's output is read from disk only as fast as the stream takes it.
            outbox: asyncio.Queue[agent_pb2.AgentMessage] = asyncio.Queue(maxsize=OUTBOX_SIZE)
            call = stub.Connect()
            await call.write(
                agent_pb2.AgentMessage(
                    hello=agent_pb2.Hello(
                        host_id=identity.host_id,
                        inventory=inventory_to_proto(inventory.to_dict()),
                        agent_version=AGENT_VERSION,
                        ssh_host_key=self.ssh_host_key,
                    )
                )
            )
            first = await read_message(call)
            if first is None:
                await _raise_status(call)
                raise ConnectionError("controller closed the stream before welcoming us")
            if first.WhichOneof("body") == "disconnect" and first.disconnect.revoked:
                raise HostRevoked(
                    f"the controller revoked this host: {first.disconnect.reason}",
                    "register the host again with a new activation",
                )
            if first.WhichOneof("body") != "welcome":
                raise ConnectionError(f"expected a welcome, got {first.WhichOneof('body')}")
            welcome = first.welcome
            self._outbox = outbox
            self._session_ended = asyncio.Event()
            self._backoff.reset()
            self.connected.set()
            log.info("connected to %s as host %s", identity.controller, identity.host_id)
            tasks = [
                asyncio.create_task(self._write(call, outbox)),
                asyncio.create_task(self._heartbeats(outbox, welcome.heartbeat_interval_seconds)),
                asyncio.create_task(self._inventory(outbox, identity.host_id, welcome.inventory_interval_seconds)),
                asyncio.create_task(self._renewal(identity)),
            ]
            for callback in self._connect_callbacks:
                tasks.append(asyncio.create_task(_run_callback(callback)))
            reader = asyncio.create_task(self._read(call))
            try:
                stopper = asyncio.create_task(self._stop.wait())
                done, _ = await asyncio.wait({reader, stopper, *tasks}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                for task in done:
                    if task is stopper or task.cancelled():
                        continue
                    error = task.exception()
                    if error is not None:
                        raise error
            finally:
                for task in tasks:
                    task.cancel()
                reader.cancel()
                await asyncio.gather(*tasks, reader, return_exceptions=True)
                call.cancel()

    async def _read(self, call: _ControlCall) -> None:
        while True:
            message = await read_message(call)
            if message is None:
                await _raise_status(call)
                return
            kind = message.WhichOneof("body")
            if kind == "heartbeat_ack":
                continue
            if kind == "disconnect":
                if message.disconnect.revoked:
                    raise HostRevoked(
                        f"the controller revoked this host: {message.disconnect.reason}",
                        "register the host again with a new activation",
                    )
                log.info("controller closed the link: %s", message.disconnect.reason)
                continue  # the stream ends next; the reconnect loop takes over
            handler = self._handlers.get(kind or "")
            if handler is None:
                log.warning("no handler for controller message %r; ignoring it", kind)
                continue
            try:
                await handler(message)
            except ConnectionError:
                raise
            except Exception:
                # One bad message must not take the link down; the controller re-sends what matters.
                log.exception("handling a %s message failed", kind)

    async def _write(self, call: _ControlCall, outbox: asyncio.Queue[agent_pb2.AgentMessage]) -> None:
        """The only writer of the stream: everything put into the outbox, in order."""
        while True:
            await call.write(await outbox.get())

    async def _heartbeats(self, outbox: asyncio.Queue[agent_pb2.AgentMessage], interval: int) -> None:
        sequence = 0
        while True:
            await asyncio.sleep(max(1, interval))
            sequence += 1
            heartbeat = agent_pb2.Heartbeat(sequence=sequence)
            heartbeat.sent_at.GetCurrentTime()
            await outbox.put(agent_pb2.AgentMessage(heartbeat=heartbeat))

    async def _inventory(self, outbox: asyncio.Queue[agent_pb2.AgentMessage], host_id: str, full_interval: int) -> None:
        """Send the inventory when it changed, and in full every ``full_interval`` seconds."""
        since_full = 0.0
        while True:
            step = min(INVENTORY_CHANGE_CHECK, max(1, full_interval))
            await asyncio.sleep(step)
            since_full += step
            inventory = await asyncio.to_thread(self._inventory_source)
            fingerprint = inventory.fingerprint()
            if fingerprint == self._last_inventory and since_full < full_interval:
                continue
            self._last_inventory, since_full = fingerprint, 0.0
            await outbox.put(
                agent_pb2.AgentMessage(
                    inventory=agent_pb2.InventoryReport(
                        host_id=host_id, inventory=inventory_to_proto(inventory.to_dict())
                    )
                )
            )

    async def _renewal(self, identity: AgentIdentity) -> None:
        """At two thirds of the certificate's life, renew it (in a child process), then redial with it."""
        wait = (identity.renewal_time - datetime.now(UTC)).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        attempt_backoff = Backoff(base=1.0, cap=60.0)
        while True:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "fleetops.agent",
                "--state-dir",
                str(self._state.directory),
                "renew",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await proc.communicate()
            if proc.returncode == 0:
                log.info("certificate renewed; %s", out.decode(errors="replace").strip())
                raise _Reconnect()
            message = out.decode(errors="replace").strip().replace("\n", " ")
            if proc.returncode == EXIT_REVOKED:
                raise HostRevoked(f"certificate renewal refused: {message}", "register the host again")
            delay = attempt_backoff.next_delay()
            log.warning("certificate renewal failed (%s); retrying in %.1fs", message, delay)
            await asyncio.sleep(delay)


async def _run_callback(callback: Callable[[], Awaitable[None]]) -> None:
    """Connect callbacks must not end the session: log their failures and carry on."""
    try:
        await callback()
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception:
        log.exception("connect callback %r failed", callback)
    await asyncio.Event().wait()  # stay pending: a finished task would end the session


async def _raise_status(call: _ControlCall) -> None:
    """Raise what the stream's end means: HostRevoked only with the explicit marker, else a reconnect."""
    code = await call.code()
    if code == grpc.StatusCode.OK:
        return
    details = await call.details()
    trailing = await call.trailing_metadata()
    if any(key == REVOKED_KEY for key, _ in trailing or ()):
        raise HostRevoked(f"the controller refused this host: {details}", "register the host again")
    raise ConnectionError(f"stream ended with {code.name}: {details}")
