"""This replica calling the others over the peer service, with a client certificate of the replica kind."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from fleetops.common import limits
from fleetops.controller.metrics import ControllerMetrics
from fleetops.controller.replicas.service import ReplicaRegistry
from fleetops.controller.rpc.host_order import each_host_in_order
from fleetops.v1 import agent_pb2, peer_pb2, peer_pb2_grpc

log = logging.getLogger(__name__)

# Seconds a peer call may take: a replica that does not answer in this time is treated as not
# holding the host (the run waits for the host to show up elsewhere; a report is not acknowledged).
PEER_CALL_TIMEOUT = 10.0

#: At most this many items in one batch call (ReportBatch, DeliverBatch), and at most this many bytes
#: of them (a single larger item still goes, alone: one fits the peer's receive limit, see limits).
BATCH_ITEMS = 500
BATCH_BYTES = limits.CONTROLLER_RECEIVE_BYTES // 4

_OPTIONS = (
    *limits.channel_options(receive=limits.CONTROLLER_RECEIVE_BYTES, send=limits.CONTROLLER_RECEIVE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
)

Request = peer_pb2.ReportRequest | peer_pb2.DeliverRequest


@dataclass(frozen=True)
class _Kind:
    """One kind of batched peer call: its metric label and words, the batch call and the unary one."""

    call: str  # fleetops_peer_calls_total's "call" label
    items: str  # what the items are called in logs ("report(s)", "message(s)")
    yes: str  # outcome labels of an item the other replica took / did not take
    no: str
    batch: Callable[[peer_pb2_grpc.PeerServiceStub, list[Any]], Awaitable[list[bool]]]
    unary: Callable[[peer_pb2_grpc.PeerServiceStub, Any], Awaitable[bool]]


async def _report_batch(stub: peer_pb2_grpc.PeerServiceStub, requests: list[Any]) -> list[bool]:
    reply = await stub.ReportBatch(peer_pb2.ReportBatchRequest(reports=requests), timeout=PEER_CALL_TIMEOUT)
    return list(reply.stored)


async def _report(stub: peer_pb2_grpc.PeerServiceStub, request: Any) -> bool:
    return bool((await stub.Report(request, timeout=PEER_CALL_TIMEOUT)).stored)


async def _deliver_batch(stub: peer_pb2_grpc.PeerServiceStub, requests: list[Any]) -> list[bool]:
    reply = await stub.DeliverBatch(peer_pb2.DeliverBatchRequest(deliveries=requests), timeout=PEER_CALL_TIMEOUT)
    return list(reply.delivered)


async def _deliver(stub: peer_pb2_grpc.PeerServiceStub, request: Any) -> bool:
    return bool((await stub.Deliver(request, timeout=PEER_CALL_TIMEOUT)).delivered)


REPORTS = _Kind("report", "report(s)", "taken", "not_taken", _report_batch, _report)
DELIVERIES = _Kind("deliver", "message(s)", "delivered", "not_connected", _deliver_batch, _deliver)


class PeerClients:
    """One channel per other replica, opened on first use and replaced when its address changes."""

    def __init__(
        self,
        registry: ReplicaRegistry,
        key_pem: bytes,
        chain_pem: bytes,
        ca_pem: bytes,
        metrics: ControllerMetrics | None = None,
    ) -> None:
        self._registry = registry
        self._metrics = metrics
        self._credentials = grpc.ssl_channel_credentials(
            root_certificates=ca_pem, private_key=key_pem, certificate_chain=chain_pem
        )
        self._channels: dict[str, tuple[str, grpc.aio.Channel, peer_pb2_grpc.PeerServiceStub]] = {}
        self._stale: list[grpc.aio.Channel] = []
        self._batchers: dict[tuple[str, str], _Batcher] = {}

    def route(self, host_id: str) -> str | None:
        """The other replica holding ``host_id``, if any (agent_channel.Router)."""
        return self._registry.route(host_id)

    def stub(self, replica_id: str) -> peer_pb2_grpc.PeerServiceStub | None:
        address = self._registry.address_of(replica_id)
        if address is None:
            return None
        cached = self._channels.get(replica_id)
        if cached is not None and cached[0] == address:
            return cached[2]
        if cached is not None:
            self._stale.append(cached[1])  # a replica restarted elsewhere; closed with the others
        channel = grpc.aio.secure_channel(address, self._credentials, options=_OPTIONS)
        stub = peer_pb2_grpc.PeerServiceStub(channel)
        self._channels[replica_id] = (address, channel, stub)
        return stub

    async def deliver(self, replica_id: str, host_id: str, message: agent_pb2.ControllerMessage) -> bool:
        """Have ``replica_id`` send ``message`` on ``host_id``'s control stream; False when it could not.

        Messages to one replica travel in batches (DeliverBatch) like reports (:meth:`report`).
        """
        return await self._batcher(DELIVERIES, replica_id).submit(
            peer_pb2.DeliverRequest(host_id=host_id, message=message)
        )

    async def report(self, replica_id: str, host_id: str, message: agent_pb2.AgentMessage) -> bool:
        """Pass a host's report to the replica running its command; True once it took it.

        Reports to one replica travel in batches (ReportBatch), one batch in flight at a time: what
        comes in meanwhile goes in the next one, so a host's reports arrive in the order sent.
        """
        return await self._batcher(REPORTS, replica_id).submit(peer_pb2.ReportRequest(host_id=host_id, message=message))

    def _batcher(self, kind: _Kind, replica_id: str) -> _Batcher:
        batcher = self._batchers.get((kind.call, replica_id))
        if batcher is None:
            batcher = self._batchers[(kind.call, replica_id)] = _Batcher(self, kind, replica_id)
        return batcher

    def count(self, call: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.peer_calls.labels(call, outcome).inc()

    async def close(self) -> None:
        for batcher in self._batchers.values():
            await batcher.close()
        self._batchers.clear()
        for channel in [*(c for _, c, _ in self._channels.values()), *self._stale]:
            await channel.close(None)
        self._channels.clear()
        self._stale.clear()


@dataclass
class _Pending:
    request: Request
    size: int
    taken: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class _Batcher:
    """The items of one kind on their way to one other replica: at most one batch call in flight.

    No timer: an item that finds no call in flight goes at once (alone); the items arriving while
    a call is in flight go together in the next one (capped by BATCH_ITEMS and BATCH_BYTES), so the
    batches grow with the load and with the other replica's latency. A host's items keep their order.
    """

    def __init__(self, clients: PeerClients, kind: _Kind, replica_id: str) -> None:
        self._clients = clients
        self._kind = kind
        self._replica_id = replica_id
        self._queue: deque[_Pending] = deque()
        self._sender: asyncio.Task[None] | None = None
        # A replica of the previous release has no batch call: items then go one by one (the
        # unary call), until its channel changes (it restarted, maybe upgraded).
        self._unary_for: peer_pb2_grpc.PeerServiceStub | None = None

    async def submit(self, request: Request) -> bool:
        pending = _Pending(request, request.ByteSize())
        self._queue.append(pending)
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_all(), name=f"peer-{self._kind.call}-{self._replica_id}")
        return await pending.taken

    async def _send_all(self) -> None:
        try:
            while self._queue:
                await self._send(self._next_batch())
        finally:
            self._sender = None  # no await between the last look at the queue and here
            for pending in self._queue:  # only when cancelled (close)
                _resolve(pending, False)
            self._queue.clear()

    def _next_batch(self) -> list[_Pending]:
        batch = [self._queue.popleft()]
        size = batch[0].size
        while self._queue and len(batch) < BATCH_ITEMS and size + self._queue[0].size <= BATCH_BYTES:
            size += self._queue[0].size
            batch.append(self._queue.popleft())
        return batch

    async def _send(self, batch: list[_Pending]) -> None:
        try:
            answers = await self._call(batch)
        except asyncio.CancelledError:
            for pending in batch:
                _resolve(pending, False)
            raise
        except Exception:  # never leave a caller waiting
            log.exception("passing %d %s to replica %s failed", len(batch), self._kind.items, self._replica_id)
            answers = None
        if answers is None:
            for pending in batch:
                _resolve(pending, False)
            return
        for pending, taken in zip(batch, answers, strict=True):
            self._clients.count(self._kind.call, self._kind.yes if taken else self._kind.no)
            _resolve(pending, taken)

    async def _call(self, batch: list[_Pending]) -> list[bool] | None:
        """What the other replica said of each item; None when the call failed (counted, logged once)."""
        stub = self._clients.stub(self._replica_id)
        if stub is None:  # not registered (any more): as if it held neither the host nor the command
            return [False] * len(batch)
        if stub is self._unary_for:
            return await self._call_one_by_one(stub, batch)
        try:
            answers = await self._kind.batch(stub, [p.request for p in batch])
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                log.info(
                    "replica %s has no %s batches (an older release): one by one", self._replica_id, self._kind.call
                )
                self._unary_for = stub
                return await self._call_one_by_one(stub, batch)
            self._failed(batch, exc)
            return None
        if len(answers) != len(batch):
            log.warning(
                "replica %s answered %d of %d %s: none counts as taken",
                self._replica_id,
                len(answers),
                len(batch),
                self._kind.items,
            )
            for _ in batch:
                self._clients.count(self._kind.call, "failed")
            return None
        return answers

    async def _call_one_by_one(self, stub: peer_pb2_grpc.PeerServiceStub, batch: list[_Pending]) -> list[bool]:
        """The unary call for each (a host's items in order, the hosts side by side)."""

        async def one(i: int) -> bool:
            try:
                return await self._kind.unary(stub, batch[i].request)
            except grpc.aio.AioRpcError as exc:
                self._failed([batch[i]], exc)
                return False

        return await each_host_in_order([p.request.host_id for p in batch], one)

    def _failed(self, batch: list[_Pending], exc: grpc.aio.AioRpcError) -> None:
        hosts = sorted({p.request.host_id for p in batch})
        log.warning(
            "replica %s did not take %d %s of %d host(s) (%s%s): %s",
            self._replica_id,
            len(batch),
            self._kind.items,
            len(hosts),
            ", ".join(hosts[:5]),
            ", ..." if len(hosts) > 5 else "",
            exc.details(),
        )
        for _ in batch:
            self._clients.count(self._kind.call, "failed")

    async def close(self) -> None:
        sender = self._sender
        if sender is not None:
            sender.cancel()
            try:
                await sender
            except asyncio.CancelledError:
                pass


def _resolve(pending: _Pending, taken: bool) -> None:
    if not pending.taken.done():  # its caller may have given up (cancelled)
        pending.taken.set_result(taken)
