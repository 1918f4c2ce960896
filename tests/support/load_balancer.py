"""A TCP pass-through load balancer for tests, like HAProxy ``mode tcp`` or nginx ``stream``.

Each client connection is relayed byte for byte to one target, picked round robin; TLS passes
through untouched, so the client sees the target's certificate. A target that refuses the
connection is skipped for the next one (a killed replica's share moves to the others); when every
target refuses, the client's connection is reset. A test can change the targets while it runs and
cut the relayed connections (all, or those to one target) to make a link fail without stopping
either end.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Self, TypeVar

Target = tuple[str, int]
T = TypeVar("T")

CONNECT_TIMEOUT = 5.0  # a target that neither accepts nor refuses within this is skipped like a refusal
CALL_TIMEOUT = 10.0  # how long a synchronous call waits for the balancer's loop


@dataclass(eq=False)
class _Link:
    """One relayed connection: the client's side and the target's side."""

    target: Target
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter

    def abort(self) -> None:
        for writer in (self.client, self.server):
            with contextlib.suppress(Exception):
                writer.transport.abort()


class LoadBalancer:
    """Listens on 127.0.0.1:<port> and relays each connection to one of ``targets`` (host, port).

    Runs on its own thread and event loop, so synchronous tests can use it; every public method is
    called from the test's thread.

    Attributes:
        port: the port it listens on (0 until :meth:`start`).
        connections: how many connections it has relayed so far (to any target).
    """

    def __init__(self, targets: Sequence[Target], *, name: str = "load-balancer") -> None:
        self._targets: list[Target] = [(host, int(port)) for host, port in targets]
        self._next = 0  # round-robin position in _targets
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._server: asyncio.Server | None = None
        self.connections = 0
        self.port = 0

    def start(self) -> Self:
        """Start listening on a port chosen by the OS (see :attr:`port`); returns ``self``."""
        self._thread.start()
        self._call(self._start())
        return self

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, where clients connect."""
        return f"127.0.0.1:{self.port}"

    @property
    def targets(self) -> list[Target]:
        return list(self._targets)

    def set_targets(self, targets: Sequence[Target]) -> None:
        """Relay new connections to ``targets`` from now on (the first one first); relayed ones stay.

        Remove a target and :meth:`drop` it to move its clients to the others; add one and it takes
        its share of new connections.
        """
        new = [(host, int(port)) for host, port in targets]

        async def replace() -> None:
            self._targets = new
            self._next = 0  # the turn starts over at the first target

        self._call(replace())

    def drop(self, target: Target | None = None) -> int:
        """Reset the relayed connections, all or those to ``target``; how many there were.

        Both ends see the link die (a reset, as when a network path fails); new connections are
        relayed as before.
        """

        async def cut() -> int:
            links = [link for link in self._links if target is None or link.target == _norm(target)]
            for link in links:
                link.abort()
                self._links.discard(link)
            return len(links)

        return self._call(cut())

    def connections_to(self, target: Target) -> int:
        """How many live relayed connections go to ``target`` now."""

        async def count() -> int:
            return sum(1 for link in self._links if link.target == _norm(target))

        return self._call(count())

    def stop(self) -> None:
        """Stop listening, reset every relayed connection and end the thread."""
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CALL_TIMEOUT)
        if not self._loop.is_closed() and not self._loop.is_running():
            self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(CALL_TIMEOUT)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.abort()
        self._links.clear()
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=CALL_TIMEOUT / 2)
        if self._server is not None:
            await self._server.wait_closed()

    def _take_turn(self, tried: set[Target]) -> Target | None:
        """The next target in round-robin order not in ``tried``; None when all were tried."""
        count = len(self._targets)
        for step in range(count):
            index = (self._next + step) % count
            if self._targets[index] not in tried:
                self._next = index + 1
                return self._targets[index]
        return None

    async def _open(self) -> tuple[Target, asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection to the first target in turn that accepts one; None when none does."""
        tried: set[Target] = set()
        while (target := self._take_turn(tried)) is not None:
            tried.add(target)
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(*target), CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                continue
            return target, reader, writer
        return None

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._relay(client_reader, client_writer)
        finally:
            self._handlers.discard(task)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        opened = await self._open()
        if opened is None:
            client_writer.transport.abort()
            return
        target, server_reader, server_writer = opened
        link = _Link(target, client_writer, server_writer)
        self.connections += 1
        self._links.add(link)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                # No half-close: when one side ends, the link ends (as the other side will see).
                link.abort()

        try:
            await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))
        finally:
            self._links.discard(link)


def _norm(target: Target) -> Target:
    return (target[0], int(target[1]))
