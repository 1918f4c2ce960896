"""Helpers for bench/connect.py (reused by bench/fanout.py): the storm clients, the bare-gRPC floor
server, certificates, hosts registered straight in the controller database, child processes and /proc inspection.

Both storm kinds use the same client code path, so the ratio fleetops/floor isolates what the
controller adds on top of grpc.aio itself:

* ``floor``: one generic stream_stream method ``/bench.Floor/Connect`` that reads one message,
  writes one reply and then holds the stream until the client goes away.
* ``fleetops``: ``fleetops.v1.AgentService/Connect`` on a real controller (Hello -> Welcome).

Every simulated agent has its own client certificate and its own channel with a local subchannel
pool, i.e. its own TCP connection and mTLS handshake, as a real agent would.

With several controller replicas the client's target is their addresses, comma-separated, and
agent ``i`` (counted over all clients) dials address ``i mod R`` (``spread``).

Client protocol (stdin/stdout lines): the client prints ``ready`` once its credentials are
built, starts on ``go``, prints ``done {json}`` with the CLOCK_MONOTONIC time of every reply
(comparable across processes on Linux), then holds its streams open until ``stop`` or EOF.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc

from fleetops.agent.link import CHANNEL_OPTIONS
from fleetops.common import pki
from fleetops.common.wire import inventory_to_proto
from fleetops.v1 import agent_pb2, agent_pb2_grpc

FLOOR_SERVICE = "bench.Floor"
FLOOR_METHOD = f"/{FLOOR_SERVICE}/Connect"
FLOOR_SERVER_OPTIONS = (("grpc.server.max_pending_requests", 20000),)
# One connection per simulated agent even inside one process (the global pool could share them).
CLIENT_OPTIONS = (*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1))
LIFETIME = timedelta(hours=24)
# A client's report line holds a timestamp per stream: ~20 bytes x 2,500 streams, past asyncio's 64 KiB.
REPORT_LINE_LIMIT = 64 * 1024 * 1024
PY = sys.executable
ENV = {**os.environ, "GRPC_VERBOSITY": "ERROR", "PYTHONUNBUFFERED": "1"}


# --- certificates ------------------------------------------------------------------------------


def issue_client(authority: pki.CertificateAuthority, host_id: str) -> tuple[bytes, bytes]:
    """A fresh key and a host client certificate for ``host_id`` signed by ``authority``."""
    key = pki.generate_private_key()
    csr = pki.load_csr(pki.build_csr(key, host_id))
    cert = authority.issue_host_certificate(csr, host_id, LIFETIME)
    return pki.private_key_pem(key), pki.cert_pem(cert)


def make_floor_creds(n: int, path: Path) -> None:
    """A throwaway CA, a server certificate for 127.0.0.1 and ``n`` client certificates, as JSON."""
    ca = pki.CertificateAuthority.create("bench floor CA")
    server_key = pki.generate_private_key()
    server_cert = ca.issue_server_certificate(server_key.public_key(), ["localhost"], ["127.0.0.1"], LIFETIME)
    agents = []
    for i in range(n):
        key_pem, cert_pem = issue_client(ca, f"floor-{i:05d}")
        agents.append(
            {"host_id": f"floor-{i:05d}", "name": f"floor-{i:05d}", "key": key_pem.decode(), "cert": cert_pem.decode()}
        )
    doc = {
        "ca": pki.cert_pem(ca.cert).decode(),
        "server_key": pki.private_key_pem(server_key).decode(),
        "server_chain": (pki.cert_pem(server_cert) + pki.cert_pem(ca.cert)).decode(),
        "agents": agents,
    }
    path.write_text(json.dumps(doc))


def hello(host_id: str, name: str) -> agent_pb2.AgentMessage:
    """A Hello with a small inventory, like a real agent's first message."""
    inventory = {
        "hostname": name,
        "os_family": "linux",
        "os_name": "Debian GNU/Linux",
        "os_version": "12",
        "kernel": "6.1.0-bench",
        "arch": "x86_64",
        "cpu_count": 2,
        "memory_bytes": 4 << 30,
        "disks": [{"mountpoint": "/", "device": "/dev/sda1", "fstype": "ext4", "total_bytes": 50 << 30}],
        "ip_addresses": ["10.0.0.1"],
        "boot_time": 1.7e9,
        "agent_version": "bench",
    }
    return agent_pb2.AgentMessage(
        hello=agent_pb2.Hello(host_id=host_id, inventory=inventory_to_proto(inventory), agent_version="bench")
    )


async def _readline() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


# --- the floor server --------------------------------------------------------------------------


async def start_floor_server(
    doc: dict[str, Any],
    service: str,
    method: str,
    handler: grpc.RpcMethodHandler,
    options: tuple[tuple[str, Any], ...] = FLOOR_SERVER_OPTIONS,
) -> tuple[grpc.aio.Server, int]:
    """A started grpc.aio server with mutual TLS (the server identity and CA of ``doc``, see
    make_floor_creds) serving ``handler`` as /``service``/``method`` on 127.0.0.1; and its port."""
    server = grpc.aio.server(options=options)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {method: handler}),))
    creds = grpc.ssl_server_credentials(
        [(doc["server_key"].encode(), doc["server_chain"].encode())],
        root_certificates=doc["ca"].encode(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", creds)
    await server.start()
    return server, port


async def floor_server_main(creds_path: Path) -> None:
    doc = json.loads(creds_path.read_text())
    reply = agent_pb2.ControllerMessage(
        welcome=agent_pb2.Welcome(host_id="floor", heartbeat_interval_seconds=10, inventory_interval_seconds=3600)
    ).SerializeToString()

    async def connect(request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        try:
            await anext(request_iterator)
        except StopAsyncIteration:
            return
        await context.write(reply)
        async for _ in request_iterator:  # hold the stream open until the client leaves
            pass

    server, port = await start_floor_server(
        doc, FLOOR_SERVICE, "Connect", grpc.stream_stream_rpc_method_handler(connect)
    )
    print(f"floor-server ready {port}", flush=True)
    await _readline()  # "stop" or EOF
    await server.stop(1)


# --- the storm clients -------------------------------------------------------------------------


async def client_main(kind: str, target: str, creds_path: Path, start: int, count: int, timeout: float) -> None:
    doc = json.loads(creds_path.read_text())
    ca = doc["ca"].encode()
    agents = doc["agents"][start : start + count]
    creds = [grpc.ssl_channel_credentials(ca, a["key"].encode(), a["cert"].encode()) for a in agents]
    messages = [hello(a["host_id"], a["name"]) for a in agents]
    floor_payloads = [m.SerializeToString() for m in messages]  # same bytes on the wire as fleetops
    channels: list[grpc.aio.Channel] = []
    calls: list[Any] = []

    async def one(i: int) -> float:
        channel = grpc.aio.secure_channel(spread(target, start + i), creds[i], options=CLIENT_OPTIONS)
        channels.append(channel)
        if kind == "fleetops":
            call = agent_pb2_grpc.AgentServiceStub(channel).Connect()
            calls.append(call)
            await call.write(messages[i])
        else:
            call = channel.stream_stream(FLOOR_METHOD)()
            calls.append(call)
            await call.write(floor_payloads[i])
        reply = await call.read()
        if reply is grpc.aio.EOF:
            raise ConnectionError(f"EOF {(await call.code()).name}")
        if kind == "fleetops" and reply.WhichOneof("body") != "welcome":
            raise ConnectionError(f"got {reply.WhichOneof('body')}")
        return time.monotonic()

    print("ready", flush=True)
    await _readline()  # "go"
    results = await asyncio.gather(
        *(asyncio.wait_for(one(i), timeout) for i in range(len(agents))), return_exceptions=True
    )
    welcomed = [r for r in results if isinstance(r, float)]
    errors = Counter(_describe(r) for r in results if not isinstance(r, float))
    print("done " + json.dumps({"welcomed": welcomed, "errors": dict(errors)}), flush=True)
    await _readline()  # "stop" or EOF: until then every stream stays open and silent
    for call in calls:
        call.cancel()
    await asyncio.gather(*(c.close() for c in channels), return_exceptions=True)


def spread(targets: str, index: int) -> str:
    """The address simulated agent ``index`` dials: round-robin over comma-separated ``targets``
    (one controller replica's listen port each; no load balancer in between)."""
    addresses = targets.split(",")
    return addresses[index % len(addresses)]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"[:120]
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    return f"{type(exc).__name__}: {exc}"[:120]


# --- child processes ---------------------------------------------------------------------------


#: Where each child's stderr goes (pid -> log file): quoted when a child exits without a word.
CHILD_LOGS: dict[int, Path] = {}


class Children:
    """Every process this run started, each in its own session; cleanup kills each group by id."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[asyncio.subprocess.Process] = []

    async def spawn(self, *args: str, log: str, pipes: bool = False) -> asyncio.subprocess.Process:
        out = open(self.tmp / log, "ab")  # noqa: SIM115 - the child owns it; closed when we exit
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE if pipes else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if pipes else out,
            stderr=out,
            env=ENV,
            start_new_session=True,
            limit=REPORT_LINE_LIMIT,
        )
        out.close()
        self.procs.append(proc)
        CHILD_LOGS[proc.pid] = self.tmp / log
        return proc

    async def stop(self, proc: asyncio.subprocess.Process, grace: float = 10.0) -> None:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            if proc.returncode is not None:
                return
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(proc.wait(), wait)
            except TimeoutError:
                continue

    async def cleanup(self) -> None:
        for proc in reversed(self.procs):
            await self.stop(proc, grace=5.0)


async def stop_gently(children: Children, procs: list[asyncio.subprocess.Process]) -> None:
    """Ask children that hold streams (clients, floor server) to close them; kill what stays."""
    for c in procs:
        if c.returncode is None and c.stdin is not None:
            c.stdin.write(b"stop\n")
            c.stdin.close()
    try:
        await asyncio.wait_for(asyncio.gather(*(c.wait() for c in procs)), 15)
    except TimeoutError:
        await asyncio.gather(*(children.stop(c, grace=5.0) for c in procs))


async def run(*args: str, timeout: float = 60.0) -> str:
    """Run a command to completion; its stdout, or an error with its stderr."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=ENV, start_new_session=True
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise RuntimeError(f"timed out after {timeout}s: {' '.join(args)}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{err.decode()[-2000:]}")
    return out.decode()


async def wait_for_line(path: Path, pattern: str, proc: asyncio.subprocess.Process, timeout: float) -> re.Match[str]:
    regex, deadline = re.compile(pattern), time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if m := regex.search(text):
            return m
        if proc.returncode is not None:
            break
        await asyncio.sleep(0.1)
    raise RuntimeError(f"no /{pattern}/ in {path} (exit {proc.returncode}):\n{text[-3000:]}")


def run_bench(main: Coroutine[Any, Any, int]) -> int:
    """Run a bench's ``main``; a failure prints ``error: <the reason>`` (no traceback) and returns 1."""
    try:
        return asyncio.run(main)
    except (RuntimeError, TimeoutError, OSError, ValueError) as exc:
        print(f"\nerror: the bench failed: {exc or type(exc).__name__}", file=sys.stderr, flush=True)
        return 1


async def readline(proc: asyncio.subprocess.Process, timeout: float) -> str:
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode().strip()
    if line.startswith("error: "):
        raise RuntimeError(f"child {proc.pid}: {line.removeprefix('error: ')}")
    if not line:
        log = CHILD_LOGS.get(proc.pid)
        tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
        raise RuntimeError(
            f"child {proc.pid} exited ({await proc.wait()}) without output"
            + (f"; the end of {log}:\n{tail}" if tail else "; see its log in the temp dir")
        )
    return line


# --- fleetops state and process inspection ------------------------------------------------------


async def register_hosts(state_dir: Path, n: int, creds: Path, database_url: str = "") -> None:
    """N hosts in the controller's database (its SQLite file, or ``database_url``), with certificates
    from its CA (no enrollment RPCs)."""
    from fleetops.common import pki
    from fleetops.controller.fleet.presence import PresenceTracker
    from fleetops.controller.fleet.service import FleetService, new_host_id
    from fleetops.controller.settings import ControllerSettings
    from fleetops.controller.store import database

    settings = ControllerSettings(state_dir=state_dir, database_url=database_url)
    authority = pki.CertificateAuthority.load(settings.ca_dir)
    engine = database.create_engine(settings.effective_database_url)
    sessions = database.session_factory(engine)
    fleet = FleetService(sessions, PresenceTracker(sessions, "bench"), heartbeat_interval=10.0)
    agents = []
    try:
        async with sessions() as session, session.begin():
            for i in range(n):
                host_id, name = new_host_id(), f"bench-sim-{i:05d}"
                key_pem, cert_pem = issue_client(authority, host_id)
                cert = pki.load_cert(cert_pem)
                await fleet.add_host(
                    session,
                    host_id=host_id,
                    hostname=name,
                    tags={"bench": "sim"},
                    inventory={},
                    activation_id="bench",
                    certificate_serial=format(cert.serial_number, "x"),
                    certificate_expires_at=cert.not_valid_after_utc,
                )
                agents.append({"host_id": host_id, "name": name, "key": key_pem.decode(), "cert": cert_pem.decode()})
    finally:
        await engine.dispose()
    creds.write_text(json.dumps({"ca": pki.cert_pem(authority.cert).decode(), "agents": agents}))


def connected_gauge(metrics_port: int, name: str = "fleetops_connected_agents") -> float:
    """A controller's gauge ``name`` (unlabelled) from its /metrics; -1 when absent."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    m = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else -1.0


def rss_by_mapping(pid: int) -> tuple[float, str]:
    """RSS of file mappings in MiB and the largest of them, from /proc/PID/smaps."""
    per_file: dict[str, int] = {}
    name = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            name = fields[5] if len(fields) > 5 and fields[5].startswith("/") else ""
        elif fields[0] == "Rss:" and name:
            per_file[name] = per_file.get(name, 0) + int(fields[1])
    top = sorted(per_file.items(), key=lambda kv: -kv[1])[:4]
    return sum(per_file.values()) / 1024, ", ".join(f"{Path(f).name.split('.')[0]} {kib / 1024:.1f}" for f, kib in top)
