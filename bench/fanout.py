"""Fan-out benchmark: one command to N agents at once, against a bare-gRPC broadcast floor.

Run from the repository root::

    .venv/bin/python bench/fanout.py [--agents 1000] [--real-agents 100] [--procs 4]
    .venv/bin/python bench/fanout.py --replicas 3 --agents 3000 --real-agents 0   # as root (PostgreSQL)

What it measures, all on 127.0.0.1 and in one run so the numbers share one machine state:

1. floor: a minimal grpc.aio mTLS server holding N client streams (P client processes, one
   connection and client certificate per stream, the connect bench's layout) writes one small
   message down every stream and waits for every reply: time from the first write to the last
   reply, the transport's floor for a broadcast/reply (median of --floor-rounds).
2. fleetops, simulated agents: a real controller subprocess (hosts registered straight in its
   database, see connect_support) and N simulated agents in the same P processes that answer every
   RunInvocation at once with a SUCCESS result, as a real agent reports a no-op (fanout_support.SimAgent).
   Once the gauge shows N online: RunCommand(target all, argv ["true"], max-concurrency 100%) over
   the operator API, timed from the call until WatchCommand reports done (every result stored,
   command finished); GetCommand must then say success with success == N. Then the same with
   max-concurrency 50 (the SSM default: 50 in flight at a time, so slower by design).
3. fleetops, real agents (--real-agents, 0 skips): that many real ``fleetops-agent`` processes,
   registered through the CLI with one activation, on their own controller; ``true`` on all of
   them with max-concurrency 100% (fanout_runs.real_fanout).

With ``--replicas R`` (issue 14), step 2 runs twice, both on one PostgreSQL database each (a
throwaway cluster, or the server of ``--database-url``): N/R agents on one replica, then N agents
spread round-robin over R replicas (each client dials a replica's own port; they share the CA, see
controller_support.start_replicas), the command created and watched on r1 and delivered by the
replica holding each host; both are reported next to the floor for N.

Goals (PASS/FAIL; the exit code is 0 either way, this is a measurement): the 100% fan-out to the
simulated agents within 2x the floor and, for up to 1,000 agents, under 2 s wall. Ten thousand on one
controller (a measurement next to its floor; no wall goal)::

    .venv/bin/python bench/fanout.py --agents 10000 --real-agents 0 --no-50 --timeout 300

A failure (a child that cannot connect, a floor broadcast that is not answered) ends the run with
``error:`` and the reason, exit code 1.

Modes ``_client`` and ``_floor-server`` are this script re-run as a child (see fanout_support.py).
``--py-spy FILE`` records the controller during the 100% runs (collapsed stacks, or .svg).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import connect_support as support
import fanout_support
from connect_support import PY, Children, readline, stop_gently
from controller_support import (
    Controller,
    gauge_sum,
    poll,
    start_controller,
    start_py_spy,
    start_replicas,
    stop_py_spy,
)
from fanout_runs import RealFleet, RunResult, measure_run, real_fanout
from postgres_support import Postgres

SCRIPT = str(Path(__file__).resolve())
GOAL_RATIO, GOAL_WALL_S, WALL_GOAL_AGENTS = 2.0, 2.0, 1000


# --- client processes --------------------------------------------------------------------------


async def start_clients(
    children: Children, kind: str, target: str, creds: Path, n: int, args: argparse.Namespace
) -> list[asyncio.subprocess.Process]:
    """P client processes with n/P agents each; returns once every stream is open.

    ``target``: one address, or several comma-separated (replicas: the agents are spread round-robin)."""
    clients, p = [], args.procs
    for i in range(p):
        start, stop = n * i // p, n * (i + 1) // p
        role = ["_client", kind, target, str(creds), str(start), str(stop - start), str(args.timeout)]
        clients.append(await children.spawn(PY, SCRIPT, *role, log=f"{kind}-client-{i}.log", pipes=True))
    for c in clients:
        if (line := await readline(c, 120)) != "ready":
            raise RuntimeError(f"client said {line!r}")
    await tell(clients, "connect")
    errors: Counter[str] = Counter()
    for c in clients:
        errors.update(json.loads((await readline(c, args.timeout + 30)).removeprefix("connected "))["errors"])
    if errors:
        raise RuntimeError(f"{kind} clients could not connect: {dict(errors)}")
    return clients


async def tell(procs: list[asyncio.subprocess.Process], line: str) -> None:
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(line.encode() + b"\n")
    await asyncio.gather(*(p.stdin.drain() for p in procs if p.stdin is not None))


async def collect(clients: list[asyncio.subprocess.Process]) -> dict:
    """What every client saw since the last report, merged."""
    await tell(clients, "report")
    merged: dict = {"received": [], "acked": [], "problems": Counter()}
    for c in clients:
        doc = json.loads((await readline(c, 60)).removeprefix("report "))
        merged["received"] += doc["received"]
        merged["acked"] += doc["acked"]
        merged["problems"].update(doc["problems"])
    return merged


# --- 1. floor ----------------------------------------------------------------------------------


@dataclass
class Broadcasts:
    """Rounds of one kind of broadcast on the floor server (seconds, and the server's CPU seconds)."""

    rounds: list[float] = field(default_factory=list)
    write_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    streams: int = 0

    @property
    def seconds(self) -> float:
        return statistics.median(self.rounds) if self.rounds else float("nan")

    def describe(self) -> str:
        rounds = ", ".join(f"{s:.3f}" for s in self.rounds)
        return (
            f"{self.seconds:.3f} s median over {self.streams} streams  [rounds {rounds} s; writes alone "
            f"{statistics.median(self.write_s):.3f} s; server CPU {statistics.median(self.cpu_s):.2f} s]"
        )


@dataclass
class Floor:
    plain: Broadcasts = field(default_factory=Broadcasts)  # one message, one reply: THE floor
    protocol: Broadcasts = field(default_factory=Broadcasts)  # fleetops' pattern: 1 down, 1 up, 1 ack down

    @property
    def seconds(self) -> float:
        return self.plain.seconds


async def floor_fanout(children: Children, args: argparse.Namespace, tmp: Path) -> Floor:
    creds = tmp / "floor-creds.json"
    support.make_floor_creds(args.agents, creds)
    server = await children.spawn(PY, SCRIPT, "_floor-server", str(creds), log="floor-server.log", pipes=True)
    port = int((await readline(server, 60)).split()[-1])
    clients = await start_clients(children, "floor", f"127.0.0.1:{port}", creds, args.agents, args)
    floor = Floor()
    try:
        await asyncio.sleep(1.0)  # let the machine settle
        for command, kind in (("go", floor.plain), ("go protocol", floor.protocol)):
            for _ in range(args.floor_rounds):
                await tell([server], command)
                doc = json.loads((await readline(server, 90)).removeprefix("broadcast "))
                kind.rounds.append(doc["seconds"])
                kind.write_s.append(doc["write_seconds"])
                kind.cpu_s.append(doc["cpu_seconds"])
                kind.streams = doc["streams"]
                await collect(clients)
                await asyncio.sleep(0.5)
    finally:
        await stop_gently(children, clients)
        await stop_gently(children, [server])
    return floor


# --- 2. fleetops with simulated agents ---------------------------------------------------------


@dataclass
class Sim:
    agents: int
    replicas: int = 0  # 0: one controller on SQLite (no --replicas); else that many on PostgreSQL
    gauges: list[float] = field(default_factory=list)  # fleetops_connected_agents of each replica
    runs: list[RunResult] = field(default_factory=list)

    @property
    def gauge(self) -> float:
        return sum(self.gauges)

    @property
    def title(self) -> str:
        if not self.replicas:
            return f"fleetops: {self.agents} simulated agents"
        return f"fleetops, {self.replicas} replica{'s' if self.replicas > 1 else ''} x {self.agents} simulated agents"

    def describe(self) -> str:
        if not self.replicas:
            return f"fleetops, simulated agents (gauge fleetops_connected_agents={self.gauge:.0f})"
        gauges = " + ".join(f"r{i + 1} {g:.0f}" for i, g in enumerate(self.gauges))
        return f"{self.title} on PostgreSQL (fleetops_connected_agents {gauges}), command created and watched on r1"


def absorb(result: RunResult, seen: dict) -> None:
    """The simulated agents' view of one run, relative to the RunCommand call."""
    received, acked = sorted(seen["received"]), sorted(seen["acked"])
    result.runs_received = len(received)
    if received:
        result.first_run_s, result.last_run_s = received[0] - result.t0, received[-1] - result.t0
    if acked:
        result.last_ack_s = acked[-1] - result.t0
    result.problems.update(seen["problems"])
    if len(received) != result.agents:
        result.problems[f"{len(received)} RunInvocations arrived, want {result.agents}"] = 1


async def start_fleet(
    children: Children, tmp: Path, sim: Sim, creds: Path, postgres: Postgres | None
) -> list[Controller]:
    """The controllers of one simulated run: ``sim.replicas`` replicas on a fresh PostgreSQL database,
    or (replicas 0) one controller on SQLite; ``sim.agents`` hosts registered in the database."""
    if not sim.replicas:
        return [await start_controller(children, tmp / "ctl", hosts=sim.agents, creds=creds)]
    assert postgres is not None
    label = f"{sim.replicas}x{sim.agents}"
    database = await postgres.new_database(label)
    return await start_replicas(children, tmp / f"ctl-{label}", sim.replicas, database, hosts=sim.agents, creds=creds)


async def sim_fanout(
    children: Children, args: argparse.Namespace, tmp: Path, sim: Sim, postgres: Postgres | None
) -> Sim:
    creds = tmp / f"sim-creds-{sim.replicas}x{sim.agents}.json"
    replicas = await start_fleet(children, tmp, sim, creds, postgres)
    controller, peers = replicas[0], replicas[1:]
    clients: list[asyncio.subprocess.Process] = []
    try:
        addresses = ",".join(c.address for c in replicas)
        clients = await start_clients(children, "fleetops", addresses, creds, sim.agents, args)

        async def gauge() -> float:
            return await asyncio.to_thread(gauge_sum, replicas)

        total = await poll(gauge, sim.agents, 60)
        sim.gauges = [await asyncio.to_thread(c.gauge) for c in replicas]
        if total != sim.agents:
            raise RuntimeError(f"gauges say {sim.gauges} online, want {sim.agents} in all")
        await asyncio.sleep(1.0)  # presence write-behind flushed, machine settled
        plan = ["100%"] * args.rounds + ["50"] * (1 if args.with_50 else 0)
        for i, concurrency in enumerate(plan):
            stop_spy = None
            if args.py_spy and concurrency == "100%":
                spy = await start_py_spy(children, controller.proc.pid, f"{args.py_spy}.{i}")
                stop_spy = functools.partial(stop_py_spy, spy)  # stopped when the watch says done
            result = await measure_run(controller, concurrency, sim.agents, stop_spy, peers)
            absorb(result, await collect(clients))
            sim.runs.append(result)
            print(f"  run {i + 1}/{len(plan)} max-concurrency {concurrency}: {result.seconds:.2f} s", flush=True)
            await asyncio.sleep(1.0)
    finally:
        await stop_gently(children, clients)
        await asyncio.gather(*(children.stop(c.proc) for c in replicas))
    return sim


# --- report ------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL  <<<"


def describe_run(r: RunResult, floor_s: float | None) -> str:
    ratio = f"  ({r.seconds / floor_s:.1f}x floor)" if floor_s else ""
    per_replica = ""
    if len(r.replica_cpu_s) > 1:
        per_replica = " (" + " + ".join(f"r{i + 1} {cpu:.2f}" for i, cpu in enumerate(r.replica_cpu_s)) + ")"
    line = (
        f"{r.seconds:5.2f} s{ratio}   RunCommand returned {r.created_s:.2f} s, first watch message "
        f"{r.first_watch_s:.2f} s, {r.watch_messages} watch messages, "
        f"controller CPU {r.controller_cpu_s:.2f} s{per_replica}, status {r.status!r}, counts {r.counts}"
    )
    if r.runs_received:
        line += (
            f"\n      at the agents: first RunInvocation {r.first_run_s:.2f} s, last {r.last_run_s:.2f} s, "
            f"last ResultAck {r.last_ack_s:.2f} s ({r.runs_received} runs received)"
        )
    for problem, count in r.problems.items():
        line += f"\n      {count}x {problem}"
    return line


def summarize(sim: Sim, floor: Floor) -> str:
    """The worst and best 100% fan-out of ``sim``, its ratio to the floor and the goals' verdicts."""
    full = [r for r in sim.runs if r.max_concurrency == "100%"]
    done = [r for r in full if r.seconds == r.seconds]  # a run not done in time has nan seconds
    if not done:
        return f"none of {len(full)} done in time: FAIL  <<<"
    best = min(done, key=lambda r: r.seconds)
    worst = max(done, key=lambda r: r.seconds)
    ok = len(done) == len(full) and all(r.ok for r in full)
    unfinished = f" ({len(full) - len(done)} more not done in time)" if len(done) < len(full) else ""
    return (
        f"{worst.seconds:.2f} s worst, {best.seconds:.2f} s best of {len(done)}{unfinished}   "
        f"ratio {worst.seconds / floor.seconds:.1f}x floor (goal <= {GOAL_RATIO:.0f}x: "
        f"{verdict(ok and worst.seconds <= GOAL_RATIO * floor.seconds)})   "
        + (
            f"wall goal < {GOAL_WALL_S:.0f} s: {verdict(ok and worst.seconds < GOAL_WALL_S)}"
            if sim.agents <= WALL_GOAL_AGENTS
            else f"(no wall goal past {WALL_GOAL_AGENTS} agents)"
        )
    )


def worst_full(sim: Sim) -> float:
    """The slowest 100% run that finished (nan: none did)."""
    done = [r.seconds for r in sim.runs if r.max_concurrency == "100%" and r.seconds == r.seconds]
    return max(done, default=float("nan"))


def report(args: argparse.Namespace, floor: Floor, sims: list[Sim], real: RealFleet | None) -> None:
    n = args.agents
    replicas = f", {args.replicas} controller replicas on one PostgreSQL" if args.replicas > 1 else ""
    print(f"\nfan-out, N={n} agents over P={args.procs} client processes ({os.cpu_count()} cores){replicas}")
    print(f"  floor (bare grpc.aio mTLS, 1 message down every stream, await every reply): {floor.plain.describe()}")
    print(f"  protocol floor (same, fleetops' pattern: 1 down, 1 up, ResultAck down): {floor.protocol.describe()}")
    for sim in sims:
        print(f"  {sim.describe()}:")
        for r in sim.runs:
            print(f"    max-concurrency {r.max_concurrency:>4}: {describe_run(r, floor.seconds)}")
    if len(sims) == 1:
        print(f"  fleetops 100% fan-out: {summarize(sims[0], floor)}")
    else:
        print(f"  fleetops 100% fan-out (floor: {n} streams, {floor.seconds:.3f} s):")
        for sim in sims:
            print(f"    {sim.replicas} x {sim.agents:>5}: {summarize(sim, floor)}")
        one, many = sims[0], sims[-1]
        print(
            f"    {many.replicas} replicas x {many.agents} / 1 replica x {one.agents}: "
            f"{worst_full(many) / worst_full(one):.2f}x the time for {many.agents / one.agents:.1f}x the hosts"
        )
    if real is None:
        print("  real agents: skipped (--real-agents 0)")
        return
    print(
        f"  fleetops, {real.agents} real agents: registered in {real.register_s:.1f} s, all online "
        f"{real.online_s:.1f} s after start ({real.online}/{real.agents}), agents' RSS {real.agents_rss_mib:.0f} MiB"
    )
    for r, cpu in zip(real.runs, real.agents_cpu_s, strict=True):
        print(f"    true on all, max-concurrency 100%: {describe_run(r, None)}  [{verdict(r.ok)}]")
        print(
            f"      the agents' CPU meanwhile: {cpu:.2f} s in all, {1000 * cpu / real.agents:.0f} ms per agent "
            f"(on {os.cpu_count()} cores: >= {cpu / (os.cpu_count() or 1):.2f} s of wall time)"
        )
    if real.error:
        print(f"    FAIL  <<< {real.error}")


async def main(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="fleetops-fanout-", dir="/tmp"))
    children = Children(tmp)
    postgres: Postgres | None = None
    t = time.monotonic()
    try:
        print(f"floor: {args.agents} bare grpc.aio mTLS streams...", flush=True)
        floor = await floor_fanout(children, args, tmp)
        sims = [Sim(args.agents)]
        if args.replicas > 1:  # the same share per replica on one, then N replicas, both on PostgreSQL
            sims = [Sim(args.agents // args.replicas, 1), Sim(args.agents, args.replicas)]
            postgres = Postgres.external(args.database_url) if args.database_url else await Postgres.start()
        for sim in sims:
            print(f"floor: {floor.seconds:.3f} s; {sim.title}...", flush=True)
            await sim_fanout(children, args, tmp, sim, postgres)
        real = None
        if args.real_agents > 0:
            print(f"fleetops: {args.real_agents} real agents...", flush=True)
            real = await real_fanout(children, tmp, args.real_agents, args.real_rounds, args.register_parallel)
        report(args, floor, sims, real)
        print(f"\n(bench took {time.monotonic() - t:.0f} s)")
    finally:
        await children.cleanup()
        if postgres is not None:
            await postgres.stop()
        if args.keep_tmp:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=1000, help="simulated agents (N)")
    p.add_argument("--procs", type=int, default=4, help="client processes (P)")
    p.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="controller replicas (R > 1: the agents spread over R replicas on PostgreSQL, next to N/R on one)",
    )
    p.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL server for --replicas, postgresql+asyncpg://USER@HOST:PORT (no database: the bench "
        "creates and drops its own); default: a throwaway cluster (needs root)",
    )
    p.add_argument("--floor-rounds", type=int, default=3, help="broadcasts on the floor (the median counts)")
    p.add_argument("--rounds", type=int, default=2, help="100%% fan-outs to the simulated agents")
    p.add_argument("--no-50", dest="with_50", action="store_false", help="skip the max-concurrency 50 run")
    p.add_argument("--real-agents", type=int, default=100, help="real fleetops-agent processes (0: skip)")
    p.add_argument("--real-rounds", type=int, default=1, help="fan-outs to the real agents")
    p.add_argument("--register-parallel", type=int, default=4, help="agent registrations at a time")
    p.add_argument("--timeout", type=float, default=120.0, help="per-stream connect limit")
    p.add_argument("--py-spy", metavar="FILE", help="record the controller during each 100%% run (FILE.<run>)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, state) for inspection")
    return p.parse_args(argv)


if __name__ == "__main__":
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role == "_client":
        kind, target, creds, start, count, timeout = sys.argv[2:8]
        asyncio.run(fanout_support.client_main(kind, target, Path(creds), int(start), int(count), float(timeout)))
    elif role == "_floor-server":
        asyncio.run(fanout_support.floor_server_main(Path(sys.argv[2])))
    else:
        sys.exit(support.run_bench(main(parse_args(sys.argv[1:]))))
