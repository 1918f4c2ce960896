"""Events out (docs/events.md): placing committed events, the live stream, subscriptions and delivery.

Three loops run in every replica:

* the **dispatcher** gives committed events their positions, one replica at a time (a lock), and
  a pending delivery per subscription that wants each (type patterns, target selector);
* the **deliverer** claims due deliveries (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so replicas
  share the work), sends each (:mod:`.senders`), records the attempt, and retries with exponential
  backoff until ``retry_for`` has passed since the event, then dead-letters it (kept, shown by
  ``subscription show``, sent again by ``subscription redeliver``). A replica killed while sending
  leaves its claims due again when their lease ends: delivery is at least once, and every message
  carries the event's id as its idempotency key;
* the **pruner** deletes events older than ``retention`` that no delivery waits for.

A delivery acts for the subscription's author: each is decided again when it is sent. An author
who was disabled, deleted, or lost ``subscription.manage`` sends nothing more; those deliveries are
dead-lettered with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from fleetops.common.errors import InvalidInput, PermissionDenied
from fleetops.common.selectors import parse_selector
from fleetops.controller.authz.acting import Acting
from fleetops.controller.authz.decision import authorize
from fleetops.controller.events import outbox
from fleetops.controller.events.catalog import check_patterns, type_matches
from fleetops.controller.events.models import (
    Delivery,
    DeliveryStatus,
    Kind,
    SendResult,
    StoredEvent,
    Subscription,
    check_name,
)
from fleetops.controller.events.senders import EmailSender, Sender, SmtpSettings, WebhookSender
from fleetops.controller.events.store import EventStore
from fleetops.controller.fleet.models import Target
from fleetops.controller.fleet.service import FleetService

log = logging.getLogger(__name__)

MAX_ENDPOINT = 2048
MAX_TYPES = 50
MAX_TARGET = 1024


@dataclass(frozen=True)
class DeliverySettings:
    """``--event-*`` of fleetops-controller serve (docs/events.md#delivery)."""

    # First retry after this many seconds, doubling each time up to max_backoff.
    retry_base: float = 10.0
    max_backoff: float = 3600.0
    # Retried for this long after the event, then dead-lettered.
    retry_for: float = 86400.0
    # Seconds a receiver has to answer one try.
    timeout: float = 10.0
    # Deliveries sent at once by one replica.
    concurrency: int = 8
    # Events (delivered or not wanted) are kept this long for events watch --after.
    retention: float = 7 * 86400.0
    poll_interval: float = 0.25
    smtp: SmtpSettings = SmtpSettings()


def backoff(attempt: int, settings: DeliverySettings) -> float:
    """Seconds before try ``attempt + 1`` after try ``attempt`` (1-based) failed, with 10% jitter."""
    delay = min(settings.retry_base * (2 ** (attempt - 1)), settings.max_backoff)
    return delay * random.uniform(0.9, 1.1)


def check_endpoint(kind: Kind, endpoint: str) -> str:
    if kind is Kind.WEBHOOK:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname or len(endpoint) > MAX_ENDPOINT:
            raise InvalidInput(
                f"bad webhook URL {endpoint!r}",
                "give an http:// or https:// URL, e.g. https://hooks.example.com/fleetops",
            )
        if parts.username or parts.password:
            raise InvalidInput(
                "a webhook URL may not carry a user name or password",
                "receivers authenticate fleetops by the signature (docs/events.md#verifying-a-webhook)",
            )
        return endpoint
    local, at, domain = endpoint.partition("@")
    if not at or not local or "." not in domain or any(c in endpoint for c in " \r\n<>,;") or len(endpoint) > 254:
        raise InvalidInput(f"bad email address {endpoint!r}", "give one address, e.g. oncall@example.com")
    return endpoint


class EventService:
    def __init__(
        self,
        store: EventStore,
        fleet: FleetService,
        acting: Acting,
        settings: DeliverySettings,
        senders: dict[Kind, Sender] | None = None,
    ) -> None:
        self._store = store
        self._fleet = fleet
        self._acting = acting
        self.settings = settings
        self._webhooks = WebhookSender(settings.timeout)
        self._senders: dict[Kind, Sender] = senders or {
            Kind.WEBHOOK: self._webhooks,
            Kind.EMAIL: EmailSender(settings.smtp),
        }
        self._wake_dispatch = asyncio.Event()
        self._wake_delivery = asyncio.Event()
        self._placed = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self._undo_waker = lambda: None
        self._sending: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._undo_waker = outbox.on_record(self._wake_dispatch.set)
        self._tasks = [
            asyncio.create_task(self._dispatch_loop(), name="events-dispatch"),
            asyncio.create_task(self._delivery_loop(), name="events-delivery"),
            asyncio.create_task(self._prune_loop(), name="events-prune"),
        ]

    async def stop(self) -> None:
        self._undo_waker()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        await self._webhooks.close()

    # -- placing -----------------------------------------------------------------------------------

    async def _hosts_matching(self, target: str) -> list[str]:
        try:
            hosts = await self._fleet.resolve_target(Target(selector=target))
        except InvalidInput:
            return []
        return [h.name for h in hosts]

    async def place_now(self) -> list[StoredEvent]:
        """Place what is committed and not placed yet (the dispatcher's one pass)."""
        placed = await self._store.place(self._hosts_matching)
        if placed:
            self._wake_delivery.set()
            async with self._placed:
                self._placed.notify_all()
        return placed

    async def _dispatch_loop(self) -> None:
        while True:
            try:
                while await self.place_now():
                    pass
            except Exception:
                log.exception("placing events failed; trying again")
            self._wake_dispatch.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_dispatch.wait(), self.settings.poll_interval)

    async def _prune_loop(self) -> None:
        while True:
            try:
                before = datetime.now(UTC) - timedelta(seconds=self.settings.retention)
                pruned = await self._store.prune(before)
                if pruned:
                    log.info("pruned %d events older than %s", pruned, before.isoformat())
            except Exception:
                log.exception("pruning events failed")
            await asyncio.sleep(3600)

    # -- the live stream ---------------------------------------------------------------------------

    async def watch(
        self, types: Sequence[str], target: str, after_position: int
    ) -> AsyncIterator[tuple[int, StoredEvent | None]]:
        """``(position, None)`` once when live, then ``(position, event)`` for each event matching
        the type patterns and the target selector, in position order, for as long as the caller reads."""
        patterns = check_patterns(types)[:MAX_TYPES]
        if target:
            parse_selector(target)  # InvalidInput names the problem
        position = after_position if after_position > 0 else await self._store.top_position()
        yield position, None
        matching: set[str] = set()
        checked_at = 0.0
        while True:
            events = await self._store.events_after(position)
            if target and events and time.monotonic() - checked_at > 1.0:
                matching, checked_at = set(await self._hosts_matching(target)), time.monotonic()
            for event in events:
                position = event.position or position
                if not type_matches(patterns, event.type) or event.type == "fleetops.subscription.test":
                    continue
                if target and (event.host is None or event.host not in matching):
                    continue
                yield position, event
            if not events:
                async with self._placed:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._placed.wait(), 0.5)  # other replicas place too

    # -- subscriptions -----------------------------------------------------------------------------

    async def create(
        self, author: str, *, name: str, webhook: str, email: str, types: Sequence[str], target: str
    ) -> Subscription:
        kind, endpoint, patterns = self.check(name=name, webhook=webhook, email=email, types=types, target=target)
        return await self._store.create_subscription(
            name=name, kind=kind, endpoint=endpoint, types=patterns, target=target, author=author
        )

    async def update(self, name: str, *, webhook: str, email: str, types: Sequence[str], target: str) -> Subscription:
        """Change a subscription (``opsctl apply``); its author, secret and deliveries stay."""
        kind, endpoint, patterns = self.check(name=name, webhook=webhook, email=email, types=types, target=target)
        return await self._store.update_subscription(name, kind=kind, endpoint=endpoint, types=patterns, target=target)

    def check(
        self, *, name: str, webhook: str, email: str, types: Sequence[str], target: str
    ) -> tuple[Kind, str, list[str]]:
        """What a subscription with these fields sends where, checked: ``(kind, endpoint, type patterns)``.

        Raises:
            InvalidInput: the name, the URL or address, a pattern or the selector is not right.
        """
        check_name(name)
        if bool(webhook) == bool(email):
            raise InvalidInput(
                "give one of --webhook URL or --email ADDRESS", "e.g. --webhook https://hooks.example.com/x"
            )
        kind = Kind.WEBHOOK if webhook else Kind.EMAIL
        endpoint = check_endpoint(kind, webhook or email)
        if kind is Kind.EMAIL and not self.settings.smtp.enabled:
            raise InvalidInput(
                "this controller has no SMTP server to send email through",
                "start it with --smtp-server HOST:PORT --smtp-from ADDRESS (docs/events.md#email)",
            )
        patterns = check_patterns(types)
        if len(patterns) > MAX_TYPES:
            raise InvalidInput(f"at most {MAX_TYPES} type patterns", "use a pattern such as window.*")
        if len(target) > MAX_TARGET:
            raise InvalidInput("the target selector is too long", f"at most {MAX_TARGET} characters")
        if target:
            parse_selector(target)
        return kind, endpoint, patterns

    async def get(self, name: str) -> Subscription:
        return await self._store.get_subscription(name)

    async def list_subscriptions(self) -> list[Subscription]:
        return await self._store.list_subscriptions()

    async def deliveries(self, name: str, *, limit: int, status: str) -> list[Delivery]:
        if status and status not in {s.value for s in DeliveryStatus}:
            raise InvalidInput(f"bad status {status!r}", "use pending, delivered or dead")
        return await self._store.deliveries(name, limit=limit or 20, status=status)

    async def delete(self, name: str) -> Subscription:
        return await self._store.delete_subscription(name)

    async def redeliver(self, name: str, delivery_id: int) -> int:
        count = await self._store.requeue(name, delivery_id)
        self._wake_delivery.set()
        return count

    async def test(self, name: str, by: str) -> str:
        """Send a test event to this subscription alone; its event id."""
        sub = await self._store.get_subscription(name)
        event_id = await self._store.record(
            "fleetops.subscription.test",
            subject=f"subscription/{sub.name}",
            data={"subscription": sub.name, "requested_by": by},
            only_subscription=sub.id,
        )
        return event_id

    # -- delivering --------------------------------------------------------------------------------

    async def _delivery_loop(self) -> None:
        lease = timedelta(seconds=self.settings.timeout + 5)
        limit = max(1, self.settings.concurrency)
        while True:
            try:
                free = limit - len(self._sending)
                due = await self._store.claim_due(free, lease) if free > 0 else []
                # Each author decided once per claim, moments before the sends (as they are now).
                refusals = {s.author: await self._refusal(s) for d in due if (s := d.subscription) is not None}
                for delivery in due:
                    refusal = refusals.get(delivery.subscription.author, "") if delivery.subscription else ""
                    task = asyncio.create_task(self._deliver(delivery, refusal), name=f"deliver-{delivery.id}")
                    self._sending.add(task)
                    task.add_done_callback(self._sent)
            except Exception:
                log.exception("claiming deliveries failed; trying again")
                due = []
            if len(due) < max(free, 1):
                self._wake_delivery.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake_delivery.wait(), self.settings.poll_interval * 4)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self._wake_delivery.set()

    async def _deliver(self, delivery: Delivery, refusal: str) -> None:
        try:
            sub = delivery.subscription
            if sub is None:
                return
            started, at = time.monotonic(), datetime.now(UTC)
            if refusal:
                result = SendResult(False, refusal, final=True)
            else:
                result = await self._senders[sub.kind].send(sub, delivery)
            duration_ms = int((time.monotonic() - started) * 1000)
            status, next_at = self._next(delivery, result, at)
            await self._store.record_attempt(
                delivery,
                at=at,
                duration_ms=duration_ms,
                ok=result.ok,
                result=result.result,
                status=status,
                next_attempt_at=next_at,
            )
            if status is DeliveryStatus.DEAD:
                log.warning(
                    "delivery %d of %s to subscription %s dead-lettered: %s",
                    delivery.id,
                    delivery.event.type,
                    sub.name,
                    result.result,
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("delivery %d failed inside the controller; it is retried when its claim ends", delivery.id)

    def _next(self, delivery: Delivery, result: SendResult, at: datetime) -> tuple[DeliveryStatus, datetime]:
        if result.ok:
            return DeliveryStatus.DELIVERED, at
        if result.final:
            return DeliveryStatus.DEAD, at
        next_at = at + timedelta(seconds=backoff(delivery.attempts + 1, self.settings))
        if next_at - delivery.created_at > timedelta(seconds=self.settings.retry_for):
            return DeliveryStatus.DEAD, at
        return DeliveryStatus.PENDING, next_at

    async def _refusal(self, sub: Subscription) -> str:
        """Why the author may no longer have this delivered (``""``: they may)."""
        hint = "a subscription sends for its author; recreate it as an operator who may manage subscriptions"
        try:
            name, roles = await self._acting.roles_of(sub.author, hint)
        except PermissionDenied as exc:
            return f"not sent: {exc.message}"
        decision = authorize(roles, "subscription.manage", user=name)
        if not decision:
            return f"not sent: {decision.explain()}"
        return ""
