"""Events benchmark: what the outbox adds to a change, and how fast deliveries leave.

Run from the repository root::

    .venv/bin/python bench/events.py [--changes 2000] [--events 500] [--database-url URL]

In one run, so both sides share the machine's state:

1. **outbox cost**: N transactions that each write one row (a state change), then N that write
   the same row and its event (``record_event`` in the same transaction); the medians per
   transaction and their ratio;
2. **delivery rate**: M events placed and delivered to one webhook subscription (a real HTTP
   receiver on 127.0.0.1, the controller's deliverer with its default concurrency of 8), against
   the same M signed POSTs sent straight with the same HTTP client and concurrency (the floor):
   events per second each way and their ratio.

SQLite by default (a temporary file); ``--database-url`` for PostgreSQL. Exit code 0: a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from fleetops.common.roles import BUILTIN_ROLES, Role  # noqa: E402
from fleetops.controller.events.models import Kind  # noqa: E402
from fleetops.controller.events.outbox import record_event  # noqa: E402
from fleetops.controller.events.senders import WebhookSender, body_of  # noqa: E402
from fleetops.controller.events.service import DeliverySettings, EventService  # noqa: E402
from fleetops.controller.events.store import EventStore  # noqa: E402
from fleetops.controller.store import database  # noqa: E402
from fleetops.controller.store.models import AppliedObjectRow  # noqa: E402

from webhooks import WebhookReceiver  # noqa: E402


class Admin:
    async def roles_of(self, author: str, hint: str) -> tuple[str, list[Role]]:
        return "bench", [BUILTIN_ROLES["admin"]]


class NoFleet:
    async def resolve_target(self, target: object) -> list[object]:
        return []


async def per_transaction(sessions: async_sessionmaker[AsyncSession], n: int, with_event: bool) -> float:
    times = []
    for i in range(n):
        started = time.perf_counter()
        async with sessions() as session, session.begin():
            session.add(
                AppliedObjectRow(
                    kind="Bench", name=f"{'e' if with_event else 'p'}{i}", source="bench", applied_by="bench",
                    applied_at=datetime.now(UTC),
                )
            )  # fmt: skip
            if with_event:
                record_event(
                    session, "fleetops.host.online", subject=f"host/h{i}", data={"host": f"h{i}"}, host=f"h{i}"
                )
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def delivery_rate(store: EventStore, m: int) -> float:
    receiver = WebhookReceiver()
    events = EventService(store, NoFleet(), Admin(), DeliverySettings(poll_interval=0.05))  # type: ignore[arg-type]  # stand-ins
    try:
        await store.create_subscription(
            name="bench", kind=Kind.WEBHOOK, endpoint=receiver.url, types=[], target="", author="operator:bench"
        )
        events.start()
        started = time.perf_counter()
        for i in range(m):
            await store.record("fleetops.host.online", subject=f"host/h{i}", data={"host": f"h{i}"})
        await asyncio.to_thread(receiver.wait_for, m, 300)
        while (await store.get_subscription("bench")).counts.get("delivered", 0) < m:
            await asyncio.sleep(0.01)
        return m / (time.perf_counter() - started)
    finally:
        await events.stop()
        receiver.close()


async def floor_rate(store: EventStore, m: int) -> float:
    """The same signed POSTs, straight: the HTTP client and receiver alone, 8 at a time."""
    receiver = WebhookReceiver()
    sender = WebhookSender(timeout=10)
    try:
        sub = await store.get_subscription("bench")
        sub = type(sub)(**{**sub.__dict__, "endpoint": receiver.url})
        deliveries = await store.deliveries("bench", limit=m)
        body_of(deliveries[0])
        started = time.perf_counter()
        gate = asyncio.Semaphore(8)

        async def one(i: int) -> None:
            async with gate:
                await sender.send(sub, deliveries[i % len(deliveries)])

        await asyncio.gather(*(one(i) for i in range(m)))
        return m / (time.perf_counter() - started)
    finally:
        await sender.close()
        receiver.close()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        engine = database.create_engine(url)
        await database.ensure_schema(engine, migrate=True)
        sessions = database.session_factory(engine)
        try:
            plain = await per_transaction(sessions, args.changes, with_event=False)
            evented = await per_transaction(sessions, args.changes, with_event=True)
            print(
                f"outbox: a change alone {plain * 1e3:.3f} ms, with its event {evented * 1e3:.3f} ms "
                f"(median of {args.changes}): {evented / plain:.2f}x"
            )
            store = EventStore(sessions)
            while await store.place(lambda t: asyncio.sleep(0, [])):  # the outbox test's events, out of the way
                pass
            delivered = await delivery_rate(store, args.events)
            floor = await floor_rate(store, args.events)
            print(
                f"delivery: {delivered:.0f} events/s through the outbox and deliverer, {floor:.0f}/s straight "
                f"({args.events} events, one subscription): the floor is {floor / delivered:.2f}x faster"
            )
        finally:
            await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=2000)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--database-url", default="")
    asyncio.run(main(parser.parse_args()))
