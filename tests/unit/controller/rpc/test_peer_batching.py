"""Reports passed to another replica travel in batches (peer_client.py), taken per host (peer_service.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import grpc
import pytest
from cryptography import x509

from fleetops.common import pki
from fleetops.common.errors import PermissionDenied
from fleetops.controller.metrics import ControllerMetrics
from fleetops.controller.rpc import peer_client
from fleetops.controller.rpc.peer_client import PeerClients
from fleetops.controller.rpc.peer_service import PeerServicer
from fleetops.v1 import agent_pb2, peer_pb2

# --- the client: PeerClients.report ------------------------------------------------------------


def output(host_id: str, n: int) -> agent_pb2.AgentMessage:
    """Output chunk ``n`` of ``host_id``'s invocation (its offset tells the chunks apart)."""
    return agent_pb2.AgentMessage(output=agent_pb2.OutputChunk(invocation_id=f"inv-{host_id}", offset=n, data=b"x"))


def result(host_id: str) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(result=agent_pb2.InvocationResult(invocation_id=f"inv-{host_id}"))


def label(request: peer_pb2.ReportRequest) -> tuple[str, str | int]:
    kind = request.message.WhichOneof("body")
    return (request.host_id, request.message.output.offset if kind == "output" else str(kind))


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


class FakeStub:
    """The other replica's PeerService: records each call; ``hold`` keeps the next calls in flight."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, str | int]]] = []
        self.unary: list[tuple[str, str | int]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.called = asyncio.Event()
        self.hold: asyncio.Event | None = None
        self.error: grpc.aio.AioRpcError | None = None
        self.stored: Callable[[peer_pb2.ReportRequest], bool] = lambda r: True

    async def ReportBatch(self, request: peer_pb2.ReportBatchRequest, timeout: float) -> peer_pb2.ReportBatchReply:
        assert timeout == peer_client.PEER_CALL_TIMEOUT
        self.batches.append([label(r) for r in request.reports])
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.called.set()
        try:
            if self.hold is not None:
                await self.hold.wait()
            if self.error is not None:
                raise self.error
            return peer_pb2.ReportBatchReply(stored=[self.stored(r) for r in request.reports])
        finally:
            self.in_flight -= 1

    async def Report(self, request: peer_pb2.ReportRequest, timeout: float) -> peer_pb2.ReportReply:
        self.unary.append(label(request))
        return peer_pb2.ReportReply(stored=self.stored(request))


@pytest.fixture
def metrics() -> ControllerMetrics:
    return ControllerMetrics()


def clients_with(stub: FakeStub | None, metrics: ControllerMetrics) -> PeerClients:
    clients = PeerClients(registry=None, key_pem=b"", chain_pem=b"", ca_pem=b"", metrics=metrics)  # type: ignore[arg-type]
    clients.stub = lambda replica_id: stub  # type: ignore[assignment,method-assign,return-value]
    return clients


def counted(metrics: ControllerMetrics, outcome: str) -> float:
    return metrics.registry.get_sample_value("fleetops_peer_calls_total", {"call": "report", "outcome": outcome}) or 0.0


async def test_reports_arriving_while_a_batch_is_in_flight_go_together_in_the_next(metrics) -> None:
    stub = FakeStub()
    stub.hold = asyncio.Event()
    clients = clients_with(stub, metrics)
    first = asyncio.create_task(clients.report("r1", "h-0", output("h-0", 0)))
    await stub.called.wait()  # the first report went alone, at once (no timer)
    rest = [asyncio.create_task(clients.report("r1", f"h-{i}", output(f"h-{i}", 1))) for i in range(1, 51)]
    await asyncio.sleep(0)  # every caller has queued its report
    stub.hold.set()
    assert await asyncio.gather(first, *rest) == [True] * 51
    assert [len(b) for b in stub.batches] == [1, 50]
    assert stub.most_in_flight == 1
    assert counted(metrics, "taken") == 51
    await clients.close()


async def test_a_hosts_reports_reach_the_owner_in_the_order_sent_across_batches(metrics, monkeypatch) -> None:
    monkeypatch.setattr(peer_client, "BATCH_ITEMS", 3)
    stub = FakeStub()
    stub.hold = asyncio.Event()
    clients = clients_with(stub, metrics)
    sent = [("h-1", n) for n in range(7)] + [("h-1", "result")]
    tasks = [asyncio.create_task(clients.report("r1", "h-1", output("h-1", n))) for n in range(7)]
    tasks.append(asyncio.create_task(clients.report("r1", "h-1", result("h-1"))))
    # another host's reports interleaved: they go along, without reordering h-1's
    tasks += [asyncio.create_task(clients.report("r1", "h-2", output("h-2", n))) for n in range(4)]
    await stub.called.wait()
    stub.hold.set()
    assert all(await asyncio.gather(*tasks))
    seen = [item for batch in stub.batches for item in batch]
    assert [item for item in seen if item[0] == "h-1"] == sent
    assert [item for item in seen if item[0] == "h-2"] == [("h-2", n) for n in range(4)]
    assert all(len(b) <= 3 for b in stub.batches) and stub.most_in_flight == 1
    await clients.close()


async def test_the_byte_budget_caps_a_batch_but_a_larger_report_still_goes_alone(metrics, monkeypatch) -> None:
    monkeypatch.setattr(peer_client, "BATCH_BYTES", 100)
    stub = FakeStub()
    stub.hold = asyncio.Event()
    clients = clients_with(stub, metrics)
    big = agent_pb2.AgentMessage(output=agent_pb2.OutputChunk(invocation_id="inv-big", offset=9, data=b"y" * 500))
    tasks = [asyncio.create_task(clients.report("r1", "h-big", big))]
    await stub.called.wait()
    tasks += [asyncio.create_task(clients.report("r1", "h-big", big))]
    tasks += [asyncio.create_task(clients.report("r1", f"h-{i}", output(f"h-{i}", 0))) for i in range(6)]
    await asyncio.sleep(0)
    stub.hold.set()
    assert all(await asyncio.gather(*tasks))
    assert [len(b) for b in stub.batches[:2]] == [1, 1]  # each big one alone
    assert sum(len(b) for b in stub.batches) == 8 and len(stub.batches) >= 3
    await clients.close()


async def test_a_failed_batch_answers_every_caller_false_with_one_warning(metrics, caplog) -> None:
    stub = FakeStub()
    stub.hold = asyncio.Event()
    clients = clients_with(stub, metrics)
    first = asyncio.create_task(clients.report("r1", "h-0", output("h-0", 0)))
    await stub.called.wait()
    stub.error = rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    rest = [asyncio.create_task(clients.report("r1", f"h-{i}", result(f"h-{i}"))) for i in range(1, 21)]
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger=peer_client.__name__):
        stub.hold.set()
        assert await asyncio.gather(first, *rest) == [False] * 21
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(stub.batches) == 2 and len(warnings) == 2  # one per batch, not per report
    assert "did not take 20 report(s) of 20 host(s)" in warnings[1].getMessage()
    assert "Deadline Exceeded" in warnings[1].getMessage()
    assert counted(metrics, "failed") == 21 and counted(metrics, "taken") == 0
    await clients.close()


async def test_each_caller_gets_the_answer_to_its_own_report(metrics) -> None:
    stub = FakeStub()
    stub.stored = lambda r: r.host_id != "h-2"
    clients = clients_with(stub, metrics)
    answers = await asyncio.gather(*(clients.report("r1", f"h-{i}", result(f"h-{i}")) for i in range(4)))
    assert answers == [True, True, False, True]
    assert counted(metrics, "taken") == 3 and counted(metrics, "not_taken") == 1
    await clients.close()


async def test_an_unknown_replica_takes_nothing(metrics) -> None:
    clients = clients_with(None, metrics)
    assert await clients.report("gone", "h-1", result("h-1")) is False
    await clients.close()


async def test_a_replica_of_the_previous_release_gets_the_reports_one_by_one(metrics) -> None:
    stub = FakeStub()
    stub.error = rpc_error(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
    clients = clients_with(stub, metrics)
    assert await clients.report("r1", "h-1", output("h-1", 0)) is True
    later = [clients.report("r1", "h-1", result("h-1")), clients.report("r1", "h-2", output("h-2", 3))]
    assert await asyncio.gather(*later) == [True, True]
    assert len(stub.batches) == 1  # tried once, then Report only
    assert stub.unary == [("h-1", 0), ("h-1", "result"), ("h-2", 3)]
    await clients.close()


async def test_closing_answers_the_waiting_callers_false(metrics) -> None:
    stub = FakeStub()
    stub.hold = asyncio.Event()  # never set: the other replica hangs
    clients = clients_with(stub, metrics)
    first = asyncio.create_task(clients.report("r1", "h-0", output("h-0", 0)))
    await stub.called.wait()
    second = asyncio.create_task(clients.report("r1", "h-1", output("h-1", 0)))
    await asyncio.sleep(0)
    await clients.close()
    assert await asyncio.gather(first, second) == [False, False]


# --- the server: PeerServicer.ReportBatch ------------------------------------------------------


class FakeReports:
    """InvocationReports.take_for_peer: records per host; ``gate`` holds a host until another's is taken."""

    def __init__(self) -> None:
        self.taken: dict[str, list[str | int]] = {}
        self.gates: dict[str, asyncio.Event] = {}

    async def take_for_peer(self, host_id: str, message: agent_pb2.AgentMessage) -> bool:
        gate = self.gates.get(host_id)
        if gate is not None:
            await gate.wait()
        if message.WhichOneof("body") == "output" and message.output.invocation_id != f"inv-{host_id}":
            raise PermissionDenied(f"host {host_id} reported on another host's invocation")
        self.taken.setdefault(host_id, []).append(label(peer_pb2.ReportRequest(host_id=host_id, message=message))[1])
        for other, event in self.gates.items():
            if other != host_id:
                event.set()  # another host's report was taken meanwhile
        return True


class FakeAudit:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def record(self, **entry: Any) -> None:
        self.records.append(entry)


@pytest.fixture(scope="module")
def replica_cert(authority: pki.CertificateAuthority) -> x509.Certificate:
    return authority.issue_replica_certificate(pki.generate_private_key().public_key(), "r2", timedelta(hours=1))


def servicer(reports: FakeReports, audit: FakeAudit, authority: pki.CertificateAuthority) -> PeerServicer:
    return PeerServicer(
        presence=None,  # type: ignore[arg-type]
        reports=reports,  # type: ignore[arg-type]
        broker=None,  # type: ignore[arg-type]
        audit=audit,  # type: ignore[arg-type]
        authority=authority,
        operator_leg=None,  # type: ignore[arg-type]
    )


def batch(*items: tuple[str, agent_pb2.AgentMessage]) -> peer_pb2.ReportBatchRequest:
    return peer_pb2.ReportBatchRequest(reports=[peer_pb2.ReportRequest(host_id=h, message=m) for h, m in items])


async def test_the_server_takes_each_hosts_reports_in_order_and_the_hosts_side_by_side(
    context, authority, replica_cert
) -> None:
    reports, audit = FakeReports(), FakeAudit()
    # h-1's first report waits until h-2's was taken: sequential processing would never finish
    reports.gates["h-1"] = asyncio.Event()
    request = batch(
        ("h-1", output("h-1", 0)),
        ("h-1", output("h-1", 1)),
        ("h-2", output("h-2", 0)),
        ("h-1", result("h-1")),
        ("h-2", result("h-2")),
    )
    reply = await asyncio.wait_for(servicer(reports, audit, authority).ReportBatch(request, context(replica_cert)), 5)
    assert list(reply.stored) == [True] * 5
    assert reports.taken == {"h-1": [0, 1, "result"], "h-2": [0, "result"]}
    assert audit.records == []


async def test_one_hosts_refusal_does_not_fail_anothers_reports(context, authority, replica_cert, caplog) -> None:
    reports, audit = FakeReports(), FakeAudit()
    forged = agent_pb2.AgentMessage(output=agent_pb2.OutputChunk(invocation_id="inv-h-2", offset=5))
    request = batch(
        ("h-1", forged),  # h-1 reporting h-2's invocation
        ("h-2", output("h-2", 0)),
        ("h-3", agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat())),  # not about an invocation
        ("h-1", result("h-1")),
    )
    ctx = context(replica_cert)
    with caplog.at_level(logging.WARNING):
        reply = await servicer(reports, audit, authority).ReportBatch(request, ctx)
    assert list(reply.stored) == [False, True, False, True]
    assert ctx.code is None  # the call itself succeeded
    assert reports.taken == {"h-1": ["result"], "h-2": [0]}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "refused 2 of 4 reports passed on by replica:r2" in warnings[0]
    assert "host h-1: host h-1 reported on another host's invocation" in warnings[0]
    assert "host h-3: a heartbeat message is no invocation report" in warnings[0]


async def test_a_host_certificate_may_not_pass_on_reports(context, authority, host_cert) -> None:
    reports, audit = FakeReports(), FakeAudit()
    ctx = context(host_cert)
    with pytest.raises(context.Aborted):
        await servicer(reports, audit, authority).ReportBatch(batch(("h-1", result("h-1"))), ctx)
    assert ctx.code == grpc.StatusCode.PERMISSION_DENIED
    assert reports.taken == {}
    assert [(r["actor"], r["action"], r["outcome"]) for r in audit.records] == [("host:h-1", "peer.report", "refused")]


# --- messages to hosts held by another replica: DeliverBatch -------------------------------------


class DeliverStub:
    """The other replica's PeerService for deliveries: ``hold`` keeps the first call in flight."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, str]]] = []
        self.called = asyncio.Event()
        self.hold = asyncio.Event()

    async def DeliverBatch(self, request: peer_pb2.DeliverBatchRequest, timeout: float) -> peer_pb2.DeliverBatchReply:
        self.batches.append([(d.host_id, d.message.run.invocation_id) for d in request.deliveries])
        self.called.set()
        await self.hold.wait()
        return peer_pb2.DeliverBatchReply(delivered=[d.host_id != "h-gone" for d in request.deliveries])


def run_message(invocation_id: str) -> agent_pb2.ControllerMessage:
    return agent_pb2.ControllerMessage(run=agent_pb2.RunInvocation(invocation_id=invocation_id))


async def test_messages_to_another_replicas_hosts_go_in_batches_in_the_order_sent(metrics) -> None:
    stub = DeliverStub()
    clients = clients_with(stub, metrics)  # type: ignore[arg-type]  # a deliveries-only stub
    first = asyncio.create_task(clients.deliver("r1", "h-0", run_message("inv-0")))
    await stub.called.wait()
    rest = [asyncio.create_task(clients.deliver("r1", h, run_message(f"inv-{n}"))) for n, h in enumerate(
        ["h-1", "h-1", "h-gone", "h-2"], start=1
    )]  # fmt: skip
    await asyncio.sleep(0)
    stub.hold.set()
    assert await asyncio.gather(first, *rest) == [True, True, True, False, True]
    assert stub.batches == [
        [("h-0", "inv-0")],
        [("h-1", "inv-1"), ("h-1", "inv-2"), ("h-gone", "inv-3"), ("h-2", "inv-4")],
    ]
    sample = metrics.registry.get_sample_value
    assert sample("fleetops_peer_calls_total", {"call": "deliver", "outcome": "delivered"}) == 4
    assert sample("fleetops_peer_calls_total", {"call": "deliver", "outcome": "not_connected"}) == 1
    await clients.close()


class FakeLink:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message: agent_pb2.ControllerMessage) -> None:
        self.sent.append(message.WhichOneof("body"))


class FakePresence:
    def __init__(self, links: dict[str, FakeLink]) -> None:
        self.links = links

    def link(self, host_id: str) -> FakeLink | None:
        return self.links.get(host_id)


async def test_the_server_delivers_each_message_it_may_and_refuses_the_others(
    context, authority, replica_cert, caplog
) -> None:
    links = {"h-1": FakeLink(), "h-2": FakeLink()}
    server = servicer(FakeReports(), FakeAudit(), authority)
    server._presence = FakePresence(links)  # type: ignore[assignment]  # links held here
    request = peer_pb2.DeliverBatchRequest(
        deliveries=[
            peer_pb2.DeliverRequest(host_id="h-1", message=run_message("inv-1")),
            peer_pb2.DeliverRequest(host_id="h-2", message=agent_pb2.ControllerMessage(welcome=agent_pb2.Welcome())),
            peer_pb2.DeliverRequest(host_id="h-3", message=run_message("inv-3")),  # not held here
            peer_pb2.DeliverRequest(
                host_id="h-1",
                message=agent_pb2.ControllerMessage(cancel=agent_pb2.CancelInvocation(invocation_id="inv-1")),
            ),
        ]
    )
    ctx = context(replica_cert)
    with caplog.at_level(logging.WARNING):
        reply = await server.DeliverBatch(request, ctx)
    assert list(reply.delivered) == [True, False, False, True]
    assert ctx.code is None
    assert (links["h-1"].sent, links["h-2"].sent) == (["run", "cancel"], [])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "host h-2: a peer may not deliver a welcome message to a host" in warnings[0]
