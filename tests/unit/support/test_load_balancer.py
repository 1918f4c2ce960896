"""The test load balancer (tests/support/load_balancer.py) against tiny echo servers on 127.0.0.1.

Each echo server first sends its name, so a client learns which target the balancer picked.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from load_balancer import LoadBalancer, Target
from tcp_proxy import TcpProxy

WAIT = 10.0


class EchoServer:
    """Sends ``name\\n`` to each client, then echoes; counts the connections that ended."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ended = 0
        self._ended = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self.target: Target = ("127.0.0.1", 0)

    async def start(self) -> EchoServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.target = ("127.0.0.1", self._server.sockets[0].getsockname()[1])
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(f"{self.name}\n".encode())
            await writer.drain()
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            async with self._ended:
                self.ended += 1
                self._ended.notify_all()

    async def wait_ended(self, count: int) -> None:
        async with self._ended:
            await asyncio.wait_for(self._ended.wait_for(lambda: self.ended >= count), WAIT)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


class Client:
    """A connection through the balancer; ``target`` is the name of the echo server it reached."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: str) -> None:
        self.reader, self.writer, self.target = reader, writer, target

    async def echo(self, data: bytes) -> bytes:
        self.writer.write(data)
        await self.writer.drain()
        return await asyncio.wait_for(self.reader.readexactly(len(data)), WAIT)

    async def is_cut(self) -> bool:
        """Whether the link is dead: end of stream or a reset, not more data."""
        try:
            return await asyncio.wait_for(self.reader.read(1024), WAIT) == b""
        except ConnectionError:
            return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def connect(lb: LoadBalancer) -> Client:
    reader, writer = await asyncio.open_connection("127.0.0.1", lb.port)
    try:
        name = await asyncio.wait_for(reader.readline(), WAIT)
    except BaseException:
        writer.close()
        raise
    return Client(reader, writer, name.decode().strip())


@pytest.fixture
async def echoes() -> AsyncIterator[list[EchoServer]]:
    servers = [await EchoServer(name).start() for name in ("a", "b", "c")]
    yield servers
    for server in servers:
        await server.close()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on: connecting is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def clients() -> AsyncIterator[list[Client]]:
    opened: list[Client] = []
    yield opened
    for client in opened:
        await client.close()


@contextlib.contextmanager
def running(lb: LoadBalancer) -> Iterator[LoadBalancer]:
    lb.start()
    try:
        yield lb
    finally:
        lb.stop()


async def test_round_robin_over_three_targets(echoes: list[EchoServer], clients: list[Client]) -> None:
    with running(LoadBalancer([e.target for e in echoes])) as lb:
        for _ in range(6):
            clients.append(await connect(lb))
        assert [c.target for c in clients] == ["a", "b", "c", "a", "b", "c"]
        assert [lb.connections_to(e.target) for e in echoes] == [2, 2, 2]
        assert lb.connections == 6
        assert await clients[4].echo(b"hello") == b"hello"


async def test_a_refusing_target_is_skipped_and_its_share_moves_to_the_others(
    echoes: list[EchoServer], clients: list[Client], closed_port: int
) -> None:
    a, _, c = echoes
    dead = ("127.0.0.1", closed_port)
    with running(LoadBalancer([a.target, dead, c.target])) as lb:
        for _ in range(4):
            clients.append(await connect(lb))
        assert [client.target for client in clients] == ["a", "c", "a", "c"]
        assert lb.connections_to(dead) == 0 and lb.connections == 4


async def test_when_every_target_refuses_the_client_is_cut(clients: list[Client], closed_port: int) -> None:
    with running(LoadBalancer([("127.0.0.1", closed_port)])) as lb:
        reader, writer = await asyncio.open_connection("127.0.0.1", lb.port)
        clients.append(Client(reader, writer, ""))
        assert await clients[0].is_cut()
        assert lb.connections == 0


async def test_set_targets_changes_new_connections_and_keeps_relayed_ones(
    echoes: list[EchoServer], clients: list[Client]
) -> None:
    a, b, c = echoes
    with running(LoadBalancer([a.target])) as lb:
        clients.append(await connect(lb))
        lb.set_targets([b.target, c.target])
        assert lb.targets == [b.target, c.target]
        for _ in range(2):
            clients.append(await connect(lb))
        assert [client.target for client in clients] == ["a", "b", "c"]
        assert await clients[0].echo(b"still here") == b"still here"
        assert lb.connections_to(a.target) == 1
        lb.set_targets([a.target, b.target, c.target])  # a target added back takes its share
        new = [await connect(lb) for _ in range(3)]
        clients.extend(new)
        assert sorted(client.target for client in new) == ["a", "b", "c"]


async def test_drop_of_one_target_cuts_only_its_connections(echoes: list[EchoServer], clients: list[Client]) -> None:
    a, b, c = echoes
    with running(LoadBalancer([e.target for e in echoes])) as lb:
        for _ in range(6):
            clients.append(await connect(lb))
        assert lb.drop(b.target) == 2
        on_b = [client for client in clients if client.target == "b"]
        others = [client for client in clients if client.target != "b"]
        for client in on_b:
            assert await client.is_cut()  # the client's end sees the link die...
        await b.wait_ended(2)  # ...and so does the target's
        for client in others:
            assert await client.echo(b"ping") == b"ping"
        assert a.ended == 0 and c.ended == 0
        assert [lb.connections_to(e.target) for e in echoes] == [2, 0, 2]
        replacement = [await connect(lb) for _ in range(3)]  # new connections are relayed as before
        clients.extend(replacement)
        assert sorted(client.target for client in replacement) == ["a", "b", "c"]
        assert lb.drop() == 7


async def test_tcp_proxy_is_the_one_target_balancer(echoes: list[EchoServer], clients: list[Client]) -> None:
    a = echoes[0]
    proxy = TcpProxy(*a.target).start()
    try:
        assert isinstance(proxy, LoadBalancer) and proxy.targets == [a.target]
        for _ in range(2):
            clients.append(await connect(proxy))
        assert [client.target for client in clients] == ["a", "a"] and proxy.connections == 2
        assert proxy.drop() == 2
        for client in clients:
            assert await client.is_cut()
        clients.append(await connect(proxy))
        assert await clients[-1].echo(b"again") == b"again"
    finally:
        proxy.stop()
