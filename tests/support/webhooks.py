"""A real HTTP receiver for webhook tests: records every request and answers as told.

``WebhookReceiver()`` listens on 127.0.0.1 (a free port) in a thread. ``statuses`` is the queue
of status codes to answer (then 200 for ever); ``hold`` makes it take requests and answer none
until released (a controller killed mid-delivery). Tests wait on ``wait_for(n)`` (a condition,
not a sleep).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int  # the status answered (0: never answered)


class WebhookReceiver:
    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.requests: list[Received] = []
        self.hold = threading.Event()  # set: take requests, answer none until release()
        self._released = threading.Event()
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                holding = receiver.hold.is_set()
                with receiver._changed:
                    status = 0 if holding else (receiver.statuses.pop(0) if receiver.statuses else 200)
                    receiver.requests.append(Received(self.path, dict(self.headers.items()), body, status))
                    receiver._changed.notify_all()
                if holding:
                    receiver._released.wait(60)
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/fleetops"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The first *count* requests, once they arrived (AssertionError after *timeout*)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"{len(self.requests)} webhook requests arrived, expected {count}")
            return list(self.requests)

    async def wait_for_async(self, count: int, timeout: float = 30.0) -> list[Received]:
        import asyncio

        return await asyncio.to_thread(self.wait_for, count, timeout)

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
