"""The operator's side of bench/fanout.py, and its fleet of real agents.

``measure_run`` is what an operator sees: RunCommand(target all, argv ["true"]) over the
operator API (the admin profile's mTLS identity, a channel handshaken before the clock starts),
then WatchCommand until it reports done, i.e. until the controller has stored every result and
marked the command finished; GetCommand afterwards double-checks status and per-state counts.

``real_fanout`` registers REAL ``python -m fleetops.agent`` processes through the CLI (one
activation for all of them), runs them, waits for the controller's connected-agents gauge and
measures one ``true`` on all of them: the spawn, journal fsyncs and process overhead of the real
agent included.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psutil
from connect_support import PY, Children, run
from controller_support import Controller, poll, start_controller

from fleetops.common.profile import load_profile
from fleetops.v1 import operator_pb2, operator_pb2_grpc

RUN_TIMEOUT = 120.0


@dataclass
class RunResult:
    """One RunCommand, timed from the call until WatchCommand said done (seconds from ``t0``)."""

    max_concurrency: str
    agents: int
    t0: float = 0.0  # CLOCK_MONOTONIC at the RunCommand call (comparable with the clients' times)
    created_s: float = float("nan")  # RunCommand returned
    first_watch_s: float = float("nan")  # WatchCommand's first message arrived
    seconds: float = float("nan")  # WatchCommand reported done
    watch_messages: int = 0
    status: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    controller_cpu_s: float = 0.0  # summed over the replicas
    replica_cpu_s: list[float] = field(default_factory=list)  # each replica's share (r1 first)
    # From the simulated agents' reports (nan for real agents):
    first_run_s: float = float("nan")  # first RunInvocation arrived at an agent
    last_run_s: float = float("nan")  # last RunInvocation arrived
    last_ack_s: float = float("nan")  # last ResultAck arrived (the last result was committed)
    runs_received: int = 0
    problems: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "success" and self.counts.get("success", 0) == self.agents and not self.problems


def operator_channel(controller: Controller) -> grpc.aio.Channel:
    profile = load_profile(str(controller.profile))
    creds = grpc.ssl_channel_credentials(profile.ca_pem, profile.key_pem, profile.cert_pem)
    return grpc.aio.secure_channel(controller.address, creds)


async def measure_run(
    controller: Controller,
    max_concurrency: str,
    agents: int,
    on_done: Callable[[], Awaitable[None]] | None = None,
    peers: Sequence[Controller] = (),
) -> RunResult:
    """One timed fan-out; ``on_done`` runs as soon as the watch said done (before the GetCommand check).

    The command is created and watched on ``controller``; ``controller_cpu_s`` also counts ``peers``
    (the other replicas, which deliver it to the hosts they hold)."""
    result = RunResult(max_concurrency, agents)
    servers = [psutil.Process(c.proc.pid) for c in (controller, *peers)]

    def cpu() -> list[float]:
        return [sum(server.cpu_times()[:2]) for server in servers]

    request = operator_pb2.RunCommandRequest(
        target=operator_pb2.Target(all=True), argv=["true"], max_concurrency=max_concurrency
    )
    async with operator_channel(controller) as channel:
        stub = operator_pb2_grpc.OperatorServiceStub(channel)
        await stub.WhoAmI(operator_pb2.WhoAmIRequest(), timeout=30)  # TLS handshake before the clock
        cpu0 = cpu()
        result.t0 = time.monotonic()
        created = await stub.RunCommand(request, timeout=RUN_TIMEOUT)
        result.created_s = time.monotonic() - result.t0
        command = operator_pb2.GetCommandRequest(id=created.command.id)
        watch = stub.WatchCommand(command, timeout=RUN_TIMEOUT)
        try:
            async for detail in watch:
                result.watch_messages += 1
                if result.watch_messages == 1:
                    result.first_watch_s = time.monotonic() - result.t0
                if detail.done:
                    result.seconds = time.monotonic() - result.t0
                    break
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
            # Not done in RUN_TIMEOUT: say so, and cancel it so that the next run starts on an idle fleet.
            result.problems[f"not done after {RUN_TIMEOUT:.0f} s (then cancelled)"] = 1
            await stub.CancelCommand(command, timeout=60)
        watch.cancel()
        result.replica_cpu_s = [after - before for before, after in zip(cpu0, cpu(), strict=True)]
        result.controller_cpu_s = sum(result.replica_cpu_s)
        if on_done is not None:
            await on_done()
        final = await stub.GetCommand(command, timeout=60)
    result.status, result.counts = final.command.status, dict(final.command.counts)
    return result


# --- real agents -------------------------------------------------------------------------------


@dataclass
class RealFleet:
    agents: int
    registered: int = 0
    register_s: float = float("nan")
    online: int = 0
    online_s: float = float("nan")  # from the first `run` spawn until the gauge showed all
    agents_rss_mib: float = 0.0
    runs: list[RunResult] = field(default_factory=list)
    agents_cpu_s: list[float] = field(default_factory=list)  # CPU of all agent processes (and children), per run
    error: str = ""


async def register_agents(controller: Controller, directories: list[Path], parallel: int) -> None:
    """``fleetops-agent register`` for each directory, ``parallel`` at a time, one activation for all."""
    act = json.loads(
        await run(*controller.opsctl, "activation", "create", "--limit", str(len(directories)), "-o", "json")
    )
    gate = asyncio.Semaphore(parallel)

    async def register(i: int, directory: Path) -> None:
        args = ["register", "--controller", controller.address, "--enroll-port", str(controller.ports["enroll"])]
        args += ["--activation-id", act["id"], "--activation-code", act["code"], "--name", f"bench-real-{i:03d}"]
        args += ["--ca-cert", str(controller.state / "ca" / "ca.pem")]
        async with gate:
            await run(PY, "-m", "fleetops.agent", "--state-dir", str(directory), *args, timeout=120)

    await asyncio.gather(*(register(i, d) for i, d in enumerate(directories)))


def cpu_of(procs: list[asyncio.subprocess.Process]) -> float:
    """User + system CPU seconds of these processes and their waited-for children (the commands run)."""
    return sum(sum(psutil.Process(p.pid).cpu_times()[:4]) for p in procs)


async def real_fanout(children: Children, tmp: Path, agents: int, rounds: int, parallel: int) -> RealFleet:
    """``agents`` real fleetops-agent processes on their own controller; ``rounds`` runs of ``true``."""
    fleet = RealFleet(agents)
    controller = await start_controller(children, tmp / "real-ctl", log="real-controller.log")
    procs: list[asyncio.subprocess.Process] = []
    try:
        directories = [tmp / "real-agents" / f"{i:03d}" for i in range(agents)]
        t = time.monotonic()
        await register_agents(controller, directories, parallel)
        fleet.registered, fleet.register_s = agents, time.monotonic() - t
        print(f"real agents: {agents} registered in {fleet.register_s:.1f} s; starting them...", flush=True)

        t = time.monotonic()
        for i, directory in enumerate(directories):
            run_args = ["-m", "fleetops.agent", "--state-dir", str(directory), "--log-level", "warning", "run"]
            procs.append(await children.spawn(PY, *run_args, log=f"real-agent-{i:03d}.log"))

        async def gauge() -> float:
            return await asyncio.to_thread(controller.gauge)

        fleet.online = int(await poll(gauge, agents, 240, interval=0.5))
        fleet.online_s = time.monotonic() - t
        if fleet.online != agents:
            raise RuntimeError(f"only {fleet.online}/{agents} real agents online after {fleet.online_s:.0f} s")
        fleet.agents_rss_mib = sum(psutil.Process(p.pid).memory_info().rss for p in procs) / 2**20
        print(f"real agents: all {agents} online after {fleet.online_s:.1f} s; running true...", flush=True)
        await asyncio.sleep(3.0)  # let the agents' start-up work (inventory, first heartbeats) settle
        for _ in range(rounds):
            cpu0 = cpu_of(procs)
            fleet.runs.append(await measure_run(controller, "100%", agents))
            fleet.agents_cpu_s.append(cpu_of(procs) - cpu0)
            await asyncio.sleep(1.0)
    except (RuntimeError, TimeoutError, grpc.RpcError, psutil.Error) as exc:
        fleet.error = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:300]
    finally:
        await asyncio.gather(*(children.stop(p, grace=5.0) for p in procs))
        await children.stop(controller.proc)
    return fleet
