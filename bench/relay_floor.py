"""The floor of an interactive session: bare grpc.aio streams in fleetops' topology, no fleetops.

bench/session.py runs this (``relay_floor.py measure N``) next to the real sessions. Three processes
on 127.0.0.1, each a plain asyncio program with mutual TLS, as the session path has them:

* ``relay`` (the controller's place): a server with one generic stream_stream method. The first
  stream to open is the "host" side (the echo process dials out, as an agent does); every later
  stream is a "client": what it writes is written down the host's stream, and what the host writes
  back is written to the client, each message by the task that read it.
* ``echo`` (the agent's place): dials the relay, and writes every message it reads straight back.
* the measuring client (opsctl's place, this process): one stream to the relay, then N single-byte
  keystrokes, each timed from its write to the read of its echo (after 50 warm-up ones).

No terminal, no transcript, no acknowledgements, no sequence numbers: two gRPC round trips and a
relay, which is the least a keystroke costs on this path in Python. Prints one JSON line
``{"echo_ms": [...]}``; failures print ``error: ...`` and exit 1.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
from connect_support import CLIENT_OPTIONS, PY, make_floor_creds, start_floor_server

SERVICE, METHOD_NAME = "bench.RelayFloor", "Stream"
METHOD = f"/{SERVICE}/{METHOD_NAME}"
WARMUP = 50
START_TIMEOUT = 30.0


def _ident(data: bytes) -> bytes:
    return data


def _client_creds(doc: dict[str, Any], index: int) -> grpc.ChannelCredentials:
    agent = doc["agents"][index]
    return grpc.ssl_channel_credentials(doc["ca"].encode(), agent["key"].encode(), agent["cert"].encode())


def _open_stream(channel: grpc.aio.Channel) -> Any:
    return channel.stream_stream(METHOD, request_serializer=_ident, response_deserializer=_ident)()


class _Relay:
    """The first stream is the host's; every later one is relayed to it and back."""

    def __init__(self) -> None:
        self.host: tuple[grpc.aio.ServicerContext, Any] | None = None

    async def stream(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        if self.host is None:
            self.host = (context, request_iterator)
            await asyncio.Event().wait()  # held open until the relay is killed
        host_context, host_requests = self.host

        async def down() -> None:
            async for message in request_iterator:
                await host_context.write(message)

        async def up() -> None:
            async for message in host_requests:
                await context.write(message)

        await asyncio.gather(down(), up())


async def relay_main(creds_path: Path) -> None:
    doc = json.loads(creds_path.read_text())
    relay = _Relay()
    handler = grpc.stream_stream_rpc_method_handler(
        relay.stream, request_deserializer=_ident, response_serializer=_ident
    )
    server, port = await start_floor_server(doc, SERVICE, METHOD_NAME, handler, options=())
    print(f"relay ready {port}", flush=True)
    await server.wait_for_termination()


async def echo_main(creds_path: Path, port: int) -> None:
    doc = json.loads(creds_path.read_text())
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", _client_creds(doc, 0), options=CLIENT_OPTIONS) as channel:
        call = _open_stream(channel)
        await call.write(b"hello")  # the stream exists at the relay once its first message is there
        print("echo ready", flush=True)
        while (message := await call.read()) is not grpc.aio.EOF:
            await call.write(message)


async def measure(creds_path: Path, port: int, keystrokes: int) -> list[float]:
    doc = json.loads(creds_path.read_text())
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", _client_creds(doc, 1), options=CLIENT_OPTIONS) as channel:
        call = _open_stream(channel)
        echo_ms: list[float] = []
        for i in range(WARMUP + keystrokes):
            start = time.perf_counter()
            await call.write(b"x")
            if await call.read() is grpc.aio.EOF:
                raise RuntimeError("the relay ended the stream")
            if i >= WARMUP:
                echo_ms.append((time.perf_counter() - start) * 1000)
        call.cancel()
        return echo_ms


def _wait_line(process: subprocess.Popen[str], prefix: str) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith(prefix):
            return line.strip()
    raise RuntimeError(f"{prefix!r} never came from {process.args!r} (exit {process.poll()})")


def main(keystrokes: int) -> int:
    here = Path(__file__).resolve()
    children: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="fleetops-relay-floor-") as tmp:
        creds = Path(tmp) / "creds.json"
        make_floor_creds(2, creds)
        env = {**os.environ, "GRPC_VERBOSITY": "ERROR", "PYTHONUNBUFFERED": "1"}
        try:
            relay = subprocess.Popen([PY, str(here), "relay", str(creds)], stdout=subprocess.PIPE, text=True, env=env)
            children.append(relay)
            port = int(_wait_line(relay, "relay ready").split()[-1])
            echo = subprocess.Popen(
                [PY, str(here), "echo", str(creds), str(port)], stdout=subprocess.PIPE, text=True, env=env
            )
            children.append(echo)
            _wait_line(echo, "echo ready")
            echo_ms = asyncio.run(measure(creds, port, keystrokes))
        except (RuntimeError, OSError, grpc.RpcError) as exc:
            print(f"error: the gRPC relay floor failed: {exc}", flush=True)
            return 1
        finally:
            for child in children:
                child.kill()
                child.wait()
    print(json.dumps({"echo_ms": echo_ms}), flush=True)
    return 0


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "relay":
        asyncio.run(relay_main(Path(sys.argv[2])))
    elif mode == "echo":
        asyncio.run(echo_main(Path(sys.argv[2]), int(sys.argv[3])))
    else:
        sys.exit(main(int(sys.argv[2])))
