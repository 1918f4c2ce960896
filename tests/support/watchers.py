"""What test fakes of the run-command service need to let watchers subscribe and be woken."""

from __future__ import annotations

import asyncio


class WatcherQueues:
    """CommandService's subscribe/unsubscribe, and ``notify()`` to wake every watcher (coalesced, as
    the service does: a queue holds at most one wake-up)."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[None]] = set()

    def subscribe(self, command_id: str) -> asyncio.Queue[None]:
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self.queues.add(queue)
        return queue

    def unsubscribe(self, command_id: str, queue: asyncio.Queue[None]) -> None:
        self.queues.discard(queue)

    def notify(self) -> None:
        for queue in self.queues:
            if queue.empty():
                queue.put_nowait(None)
