"""This replica calling the others over the peer service, with a client certificate of the replica kind."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field

import grpc

from fleetops.common import limits
from fleetops.controller.metrics import ControllerMetrics
from fleetops.controller.replicas.service import ReplicaRegistry
from fleetops.v1 import agent_pb2, peer_pb2, peer_pb2_grpc

log = logging.getLogger(__name__)

# Seconds a peer call may take: a replica that does not answer in this time is treated as not
# holding the host (the run waits for the host to show up elsewhere; a report is not acknowledged).
PEER_CALL_TIMEOUT = 10.0

#: At most this many reports in one ReportBatch call, and at most this many bytes of them (a single
#: larger report still goes, alone: a report fits the peer's receive limit on its own, see limits).
REPORT_BATCH_ITEMS = 500
REPORT_BATCH_BYTES = limits.CONTROLLER_RECEIVE_BYTES // 4

_OPTIONS = (
    *limits.channel_options(receive=limits.CONTROLLER_RECEIVE_BYTES, send=limits.CONTROLLER_RECEIVE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
)


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
        self._batchers: dict[str, _ReportBatcher] = {}

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
        """Have ``replica_id`` send ``message`` on ``host_id``'s control stream; False when it could not."""
        stub = self.stub(replica_id)
        if stub is None:
            return False
        try:
            reply = await stub.Deliver(
                peer_pb2.DeliverRequest(host_id=host_id, message=message), timeout=PEER_CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as exc:
            log.warning("replica %s did not take a message for host %s: %s", replica_id, host_id, exc.details())
            self.count("deliver", "failed")
            return False
        self.count("deliver", "delivered" if reply.delivered else "not_connected")
        return bool(reply.delivered)

    async def report(self, replica_id: str, host_id: str, message: agent_pb2.AgentMessage) -> bool:
        """Pass a host's report to the replica running its command; True once it took it.

        Reports to one replica travel in batches (ReportBatch), one batch in flight at a time: what
        comes in meanwhile goes in the next one, so a host's reports arrive in the order sent.
        """
        batcher = self._batchers.get(replica_id)
        if batcher is None:
            batcher = self._batchers[replica_id] = _ReportBatcher(self, replica_id)
        return await batcher.submit(peer_pb2.ReportRequest(host_id=host_id, message=message))

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
    request: peer_pb2.ReportRequest
    size: int
    taken: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class _ReportBatcher:
    """The reports on their way to one other replica: at most one ReportBatch call in flight.

    No timer: a report that finds no call in flight goes at once (alone); the reports arriving
    while a call is in flight go together in the next one (capped by REPORT_BATCH_ITEMS and
    REPORT_BATCH_BYTES), so the batches grow with the load and with the other replica's latency.
    """

    def __init__(self, clients: PeerClients, replica_id: str) -> None:
        self._clients = clients
        self._replica_id = replica_id
        self._queue: deque[_Pending] = deque()
        self._sender: asyncio.Task[None] | None = None
        # A replica of the previous release has no ReportBatch: reports then go one by one
        # (Report), until its channel changes (it restarted, maybe upgraded).
        self._unary_for: peer_pb2_grpc.PeerServiceStub | None = None

    async def submit(self, request: peer_pb2.ReportRequest) -> bool:
        pending = _Pending(request, request.ByteSize())
        self._queue.append(pending)
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_all(), name=f"peer-reports-{self._replica_id}")
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
        while self._queue and len(batch) < REPORT_BATCH_ITEMS and size + self._queue[0].size <= REPORT_BATCH_BYTES:
            size += self._queue[0].size
            batch.append(self._queue.popleft())
        return batch

    async def _send(self, batch: list[_Pending]) -> None:
        try:
            stored = await self._call(batch)
        except asyncio.CancelledError:
            for pending in batch:
                _resolve(pending, False)
            raise
        except Exception:  # never leave a caller waiting
            log.exception("passing %d reports to replica %s failed", len(batch), self._replica_id)
            stored = None
        if stored is None:
            for pending in batch:
                _resolve(pending, False)
            return
        for pending, taken in zip(batch, stored, strict=True):
            self._clients.count("report", "taken" if taken else "not_taken")
            _resolve(pending, taken)

    async def _call(self, batch: list[_Pending]) -> list[bool] | None:
        """What the other replica said of each report; None when the call failed (counted, logged once)."""
        stub = self._clients.stub(self._replica_id)
        if stub is None:  # not registered (any more): as if it did not hold the command
            return [False] * len(batch)
        if stub is self._unary_for:
            return await self._call_one_by_one(stub, batch)
        try:
            reply = await stub.ReportBatch(
                peer_pb2.ReportBatchRequest(reports=[p.request for p in batch]), timeout=PEER_CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                log.info("replica %s has no ReportBatch (an older release): reports go one by one", self._replica_id)
                self._unary_for = stub
                return await self._call_one_by_one(stub, batch)
            self._failed(batch, exc)
            return None
        if len(reply.stored) != len(batch):
            log.warning(
                "replica %s answered %d of %d reports: none counts as taken",
                self._replica_id,
                len(reply.stored),
                len(batch),
            )
            for _ in batch:
                self._clients.count("report", "failed")
            return None
        return list(reply.stored)

    async def _call_one_by_one(self, stub: peer_pb2_grpc.PeerServiceStub, batch: list[_Pending]) -> list[bool]:
        """The unary Report for each (a host's reports in order, the hosts side by side)."""
        by_host: dict[str, list[int]] = {}
        for i, pending in enumerate(batch):
            by_host.setdefault(pending.request.host_id, []).append(i)
        stored = [False] * len(batch)

        async def one_host(indices: list[int]) -> None:
            for i in indices:
                try:
                    reply = await stub.Report(batch[i].request, timeout=PEER_CALL_TIMEOUT)
                except grpc.aio.AioRpcError as exc:
                    self._failed([batch[i]], exc)
                    continue
                stored[i] = reply.stored

        await asyncio.gather(*(one_host(indices) for indices in by_host.values()))
        return stored

    def _failed(self, batch: list[_Pending], exc: grpc.aio.AioRpcError) -> None:
        hosts = sorted({p.request.host_id for p in batch})
        log.warning(
            "replica %s did not take %d report(s) of %d host(s) (%s%s): %s",
            self._replica_id,
            len(batch),
            len(hosts),
            ", ".join(hosts[:5]),
            ", ..." if len(hosts) > 5 else "",
            exc.details(),
        )
        for _ in batch:
            self._clients.count("report", "failed")

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
