"""Connect-storm benchmark: N agents coming online at once, against a bare-gRPC floor.

Run from the repository root::

    .venv/bin/python bench/connect.py [--agents 1000] [--procs 4] [--idle-seconds 60]
    .venv/bin/python bench/connect.py --replicas 3 --agents 5000 --idle-seconds 0   # as root (PostgreSQL)

What it measures, all on 127.0.0.1 and in one run so the numbers share one machine state:

1. floor: a minimal grpc.aio server (generic stream_stream handler: read one message, write one
   reply, hold the stream) with mutual TLS; N client streams over P client processes, each on its
   own connection with its own client certificate, send one message and await the reply. Time
   from "go" to the last reply.
2. fleetops: a real ``fleetops-controller serve`` subprocess. N hosts are registered straight in
   its database (certificates signed with its CA) before it starts, so enrollment is not part of
   the measurement. The same clients then open AgentService.Connect, send a Hello with a small
   inventory and await the Welcome. Time from "go" to all N welcomed; then the controller's
   ``fleetops_connected_agents`` gauge and ``opsctl hosts list`` must both show N online, and
   the controller's RSS growth divided by N is its memory cost per connected (idle) agent
   (printed next to the floor server's growth per stream).
   With ``--replicas R`` (issue 14) the controller is R replicas sharing one PostgreSQL database
   (a throwaway cluster, or the server of ``--database-url``) and one CA; the clients dial the
   replicas' own ports round-robin. "All online" is then also timed until the gauges summed over
   the replicas and ``opsctl hosts list`` (on r1) show N, and the RSS growth is given per replica
   (per agent it holds).
3. idle agent: one real ``fleetops-agent`` (registered through the CLI, then ``run``) and, as its
   floor, bench/bare_agent.py (one grpc.aio Connect stream plus heartbeats, nothing else), side by
   side against the same controller; RSS and CPU time of both over --idle-seconds (0 skips it).

Goals (printed as PASS/FAIL; the exit code is 0 either way, this is a measurement): 1000 online
in < 3 s (more agents: all online, next to the floor), <= 200 KiB controller RSS per agent, real
agent idle RSS <= 1.1x the bare agent's (its floor, measured beside it); the idle CPU of both is
printed (run --idle-seconds 600 for ten minutes). Ten thousand on one controller::

    .venv/bin/python bench/connect.py --agents 10000 --idle-seconds 0 --timeout 300

Modes ``_client`` and ``_floor-server`` are this script re-run as a child (see connect_support.py).
``--py-spy FILE`` records the controller during the storm (``pip install py-spy`` into the venv).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import connect_support as support
import psutil
from connect_support import Children, readline, rss_by_mapping, run, stop_gently, wait_for_line
from controller_support import (
    Controller,
    gauge_sum,
    poll,
    start_controller,
    start_py_spy,
    start_replicas,
    stop_py_spy,
)
from postgres_support import Postgres

PY = sys.executable
HERE = Path(__file__).resolve().parent
SCRIPT = str(HERE / "connect.py")
GOAL_ONLINE_S, GOAL_KIB_PER_AGENT, GOAL_AGENT_RATIO = 3.0, 200.0, 1.1
GOAL_ONLINE_AGENTS = 1000
MiB = 1024 * 1024


# --- one storm ---------------------------------------------------------------------------------


@dataclass
class Storm:
    t_go: float = 0.0  # CLOCK_MONOTONIC at "go"
    seconds: float = float("nan")
    welcomed: int = 0
    p50: float = 0.0
    p99: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    server_cpu_s: float = 0.0  # summed over the servers (replicas)
    server_connections: int = 0
    rss: list[tuple[int, int]] = field(default_factory=list)  # (before, after) of each server
    gauge: float = -1  # fleetops: the connected-agents gauge (summed over replicas) ...
    gauge_s: float = float("nan")  # ... and when, from "go", it first showed every welcomed agent

    @property
    def rss_before(self) -> int:
        return sum(before for before, _ in self.rss)

    @property
    def rss_after(self) -> int:
        return sum(after for _, after in self.rss)


async def start_clients(children: Children, kind: str, target: str, creds: Path, args: argparse.Namespace) -> list:
    """P client processes holding N/P simulated agents each, credentials built, waiting for "go"."""
    clients, n, p = [], args.agents, args.procs
    for i in range(p):
        start, stop = n * i // p, n * (i + 1) // p
        role = ["_client", kind, target, str(creds), str(start), str(stop - start), str(args.timeout)]
        clients.append(await children.spawn(PY, SCRIPT, *role, log=f"{kind}-client-{i}.log", pipes=True))
    for c in clients:
        if (line := await readline(c, 120)) != "ready":
            raise RuntimeError(f"client said {line!r}")
    await asyncio.sleep(1.0)  # let the machine settle before "go"
    return clients


async def storm(
    clients: list, server_pids: list[int], timeout: float, gauge: Callable[[], Awaitable[float]] | None = None
) -> Storm:
    """Time the clients' streams from "go" to the last reply; the servers' CPU, RSS and connections.

    ``gauge`` (fleetops): the connected-agents gauge, polled after the last reply until it shows every
    welcomed agent (``gauge_s``: from "go" until then)."""
    servers = [psutil.Process(pid) for pid in server_pids]
    rss_before = [server.memory_info().rss for server in servers]

    def cpu() -> float:
        return sum(sum(server.cpu_times()[:2]) for server in servers)

    cpu0 = cpu()
    result = Storm(t_go=time.monotonic())  # CLOCK_MONOTONIC: the clients' reply times are on the same clock
    t_go = result.t_go
    for c in clients:
        c.stdin.write(b"go\n")
    await asyncio.gather(*(c.stdin.drain() for c in clients))
    done = [json.loads((await readline(c, timeout + 30)).removeprefix("done ")) for c in clients]
    result.server_cpu_s = cpu() - cpu0
    times = sorted(t - t_go for d in done for t in d["welcomed"])
    if times:
        result.welcomed, result.seconds = len(times), times[-1]
        result.p50, result.p99 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]
    for d in done:
        for k, v in d["errors"].items():
            result.errors[k] = result.errors.get(k, 0) + v
    if gauge is not None:
        result.gauge = await poll(gauge, result.welcomed, 30, interval=0.05)
        result.gauge_s = time.monotonic() - t_go
    await asyncio.sleep(1.0)  # let write-behind presence flushes and lazy allocations settle
    result.server_connections = sum(
        1 for server in servers for c in server.net_connections("tcp") if c.status == psutil.CONN_ESTABLISHED
    )
    result.rss = [(before, server.memory_info().rss) for before, server in zip(rss_before, servers, strict=True)]
    return result


async def floor_storm(children: Children, args: argparse.Namespace, tmp: Path) -> Storm:
    creds = tmp / "floor-creds.json"
    support.make_floor_creds(args.agents, creds)
    server = await children.spawn(PY, SCRIPT, "_floor-server", str(creds), log="floor-server.log", pipes=True)
    port = int((await readline(server, 60)).split()[-1])
    clients = await start_clients(children, "floor", f"127.0.0.1:{port}", creds, args)
    try:
        return await storm(clients, [server.pid], args.timeout)
    finally:
        await stop_gently(children, clients)
        await stop_gently(children, [server])


# --- fleetops ----------------------------------------------------------------------------------


@dataclass
class Idle:
    """RSS samples and CPU share of one idle agent process."""

    rss: list[int] = field(default_factory=list)
    cpu_pct: float = float("nan")
    file_mib: float = 0.0  # RSS of file mappings (shared libraries), last sample
    top_libs: str = ""


@dataclass
class Fleet:
    storm: Storm
    gauges: list[float] = field(default_factory=list)  # fleetops_connected_agents of each replica, settled
    online: int = -1
    online_s: float = float("nan")  # from "go" until opsctl hosts list showed N online
    agent: Idle = field(default_factory=Idle)
    bare: Idle = field(default_factory=Idle)
    idle_s: float = 0.0
    agent_error: str = ""


async def start_fleet(
    children: Children, args: argparse.Namespace, tmp: Path, creds: Path, postgres: Postgres | None
) -> list[Controller]:
    """One controller on SQLite, or (``postgres``) --replicas replicas on a fresh PostgreSQL database."""
    if postgres is None:
        return [await start_controller(children, tmp / "ctl", hosts=args.agents, creds=creds)]
    database = await postgres.new_database(f"connect{args.agents}")
    return await start_replicas(children, tmp / "ctl", args.replicas, database, hosts=args.agents, creds=creds)


async def fleetops_storm(children: Children, args: argparse.Namespace, tmp: Path, postgres: Postgres | None) -> Fleet:
    creds = tmp / "fleetops-creds.json"
    replicas = await start_fleet(children, args, tmp, creds, postgres)
    ctl = replicas[0]  # opsctl and the idle agents use the first
    controller, state, ports, opsctl = ctl.proc, ctl.state, ctl.ports, ctl.opsctl

    clients = await start_clients(children, "fleetops", ",".join(r.address for r in replicas), creds, args)
    spy = await start_py_spy(children, controller.pid, args.py_spy) if args.py_spy else None
    try:

        async def gauge() -> float:
            return await asyncio.to_thread(gauge_sum, replicas)

        result = Fleet(await storm(clients, [r.proc.pid for r in replicas], args.timeout, gauge))
        if spy is not None:
            await stop_py_spy(spy)

        async def online() -> int:
            hosts = json.loads(await run(*opsctl, "hosts", "list", "-o", "json"))
            return sum(1 for h in hosts if h.get("status") == "online" and h["name"].startswith("bench-sim-"))

        await poll(gauge, args.agents, 5)
        result.gauges = [await asyncio.to_thread(r.gauge) for r in replicas]
        result.online = await poll(online, args.agents, 15)
        result.online_s = time.monotonic() - result.storm.t_go
    finally:
        await stop_gently(children, clients)
    if args.idle_seconds > 0:
        try:
            await idle_agents(children, args, tmp, state, ports, opsctl, creds, result)
        except (TimeoutError, RuntimeError, psutil.Error) as exc:
            result.agent_error = str(exc).strip().splitlines()[-1][:300]
    await asyncio.gather(*(children.stop(r.proc) for r in replicas))
    return result


# --- idle agents -------------------------------------------------------------------------------


async def idle_agents(
    children: Children,
    args: argparse.Namespace,
    tmp: Path,
    state: Path,
    ports: dict,
    opsctl: list,
    creds: Path,
    result: Fleet,
) -> None:
    """fleetops-agent (enrolled through the CLI) and bare_agent.py side by side, sampled together."""
    address = f"127.0.0.1:{ports['listen']}"
    act = json.loads(await run(*opsctl, "activation", "create", "--limit", "1", "-o", "json"))
    agent_dir = str(tmp / "agent-real")
    register = ["register", "--controller", address, "--enroll-port", str(ports["enroll"]), "--name", "bench-real"]
    register += ["--activation-id", act["id"], "--activation-code", act["code"]]
    register += ["--ca-cert", str(state / "ca" / "ca.pem")]
    await run(PY, "-m", "fleetops.agent", "--state-dir", agent_dir, *register)
    agent = await children.spawn(PY, "-m", "fleetops.agent", "--state-dir", agent_dir, "run", log="agent-real.log")
    bare = await children.spawn(PY, str(HERE / "bare_agent.py"), address, str(creds), "0", log="bare-agent.log")
    await wait_for_line(tmp / "agent-real.log", r"connected to .* as host", agent, 60)
    await wait_for_line(tmp / "bare-agent.log", r"welcomed", bare, 60)
    procs = {"agent": psutil.Process(agent.pid), "bare": psutil.Process(bare.pid)}
    cpu0 = {k: sum(p.cpu_times()[:2]) for k, p in procs.items()}
    t0 = time.monotonic()
    while (elapsed := time.monotonic() - t0) < args.idle_seconds:
        for k, p in procs.items():
            getattr(result, k).rss.append(p.memory_info().rss)
        await asyncio.sleep(min(1.0, args.idle_seconds - elapsed))
    result.idle_s = time.monotonic() - t0
    for k, p in procs.items():
        idle: Idle = getattr(result, k)
        idle.rss.append(p.memory_info().rss)
        idle.cpu_pct = 100 * (sum(p.cpu_times()[:2]) - cpu0[k]) / result.idle_s
        idle.file_mib, idle.top_libs = rss_by_mapping(p.pid)
    await children.stop(agent)
    await children.stop(bare)


# --- report ------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL  <<<"


def report(args: argparse.Namespace, floor: Storm, fleet: Fleet) -> None:
    n, s = args.agents, fleet.storm
    # per agent actually connected (a stream that failed is not an agent); FAIL unless all N are
    kib = (s.rss_after - s.rss_before) / 1024 / max(1, s.welcomed)
    floor_kib = (floor.rss_after - floor.rss_before) / 1024 / max(1, floor.welcomed)
    all_online = s.welcomed == n and not s.errors
    replicas = f", {args.replicas} controller replicas on one PostgreSQL" if args.replicas > 1 else ""
    print(f"\nconnect storm, N={n} agents over P={args.procs} client processes ({os.cpu_count()} cores){replicas}")
    for name, st in (("floor (bare grpc.aio mTLS streams):", floor), ("fleetops (Hello -> Welcome):", s)):
        print(
            f"  {name:37s} {st.seconds:5.2f} s   welcomed {st.welcomed}/{n}, p50 {st.p50:.2f} s, p99 {st.p99:.2f} s, "
            f"server CPU {st.server_cpu_s:.2f} s, {st.server_connections} TCP connections"
        )
        for err, count in st.errors.items():
            print(f"      {count} failed: {err}")
    print(
        f"  fleetops all online: {s.seconds:.2f} s   ratio {s.seconds / floor.seconds:.2f}x floor   "
        + (
            f"goal < {GOAL_ONLINE_S:.0f} s: {verdict(all_online and s.seconds < GOAL_ONLINE_S)}"
            if args.agents <= GOAL_ONLINE_AGENTS
            else f"(the {GOAL_ONLINE_S:.0f} s goal is for {GOAL_ONLINE_AGENTS}; all online: {verdict(all_online)})"
        )
    )
    gauge = sum(fleet.gauges)
    gauges = " + ".join(f"r{i + 1} {g:.0f}" for i, g in enumerate(fleet.gauges)) if args.replicas > 1 else ""
    print(
        f"  controller view: gauge fleetops_connected_agents={gauge:.0f}{f' ({gauges})' if gauges else ''} "
        f"{s.gauge_s:.2f} s after go, opsctl hosts online={fleet.online} {fleet.online_s:.2f} s after go "
        f"(want {n}: {verdict(gauge == n and fleet.online == n)})"
    )
    print(
        f"  controller RSS per connected agent: {kib:.0f} KiB ({s.rss_before / MiB:.1f} -> {s.rss_after / MiB:.1f} MiB)"
        f"   goal <= {GOAL_KIB_PER_AGENT:.0f} KiB: {verdict(s.welcomed == n and kib <= GOAL_KIB_PER_AGENT)}"
        f"   [floor server: {floor_kib:.0f} KiB/stream, ratio {kib / floor_kib:.2f}x]"
    )
    if args.replicas > 1:
        for i, ((before, after), held) in enumerate(zip(s.rss, fleet.gauges, strict=True)):
            print(
                f"      r{i + 1}: {held:.0f} agents, {(after - before) / 1024 / max(1, held):.0f} KiB per agent "
                f"({before / MiB:.1f} -> {after / MiB:.1f} MiB)"
            )
    a, b = fleet.agent, fleet.bare
    if a.rss and not fleet.agent_error:
        rss, peak, bare_rss = a.rss[-1] / MiB, max(a.rss) / MiB, b.rss[-1] / MiB
        ratio = peak / bare_rss
        print(
            f"  real agent idle: RSS {rss:.1f} MiB (max {peak:.1f}), CPU {a.cpu_pct:.2f}% of one core over "
            f"{fleet.idle_s:.0f} s ({a.cpu_pct * fleet.idle_s / 100:.2f} CPU-s)"
        )
        print(
            f"      floor (bench/bare_agent.py, one grpc.aio stream + heartbeats): RSS {bare_rss:.1f} MiB, "
            f"CPU {b.cpu_pct:.2f}% ({b.cpu_pct * fleet.idle_s / 100:.2f} CPU-s)   "
            f"-> agent is {peak - bare_rss:+.1f} MiB, "
            f"{ratio:.2f}x floor   goal <= {GOAL_AGENT_RATIO}x: {verdict(ratio <= GOAL_AGENT_RATIO)}"
        )
        for label, idle in (("agent", a), ("floor", b)):
            print(
                f"      {label} RSS = {idle.file_mib:.1f} MiB in file mappings ({idle.top_libs}) "
                f"+ {idle.rss[-1] / MiB - idle.file_mib:.1f} MiB in anonymous mappings"
            )
    elif fleet.agent_error:
        print(f"  real agent idle: FAIL  <<< could not run it (or it or its floor died): {fleet.agent_error}")
    else:
        print("  real agent idle: skipped (--idle-seconds 0)")


async def main(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="fleetops-bench-", dir="/tmp"))
    children = Children(tmp)
    postgres: Postgres | None = None
    try:
        print(f"floor: {args.agents} bare grpc.aio mTLS streams...", flush=True)
        floor = await floor_storm(children, args, tmp)
        print(
            f"floor: {floor.seconds:.2f} s; fleetops: {args.agents} agents, then idle agents "
            f"for {args.idle_seconds:.0f} s...",
            flush=True,
        )
        if args.replicas > 1:
            postgres = Postgres.external(args.database_url) if args.database_url else await Postgres.start()
        fleet = await fleetops_storm(children, args, tmp, postgres)
        report(args, floor, fleet)
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
        "--replicas", type=int, default=1, help="controller replicas (R > 1: on PostgreSQL, agents spread round-robin)"
    )
    p.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL server for --replicas, postgresql+asyncpg://USER@HOST:PORT (no database: the bench "
        "creates and drops its own); default: a throwaway cluster (needs root)",
    )
    p.add_argument("--idle-seconds", type=float, default=60.0, help="idle agent sampling window (0: skip)")
    p.add_argument("--timeout", type=float, default=120.0, help="per-stream limit for a storm")
    p.add_argument(
        "--py-spy",
        metavar="FILE",
        help="record the controller during the storm (.svg: flame graph, else collapsed stacks)",
    )
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, state) for inspection")
    return p.parse_args(argv)


if __name__ == "__main__":
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role == "_client":
        kind, target, creds, start, count, timeout = sys.argv[2:8]
        asyncio.run(support.client_main(kind, target, Path(creds), int(start), int(count), float(timeout)))
    elif role == "_floor-server":
        asyncio.run(support.floor_server_main(Path(sys.argv[2])))
    else:
        sys.exit(support.run_bench(main(parse_args(sys.argv[1:]))))
