"""Taking a batch of items about many hosts: each host's in order, different hosts side by side."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def each_host_in_order(host_ids: list[str], handle: Callable[[int], Awaitable[bool]]) -> list[bool]:
    """``handle(i)`` for every item of a batch, ``host_ids[i]`` naming its host: each host's items
    one after another in batch order, different hosts side by side; the answers in batch order."""
    answers = [False] * len(host_ids)
    by_host: dict[str, list[int]] = {}
    for i, host_id in enumerate(host_ids):
        by_host.setdefault(host_id, []).append(i)

    async def in_order(indices: list[int]) -> None:
        for i in indices:
            answers[i] = await handle(i)

    await asyncio.gather(*(in_order(indices) for indices in by_host.values()))
    return answers
