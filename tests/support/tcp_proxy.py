"""A TCP relay whose connections a test can cut, to drop a link without stopping either end."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import Future


class TcpProxy:
    """Listens on 127.0.0.1:<port> and relays every connection to ``target`` (host, port).

    :meth:`drop` resets every connection it carries (both ends see the link die, as when a
    network path fails); new connections are relayed as before. Runs on its own thread and loop,
    so synchronous tests can use it.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.base_events.Server | None = None
        self.connections = 0
        self.port = 0

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._start()).result(10)
        return self

    def drop(self) -> int:
        """Cut every relayed connection; how many there were."""
        return self._call(self._drop()).result(10)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._stop()).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _call(self, coro: object) -> Future:  # type: ignore[type-arg]
        return asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._drop()
        if self._server is not None:
            await self._server.wait_closed()

    async def _drop(self) -> int:
        count = len(self._writers) // 2
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()
        return count

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self._target)
        except OSError:
            client_writer.transport.abort()
            return
        self.connections += 1
        self._writers.update((client_writer, server_writer))

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.transport.abort()

        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))
        self._writers.difference_update((client_writer, server_writer))
