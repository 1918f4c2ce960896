"""Events, subscriptions and deliveries in the database (the rows: controller/store/models.py)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import Conflict, NotFound
from fleetops.controller.events.catalog import EVENT_TYPES, type_matches
from fleetops.controller.events.models import (
    Attempt,
    Delivery,
    DeliveryStatus,
    Kind,
    StoredEvent,
    Subscription,
)
from fleetops.controller.store.models import (
    DeliveryAttemptRow,
    DeliveryRow,
    EventRow,
    SubscriptionRow,
)
from fleetops.controller.store.notify import is_postgresql

#: The cluster-wide lock the replica placing events holds (one places at a time: positions are a
#: single order).
PLACE_LOCK_KEY = 0x6576656E7401  # "event"
#: Events placed per transaction.
PLACE_BATCH = 500

NOT_FOUND_HINT = "see opsctl subscription list"

#: Called when an event is recorded in this process: the dispatcher looks at once instead of at its
#: next poll (it looks again at the poll anyway: the transaction may not have committed yet).
_wakers: set[Callable[[], None]] = set()


def on_record(waker: Callable[[], None]) -> Callable[[], None]:
    """Call *waker* (which must not block) each time an event is recorded; returns the undo."""
    _wakers.add(waker)
    return lambda: _wakers.discard(waker)


def record_event(
    session: AsyncSession,
    type: str,
    *,
    subject: str,
    data: dict[str, Any],
    host: str | None = None,
    only_subscription: str | None = None,
) -> str:
    """Add an event to *session*'s transaction; its id (the idempotency key of its deliveries).

    ``subject`` names what the event is about (``host/web-1``, ``command/c-...``); ``host`` is the
    host's name when the event concerns one host (what ``--target`` selectors match).
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}: add it to events.catalog.EVENT_TYPES and docs/events.md")
    event_id = str(uuid.uuid4())
    session.add(
        EventRow(
            event_id=event_id,
            type=type,
            subject=subject[:300],
            host_name=host,
            time=datetime.now(UTC),
            data=data,
            only_subscription=only_subscription,
        )
    )
    for waker in list(_wakers):
        waker()
    return event_id


def _now() -> datetime:
    return datetime.now(UTC)


def event_from_row(row: EventRow) -> StoredEvent:
    return StoredEvent(
        id=row.id,
        event_id=row.event_id,
        type=row.type,
        subject=row.subject,
        host=row.host_name,
        time=row.time,
        data=dict(row.data or {}),
        position=row.position,
    )


def subscription_from_row(row: SubscriptionRow, counts: dict[str, int] | None = None) -> Subscription:
    return Subscription(
        id=row.id,
        name=row.name,
        kind=Kind(row.kind),
        endpoint=row.endpoint,
        types=tuple(row.types or ()),
        target=row.target,
        author=row.author,
        created_at=row.created_at,
        secret=row.secret,
        counts=counts or {},
    )


class EventStore:
    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self._db = db

    # -- placing: positions and deliveries ---------------------------------------------------------

    async def place(self, hosts_matching: Callable[[str], Awaitable[Iterable[str]]]) -> list[StoredEvent]:
        """Give the committed events without a position the next positions, in id order, and a
        pending delivery for each subscription that wants them; the events placed.

        ``hosts_matching(target)`` is the names of the hosts a subscription's selector matches now.
        """
        async with self._db() as session, session.begin():
            if is_postgresql(session):
                await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PLACE_LOCK_KEY})
            rows = (
                (
                    await session.execute(
                        select(EventRow).where(EventRow.position.is_(None)).order_by(EventRow.id).limit(PLACE_BATCH)
                    )
                )
                .scalars()
                .all()
            )
            if not rows:
                return []
            top = (await session.execute(select(func.max(EventRow.position)))).scalar() or 0
            subscriptions = (await session.execute(select(SubscriptionRow))).scalars().all()
            matching = {s.id: set(await hosts_matching(s.target)) for s in subscriptions if s.target}
            now = _now()
            for row in rows:
                top += 1
                row.position = top
                for sub in subscriptions:
                    if not _wants(sub, row, matching):
                        continue
                    session.add(
                        DeliveryRow(
                            subscription_id=sub.id,
                            event_id=row.id,
                            status=DeliveryStatus.PENDING.value,
                            attempts=0,
                            created_at=now,
                            next_attempt_at=now,
                            last_error="",
                        )
                    )
            placed = [event_from_row(r) for r in rows]
        return placed

    async def record(
        self, type: str, *, subject: str, data: dict[str, Any], only_subscription: str | None = None
    ) -> str:
        """An event in a transaction of its own (what changed wrote nothing else); its id."""
        async with self._db() as session, session.begin():
            return record_event(session, type, subject=subject, data=data, only_subscription=only_subscription)

    async def events_after(self, position: int, limit: int = 500) -> list[StoredEvent]:
        async with self._db() as session:
            rows = (
                (
                    await session.execute(
                        select(EventRow).where(EventRow.position > position).order_by(EventRow.position).limit(limit)
                    )
                )
                .scalars()
                .all()
            )
            return [event_from_row(r) for r in rows]

    async def top_position(self) -> int:
        async with self._db() as session:
            return (await session.execute(select(func.max(EventRow.position)))).scalar() or 0

    async def prune(self, before: datetime) -> int:
        """Delete placed events older than *before* that no delivery still waits for; how many."""
        async with self._db() as session, session.begin():
            waiting = select(DeliveryRow.event_id).where(DeliveryRow.status == DeliveryStatus.PENDING.value)
            result = await session.execute(
                delete(EventRow)
                .where(EventRow.time < before, EventRow.position.is_not(None), EventRow.id.not_in(waiting))
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    # -- subscriptions -----------------------------------------------------------------------------

    async def create_subscription(
        self, *, name: str, kind: Kind, endpoint: str, types: Sequence[str], target: str, author: str
    ) -> Subscription:
        row = SubscriptionRow(
            id=secrets.token_hex(8),
            name=name,
            kind=kind.value,
            endpoint=endpoint,
            secret=f"whsec_{secrets.token_urlsafe(32)}" if kind is Kind.WEBHOOK else "",
            types=list(types),
            target=target,
            author=author,
            created_at=_now(),
        )
        try:
            async with self._db() as session, session.begin():
                session.add(row)
        except IntegrityError:
            raise Conflict(f"a subscription named {name!r} exists", "pick another name, or delete it first") from None
        return subscription_from_row(row)

    async def update_subscription(
        self, name: str, *, kind: Kind, endpoint: str, types: Sequence[str], target: str
    ) -> Subscription:
        """Change where and what a subscription sends; its secret (a webhook's) and history stay."""
        async with self._db() as session, session.begin():
            row = await self._row(session, name)
            row.kind, row.endpoint, row.types, row.target = kind.value, endpoint, list(types), target
            if kind is Kind.WEBHOOK and not row.secret:
                row.secret = f"whsec_{secrets.token_urlsafe(32)}"
            return subscription_from_row(row)

    async def _row(self, session: AsyncSession, name: str) -> SubscriptionRow:
        row = (await session.execute(select(SubscriptionRow).where(SubscriptionRow.name == name))).scalar_one_or_none()
        if row is None:
            raise NotFound(f"no subscription {name!r}", NOT_FOUND_HINT)
        return row

    async def _counts(self, session: AsyncSession, ids: Sequence[str]) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {i: {} for i in ids}
        rows = await session.execute(
            select(DeliveryRow.subscription_id, DeliveryRow.status, func.count())
            .where(DeliveryRow.subscription_id.in_(ids))
            .group_by(DeliveryRow.subscription_id, DeliveryRow.status)
        )
        for sub_id, status, n in rows:
            counts[sub_id][status] = int(n)
        return counts

    async def get_subscription(self, name: str) -> Subscription:
        async with self._db() as session:
            row = await self._row(session, name)
            return subscription_from_row(row, (await self._counts(session, [row.id]))[row.id])

    async def list_subscriptions(self) -> list[Subscription]:
        async with self._db() as session:
            rows = (await session.execute(select(SubscriptionRow).order_by(SubscriptionRow.name))).scalars().all()
            counts = await self._counts(session, [r.id for r in rows])
            return [subscription_from_row(r, counts[r.id]) for r in rows]

    async def delete_subscription(self, name: str) -> Subscription:
        async with self._db() as session, session.begin():
            row = await self._row(session, name)
            await session.execute(
                delete(DeliveryAttemptRow).where(
                    DeliveryAttemptRow.delivery_id.in_(
                        select(DeliveryRow.id).where(DeliveryRow.subscription_id == row.id)
                    )
                )
            )
            await session.execute(delete(DeliveryRow).where(DeliveryRow.subscription_id == row.id))
            await session.delete(row)
            return subscription_from_row(row)

    # -- deliveries --------------------------------------------------------------------------------

    async def deliveries(self, name: str, *, limit: int, status: str = "") -> list[Delivery]:
        """A subscription's newest deliveries (newest first), each with its attempts."""
        async with self._db() as session:
            sub = await self._row(session, name)
            query = (
                select(DeliveryRow, EventRow)
                .join(EventRow, EventRow.id == DeliveryRow.event_id)
                .where(DeliveryRow.subscription_id == sub.id)
            )
            if status:
                query = query.where(DeliveryRow.status == status)
            pairs = (await session.execute(query.order_by(DeliveryRow.id.desc()).limit(limit))).all()
            ids = [d.id for d, _ in pairs]
            attempts: dict[int, list[Attempt]] = {i: [] for i in ids}
            if ids:
                for a in (
                    await session.execute(
                        select(DeliveryAttemptRow)
                        .where(DeliveryAttemptRow.delivery_id.in_(ids))
                        .order_by(DeliveryAttemptRow.number)
                    )
                ).scalars():
                    attempts[a.delivery_id].append(Attempt(a.number, a.at, a.duration_ms, a.ok, a.result))
            return [_delivery(d, e, attempts[d.id]) for d, e in pairs]

    async def claim_due(self, limit: int, lease: timedelta) -> list[Delivery]:
        """Pending deliveries whose time has come, claimed for *lease* (a replica that dies while
        sending leaves them due again when the lease ends: delivered at least once)."""
        now = _now()
        async with self._db() as session, session.begin():
            query = (
                select(DeliveryRow, EventRow, SubscriptionRow)
                .join(EventRow, EventRow.id == DeliveryRow.event_id)
                .join(SubscriptionRow, SubscriptionRow.id == DeliveryRow.subscription_id)
                .where(DeliveryRow.status == DeliveryStatus.PENDING.value, DeliveryRow.next_attempt_at <= now)
                .order_by(DeliveryRow.next_attempt_at, DeliveryRow.id)
                .limit(limit)
            )
            if is_postgresql(session):
                query = query.with_for_update(of=DeliveryRow, skip_locked=True)
            rows = (await session.execute(query)).all()
            for delivery, _, _ in rows:
                delivery.next_attempt_at = now + lease
            return [_delivery(d, e, [], subscription_from_row(s)) for d, e, s in rows]

    async def record_attempt(
        self,
        delivery: Delivery,
        *,
        at: datetime,
        duration_ms: int,
        ok: bool,
        result: str,
        status: DeliveryStatus,
        next_attempt_at: datetime,
    ) -> None:
        async with self._db() as session, session.begin():
            row = await session.get(DeliveryRow, delivery.id)
            if row is None:  # the subscription was deleted meanwhile
                return
            row.attempts += 1
            session.add(
                DeliveryAttemptRow(
                    delivery_id=row.id, number=row.attempts, at=at, duration_ms=duration_ms, ok=ok, result=result[:1024]
                )
            )
            row.status = status.value
            row.next_attempt_at = next_attempt_at
            row.last_error = "" if ok else result[:1024]
            if status is not DeliveryStatus.PENDING:
                row.finished_at = _now()

    async def requeue(self, name: str, delivery_id: int = 0) -> int:
        """Make dead deliveries (one, or all of the subscription's) pending again, due now."""
        async with self._db() as session, session.begin():
            sub = await self._row(session, name)
            query = update(DeliveryRow).where(
                DeliveryRow.subscription_id == sub.id, DeliveryRow.status == DeliveryStatus.DEAD.value
            )
            if delivery_id:
                query = query.where(DeliveryRow.id == delivery_id)
            result = await session.execute(
                query.values(
                    status=DeliveryStatus.PENDING.value, next_attempt_at=_now(), finished_at=None, created_at=_now()
                )
            )
            count = int(getattr(result, "rowcount", 0) or 0)
            if delivery_id and not count:
                raise NotFound(
                    f"subscription {name!r} has no dead delivery {delivery_id}",
                    f"see opsctl subscription show {name} --status dead",
                )
            return count


def _wants(sub: SubscriptionRow, event: EventRow, matching: dict[str, set[str]]) -> bool:
    if event.only_subscription is not None:
        return event.only_subscription == sub.id
    if not type_matches(sub.types or (), event.type):
        return False
    if sub.target:
        return event.host_name is not None and event.host_name in matching.get(sub.id, set())
    return True


def _delivery(
    d: DeliveryRow, e: EventRow, attempts: list[Attempt], subscription: Subscription | None = None
) -> Delivery:
    return Delivery(
        id=d.id,
        subscription_id=d.subscription_id,
        event=event_from_row(e),
        status=DeliveryStatus(d.status),
        attempts=d.attempts,
        created_at=d.created_at,
        next_attempt_at=d.next_attempt_at,
        finished_at=d.finished_at,
        last_error=d.last_error,
        attempt_log=tuple(attempts),
        subscription=subscription,
    )
