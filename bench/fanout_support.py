"""Child processes of bench/fanout.py: the broadcast floor server and the simulated agents.

Both kinds of client use the same code (``SimAgent``) and the same connection setup as the
connect bench (connect_support: one channel, TCP connection and client certificate per agent,
a Hello and its reply first), so fleetops/floor isolates what the controller adds:

* ``floor``: the generic ``/bench.Floor/Connect`` method of the floor server below. After the
  first reply the client answers the server's broadcast with one small message; or, for the
  "protocol floor", with the same three messages a simulated fleetops agent sends, which the
  server answers with a ResultAck (fleetops' message pattern, minus fleetops).
* ``fleetops``: ``AgentService.Connect`` on a real controller. The client answers every
  RunInvocation at once, as a real agent running a no-op would minus the process spawn:
  InvocationResult(SUCCESS, exit 0) only, as the real agent does for a command that ends at once.
  It also sends a Heartbeat every Welcome.heartbeat_interval_seconds (else the controller drops
  the stream after three intervals), nothing else.

With several controller replicas the target is their addresses, comma-separated: the agents are
spread over them round-robin (connect_support.spread).

Client protocol (stdin/stdout lines): ``ready`` once credentials are built; on ``connect`` it
opens every stream and prints ``connected {json}``; on ``report`` it prints ``report {json}`` with
the CLOCK_MONOTONIC times of what arrived since the last report; ``stop`` or EOF closes it.

Floor server protocol: prints ``floor-server ready PORT``; on ``go`` (``go protocol``) it writes one
message down every stream it holds (in one task, one ``await context.write`` after the other, as
the controller's dispatcher does) and prints ``broadcast {json}`` once every stream has replied
(has sent its three messages and been sent its ResultAck).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from connect_support import CLIENT_OPTIONS, FLOOR_METHOD, FLOOR_SERVICE, hello, spread, start_floor_server

from fleetops.v1 import agent_pb2, agent_pb2_grpc

WELCOME = agent_pb2.ControllerMessage(
    welcome=agent_pb2.Welcome(host_id="floor", heartbeat_interval_seconds=10, inventory_interval_seconds=3600)
).SerializeToString()
# The floor's broadcast and reply: the same kind (and about the size) of what fleetops sends.
BROADCAST = agent_pb2.ControllerMessage(
    run=agent_pb2.RunInvocation(invocation_id="inv-" + "0" * 24, command_id="cmd-" + "0" * 20, argv=["true"])
).SerializeToString()
PROTOCOL_BROADCAST = agent_pb2.ControllerMessage(
    run=agent_pb2.RunInvocation(invocation_id="inv-" + "1" * 24, command_id="cmd-" + "1" * 20, argv=["true"])
).SerializeToString()
PROTOCOL_REPLIES = 1  # the result (the agent reports a no-op by its result alone)
ACK = agent_pb2.ControllerMessage(result_ack=agent_pb2.ResultAck(invocation_id="inv-" + "1" * 24)).SerializeToString()
FLOOR_REPLY = agent_pb2.AgentMessage(
    result=agent_pb2.InvocationResult(
        invocation_id="inv-" + "0" * 24, outcome=agent_pb2.INVOCATION_OUTCOME_SUCCESS, exit_code=0
    )
).SerializeToString()


async def _readline() -> str:
    return (await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)).strip()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"[:120]
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    return f"{type(exc).__name__}: {exc}"[:120]


# --- the floor server --------------------------------------------------------------------------


BROADCAST_TIMEOUT = 60.0


class BroadcastTimeout(Exception):
    """Not every stream answered a broadcast in time."""


class Broadcaster:
    """Every stream the floor server holds, and the replies to the current broadcast."""

    def __init__(self) -> None:
        self.streams: list[grpc.aio.ServicerContext] = []
        # One write at a time per stream: a reply can be read (and its ResultAck written) before the
        # broadcast's own write on that stream has completed, and grpc.aio allows one write in
        # flight per call; a second one failed and ended the stream, and its reply never counted
        # (the floor then waited for it until the broadcast timed out).
        self.locks: dict[grpc.aio.ServicerContext, asyncio.Lock] = {}
        self.protocol = False  # the current broadcast wants fleetops' message pattern
        self.round = 0
        self.waiting = 0
        self.last_reply = 0.0
        self.all_replied = asyncio.Event()

    async def connect(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        try:
            await anext(request_iterator)
        except StopAsyncIteration:
            return
        await context.write(WELCOME)
        lock = self.locks[context] = asyncio.Lock()
        self.streams.append(context)
        seen_round, got = 0, 0
        try:
            async for raw in request_iterator:
                # Only a result answers a broadcast: the clients also send a Heartbeat every
                # Welcome.heartbeat_interval_seconds, which once counted as a reply (a round then
                # ended early, before every stream had answered).
                if agent_pb2.AgentMessage.FromString(raw).WhichOneof("body") != "result":
                    continue
                if seen_round != self.round:
                    seen_round, got = self.round, 0
                got += 1
                if self.protocol:
                    if got < PROTOCOL_REPLIES:
                        continue
                    async with lock:
                        await context.write(ACK)
                self.last_reply = time.monotonic()
                self.waiting -= 1
                if self.waiting == 0:
                    self.all_replied.set()
        except Exception as exc:
            print(f"floor server: a stream ended: {_describe(exc)}", file=sys.stderr, flush=True)
            raise
        finally:
            self.streams.remove(context)
            del self.locks[context]

    async def broadcast(self, protocol: bool) -> dict[str, Any]:
        streams = list(self.streams)
        self.protocol, self.round = protocol, self.round + 1
        self.waiting, self.last_reply = len(streams), 0.0
        self.all_replied.clear()
        cpu0 = sum(os.times()[:2])
        t0 = time.monotonic()
        message = PROTOCOL_BROADCAST if protocol else BROADCAST
        for context in streams:
            lock = self.locks.get(context)
            if lock is None:
                continue  # the stream ended meanwhile: its reply is missing, the timeout says so
            async with lock:
                await context.write(message)
        written = time.monotonic() - t0
        try:
            await asyncio.wait_for(self.all_replied.wait(), BROADCAST_TIMEOUT)
        except TimeoutError:
            raise BroadcastTimeout(
                f"{self.waiting} of {len(streams)} streams did not answer broadcast {self.round} within "
                f"{BROADCAST_TIMEOUT:.0f} s ({len(self.streams)} streams connected now)"
            ) from None
        seconds, cpu = self.last_reply - t0, sum(os.times()[:2]) - cpu0
        return {"streams": len(streams), "seconds": seconds, "write_seconds": written, "cpu_seconds": cpu}


async def floor_server_main(creds_path: Path) -> None:
    doc = json.loads(creds_path.read_text())
    broadcaster = Broadcaster()
    handler = grpc.stream_stream_rpc_method_handler(broadcaster.connect)
    server, port = await start_floor_server(doc, FLOOR_SERVICE, "Connect", handler)
    print(f"floor-server ready {port}", flush=True)
    while (line := await _readline()).startswith("go"):
        try:
            print("broadcast " + json.dumps(await broadcaster.broadcast(line == "go protocol")), flush=True)
        except BroadcastTimeout as exc:
            print(f"error: {exc}", flush=True)  # the parent fails with this reason
            break
    await server.stop(1)


# --- the simulated agents ----------------------------------------------------------------------


class SimAgent:
    """One simulated agent: its own channel and stream; answers what the server sends."""

    def __init__(self, kind: str, target: str, creds: grpc.ChannelCredentials, agent: dict[str, str]) -> None:
        self.kind, self.target, self.creds = kind, target, creds
        self.hello = hello(agent["host_id"], agent["name"])
        self.received: list[float] = []  # a RunInvocation (floor: a broadcast) arrived
        self.acked: list[float] = []  # a ResultAck arrived (fleetops only)
        self.problems: Counter[str] = Counter()
        self._write_lock = asyncio.Lock()  # the answers and the heartbeats share one stream
        self._tasks: list[asyncio.Task[None]] = []
        self.channel: grpc.aio.Channel | None = None
        self.call: Any = None

    async def connect(self) -> None:
        self.channel = grpc.aio.secure_channel(self.target, self.creds, options=CLIENT_OPTIONS)
        if self.kind == "fleetops":
            self.call = agent_pb2_grpc.AgentServiceStub(self.channel).Connect()
            await self.call.write(self.hello)
        else:
            self.call = self.channel.stream_stream(FLOOR_METHOD)()
            await self.call.write(self.hello.SerializeToString())
        reply = await self.call.read()
        if reply is grpc.aio.EOF:
            raise ConnectionError(f"EOF {(await self.call.code()).name}")
        self._tasks.append(asyncio.create_task(self._serve()))
        if self.kind == "fleetops":
            if reply.WhichOneof("body") != "welcome":
                raise ConnectionError(f"got {reply.WhichOneof('body')}")
            interval = max(1, reply.welcome.heartbeat_interval_seconds)
            self._tasks.append(asyncio.create_task(self._heartbeats(interval)))

    async def _write(self, *messages: Any) -> None:
        async with self._write_lock:
            for message in messages:
                await self.call.write(message)

    async def _serve(self) -> None:
        try:
            while (message := await self.call.read()) is not grpc.aio.EOF:
                if self.kind == "floor":
                    if message == ACK:
                        self.acked.append(time.monotonic())
                        continue
                    self.received.append(time.monotonic())
                    if message == PROTOCOL_BROADCAST:
                        await self._write(*(m.SerializeToString() for m in self._answer("inv-" + "1" * 24)))
                    else:
                        await self._write(FLOOR_REPLY)
                    continue
                body = message.WhichOneof("body")
                if body == "run":
                    self.received.append(time.monotonic())
                    await self._write(*self._answer(message.run.invocation_id))
                elif body == "result_ack":
                    self.acked.append(time.monotonic())
                elif body == "disconnect":
                    self.problems[f"disconnect: {message.disconnect.reason}"[:120]] += 1
                elif body != "heartbeat_ack":
                    self.problems[f"unexpected {body}"] += 1
            self.problems["stream ended by the server"] += 1
        except (grpc.RpcError, asyncio.InvalidStateError) as exc:
            self.problems[_describe(exc)] += 1

    @staticmethod
    def _answer(invocation_id: str) -> list[agent_pb2.AgentMessage]:
        """A SUCCESS result, as the real agent reports a command that ends within its progress delay
        (agent/commands/service.py PROGRESS_DELAY: no DELIVERED/RUNNING updates)."""
        messages = []
        result = agent_pb2.InvocationResult(
            invocation_id=invocation_id, outcome=agent_pb2.INVOCATION_OUTCOME_SUCCESS, exit_code=0
        )
        result.started_at.FromDatetime(datetime.now(UTC))
        result.finished_at.FromDatetime(datetime.now(UTC))
        messages.append(agent_pb2.AgentMessage(result=result))
        return messages

    async def _heartbeats(self, interval: float) -> None:
        sequence = 0
        try:
            while True:
                await asyncio.sleep(interval)
                sequence += 1
                await self._write(agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat(sequence=sequence)))
        except (grpc.RpcError, asyncio.InvalidStateError):
            return  # _serve reports the broken stream

    def take_report(self) -> tuple[list[float], list[float], Counter[str]]:
        report = (self.received, self.acked, self.problems)
        self.received, self.acked, self.problems = [], [], Counter()
        return report

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.call is not None:
            self.call.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.channel is not None:
            await self.channel.close()


async def client_main(kind: str, target: str, creds_path: Path, start: int, count: int, timeout: float) -> None:
    doc = json.loads(creds_path.read_text())
    ca = doc["ca"].encode()
    sims = [
        SimAgent(kind, spread(target, i), grpc.ssl_channel_credentials(ca, a["key"].encode(), a["cert"].encode()), a)
        for i, a in enumerate(doc["agents"][start : start + count], start)
    ]
    print("ready", flush=True)
    if await _readline() != "connect":
        return
    results = await asyncio.gather(*(asyncio.wait_for(s.connect(), timeout) for s in sims), return_exceptions=True)
    errors = Counter(_describe(r) for r in results if isinstance(r, BaseException))
    print("connected " + json.dumps({"ok": len(sims) - sum(errors.values()), "errors": errors}), flush=True)
    while await _readline() == "report":
        received: list[float] = []
        acked: list[float] = []
        problems: Counter[str] = Counter()
        for sim in sims:
            r, a, p = sim.take_report()
            received += r
            acked += a
            problems += p
        print("report " + json.dumps({"received": received, "acked": acked, "problems": problems}), flush=True)
    await asyncio.gather(*(s.close() for s in sims), return_exceptions=True)
