"""The smallest possible grpc.aio agent: the RSS floor a Python agent on this stack cannot go below.

``python bench/bare_agent.py TARGET CREDS.json INDEX`` opens one mTLS AgentService.Connect
stream with the identity ``agents[INDEX]`` of CREDS (see connect.py), sends a Hello, waits for
the Welcome, prints ``welcomed`` and then sends a heartbeat every heartbeat interval (and reads
what the controller sends), like fleetops-agent, until killed. It imports only asyncio, grpc and
the generated protos (no cryptography, psutil or fleetops code), so connect.py compares
fleetops-agent's idle RSS with it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import grpc

from fleetops.v1 import agent_pb2, agent_pb2_grpc

# The same channel options as fleetops.agent.link.CHANNEL_OPTIONS (not imported: it pulls in cryptography).
OPTIONS = (
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.enable_retries", 0),
)


async def main(target: str, creds_path: str, index: int) -> None:
    doc = json.loads(open(creds_path).read())  # noqa: SIM115 - read once at start
    agent = doc["agents"][index]
    creds = grpc.ssl_channel_credentials(doc["ca"].encode(), agent["key"].encode(), agent["cert"].encode())
    del doc
    async with grpc.aio.secure_channel(target, creds, options=OPTIONS) as channel:
        call = agent_pb2_grpc.AgentServiceStub(channel).Connect()
        await call.write(agent_pb2.AgentMessage(hello=agent_pb2.Hello(host_id=agent["host_id"], agent_version="bare")))
        first = await call.read()
        if first is grpc.aio.EOF or first.WhichOneof("body") != "welcome":
            raise SystemExit(f"no welcome: {first!r}")
        print("welcomed", flush=True)
        beats = asyncio.create_task(_heartbeats(call, first.welcome.heartbeat_interval_seconds))
        # The controller answers no heartbeat; read whatever it sends, until it ends the stream.
        while await call.read() is not grpc.aio.EOF:
            pass
        beats.cancel()
        raise SystemExit("the controller ended the stream")


async def _heartbeats(call: Any, interval: int) -> None:
    sequence = 0
    while True:
        await asyncio.sleep(max(1, interval))
        sequence += 1
        await call.write(agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat(sequence=sequence)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
