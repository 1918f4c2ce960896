"""Helpers for bench/connect.py: certificates, the bare-gRPC floor server and the storm clients.

Both storm kinds use the same client code path, so the ratio fleetops/floor isolates what the
controller adds on top of grpc.aio itself:

* ``floor``: one generic stream_stream method ``/bench.Floor/Connect`` that reads one message,
  writes one reply and then holds the stream until the client goes away.
* ``fleetops``: ``fleetops.v1.AgentService/Connect`` on a real controller (Hello -> Welcome).

Every simulated agent has its own client certificate and its own channel with a local subchannel
pool, i.e. its own TCP connection and mTLS handshake, as a real agent would.

Client protocol (stdin/stdout lines): the client prints ``ready`` once its credentials are
built, starts on ``go``, prints ``done {json}`` with the CLOCK_MONOTONIC time of every reply
(comparable across processes on Linux), then holds its streams open until ``stop`` or EOF.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
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
        agents.append({"host_id": f"floor-{i:05d}", "name": f"floor-{i:05d}", "key": key_pem.decode(), "cert": cert_pem.decode()})
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
        "hostname": name, "os_family": "linux", "os_name": "Debian GNU/Linux", "os_version": "12",
        "kernel": "6.1.0-bench", "arch": "x86_64", "cpu_count": 2, "memory_bytes": 4 << 30,
        "disks": [{"mountpoint": "/", "device": "/dev/sda1", "fstype": "ext4", "total_bytes": 50 << 30}],
        "ip_addresses": ["10.0.0.1"], "boot_time": 1.7e9, "agent_version": "bench",
    }  # fmt: skip
    return agent_pb2.AgentMessage(
        hello=agent_pb2.Hello(host_id=host_id, inventory=inventory_to_proto(inventory), agent_version="bench")
    )


async def _readline() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


# --- the floor server --------------------------------------------------------------------------


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

    server = grpc.aio.server(options=FLOOR_SERVER_OPTIONS)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(FLOOR_SERVICE, {"Connect": grpc.stream_stream_rpc_method_handler(connect)}),)
    )
    creds = grpc.ssl_server_credentials(
        [(doc["server_key"].encode(), doc["server_chain"].encode())], root_certificates=doc["ca"].encode(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", creds)
    await server.start()
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
        channel = grpc.aio.secure_channel(target, creds[i], options=CLIENT_OPTIONS)
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
    results = await asyncio.gather(*(asyncio.wait_for(one(i), timeout) for i in range(len(agents))), return_exceptions=True)
    welcomed = [r for r in results if isinstance(r, float)]
    errors = Counter(_describe(r) for r in results if not isinstance(r, float))
    print("done " + json.dumps({"welcomed": welcomed, "errors": dict(errors)}), flush=True)
    await _readline()  # "stop" or EOF: until then every stream stays open and silent
    for call in calls:
        call.cancel()
    await asyncio.gather(*(c.close() for c in channels), return_exceptions=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"[:120]
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    return f"{type(exc).__name__}: {exc}"[:120]
