"""The output pump: a spool file, from a byte offset, as OutputChunk messages.

The pump follows the file while the process writes it and stops once the stream's final size is
known and sent, so it sends exactly the bytes the InvocationResult's totals announce. One chunk is
in memory at a time and ``send`` is awaited before the next read, so a slow stream slows the
reading instead of piling up output in memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from fleetops.agent.commands.messages import output_message
from fleetops.v1 import agent_pb2

log = logging.getLogger(__name__)

Send = Callable[[agent_pb2.AgentMessage], Awaitable[None]]

CHUNK_SIZE = 64 * 1024
# How often a running process's spool file is checked for growth when the pump has caught up.
POLL_INTERVAL = 0.05
# Smaller reads come from the page cache in microseconds: a thread hop would cost more than it saves.
INLINE_READ_LIMIT = 8 * 1024


def _read_range(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as file:
        file.seek(offset)
        return file.read(size)


def _current_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


async def pump_output(
    *,
    invocation_id: str,
    stream: agent_pb2.OutputStream,
    path: Path,
    start: int,
    final_size: asyncio.Future[int],
    send: Send,
    chunk_size: int = CHUNK_SIZE,
    poll_interval: float = POLL_INTERVAL,
) -> int:
    """Send ``path`` from byte ``start`` until ``final_size`` is resolved and reached.

    ``final_size`` resolves when the process has exited (to the spool file's size then); until
    then the pump sends what is there and polls for more. Returns the offset after the last byte
    sent (``final_size``, or where the file ended if it is shorter).

    Raises:
        ConnectionError: ``send`` found the link down; the controller asks again with its offsets.
    """
    position = start
    while True:
        # Look at final_size before the file: once the process has exited its bytes are all there.
        end = final_size.result() if final_size.done() else None
        available = end if end is not None else _current_size(path)
        if position < available:
            size = min(chunk_size, available - position)
            if size <= INLINE_READ_LIMIT:
                data = _read_range(path, position, size)
            else:
                data = await asyncio.to_thread(_read_range, path, position, size)
            if not data:
                if end is not None:
                    log.error("%s of %s ends at %d, short of its %d bytes", path.name, invocation_id, position, end)
                    return position
            else:
                await send(output_message(invocation_id, stream, position, data))
                position += len(data)
                continue
        if end is not None:
            if position > end:
                log.warning(
                    "controller asked for %s of %s from %d, past its end (%d)", path.name, invocation_id, start, end
                )
            return position
        await asyncio.wait({final_size}, timeout=poll_interval)
