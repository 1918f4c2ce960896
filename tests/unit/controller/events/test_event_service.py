"""The event service on a real database, with a real webhook receiver: retries with backoff, dead
letters, the author's rights decided at each delivery, the live stream's filters, the signature a
receiver checks, and what a subscription accepts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from fleetops.common import webhooks
from fleetops.common.errors import InvalidInput, PermissionDenied
from fleetops.common.roles import BUILTIN_ROLES, Role, Rule
from fleetops.controller.events.models import Delivery, Kind, SendResult, Subscription
from fleetops.controller.events.outbox import record_event
from fleetops.controller.events.senders import SmtpSettings, WebhookSender
from fleetops.controller.events.service import DeliverySettings, EventService, backoff
from fleetops.controller.events.store import EventStore
from fleetops.controller.fleet.models import Target
from fleetops.controller.store import database

from webhooks import WebhookReceiver

FAST = DeliverySettings(retry_base=0.05, max_backoff=0.2, retry_for=30.0, timeout=2.0, poll_interval=0.02)


@dataclass
class Fleet:
    web: list[str] = field(default_factory=lambda: ["web-1"])

    async def resolve_target(self, target: Target) -> list[object]:
        @dataclass
        class H:
            name: str

        return [H(n) for n in self.web] if target.selector == "role=web" else []


@dataclass
class Acting:
    roles: dict[str, list[Role]] = field(default_factory=lambda: {"alice": [BUILTIN_ROLES["admin"]]})

    async def roles_of(self, author: str, hint: str) -> tuple[str, list[Role]]:
        name = author.removeprefix("operator:")
        if name not in self.roles:
            raise PermissionDenied(f"the author {name!r} was deleted", hint)
        return name, self.roles[name]


@dataclass
class Scripted:
    """A sender answering from a script (then ok), recording what it was asked to send."""

    results: list[SendResult] = field(default_factory=list)
    sent: list[Delivery] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, subscription: Subscription, delivery: Delivery) -> SendResult:
        self.sent.append(delivery)
        self.changed.set()
        return self.results.pop(0) if self.results else SendResult(True, "HTTP 200")


Parts = tuple[EventStore, "Acting", "Scripted"]


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    engine = database.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'e.db'}")
    await database.ensure_schema(engine, migrate=True)
    yield EventStore(database.session_factory(engine)), Acting(), Scripted()
    await engine.dispose()


async def no_hosts(target: str) -> list[str]:
    return []


def service(store: EventStore, acting: Acting, sender: Scripted, settings: DeliverySettings = FAST) -> EventService:
    return EventService(store, Fleet(), acting, settings, {Kind.WEBHOOK: sender, Kind.EMAIL: sender})  # type: ignore[arg-type]


async def until(store: EventStore, name: str, done: str, timeout: float = 10.0) -> Delivery:
    async def poll() -> Delivery:
        while True:
            found = await store.deliveries(name, limit=5)
            if found and found[0].status.value == done:
                return found[0]
            await asyncio.sleep(0.02)

    return await asyncio.wait_for(poll(), timeout)


async def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_try(parts: Parts) -> None:
    store, acting, sender = parts
    sender.results = [SendResult(False, "HTTP 503"), SendResult(False, "cannot connect: refused")]
    events = service(store, acting, sender)
    await events.create("operator:alice", name="hook", webhook="http://x/", email="", types=["host.*"], target="")
    events.start()
    try:
        await store.record("fleetops.host.offline", subject="host/web-1", data={"host": "web-1"})
        delivered = await until(store, "hook", "delivered")
    finally:
        await events.stop()
    assert [a.result for a in delivered.attempt_log] == ["HTTP 503", "cannot connect: refused", "HTTP 200"]
    assert [a.ok for a in delivered.attempt_log] == [False, False, True]
    assert len({d.event.event_id for d in sender.sent}) == 1  # each try carries the same idempotency key
    gaps = [(b.at - a.at).total_seconds() for a, b in pairwise(delivered.attempt_log)]
    assert gaps[0] >= 0.04 and gaps[1] >= 0.08  # backoff doubles


async def test_a_delivery_is_dead_lettered_when_retrying_longer_would_pass_retry_for(parts: Parts) -> None:
    store, acting, sender = parts
    sender.results = [SendResult(False, "HTTP 500")] * 50
    events = service(store, acting, sender, DeliverySettings(retry_base=0.05, retry_for=0.3, poll_interval=0.02))
    await events.create("operator:alice", name="hook", webhook="http://x/", email="", types=[], target="")
    events.start()
    try:
        await store.record("fleetops.host.offline", subject="host/web-1", data={})
        dead = await until(store, "hook", "dead")
    finally:
        await events.stop()
    assert dead.last_error == "HTTP 500" and 2 <= dead.attempts <= 5
    assert (await store.get_subscription("hook")).counts == {"dead": 1}


async def test_a_refusal_that_will_not_change_is_dead_lettered_at_once(parts: Parts) -> None:
    store, acting, sender = parts
    sender.results = [SendResult(False, "HTTP 410", final=True)]
    events = service(store, acting, sender)
    await events.create("operator:alice", name="hook", webhook="http://x/", email="", types=[], target="")
    events.start()
    try:
        await store.record("fleetops.host.offline", subject="host/web-1", data={})
        dead = await until(store, "hook", "dead")
    finally:
        await events.stop()
    assert dead.attempts == 1


async def test_an_author_who_lost_the_right_sends_nothing_more(parts: Parts) -> None:
    store, acting, sender = parts
    events = service(store, acting, sender)
    await events.create("operator:alice", name="hook", webhook="http://x/", email="", types=[], target="")
    await events.create("operator:bob", name="bobs", webhook="http://x/", email="", types=[], target="")
    acting.roles["alice"] = [Role(name="reader", allow=(Rule(actions=("hosts.read",)),))]
    events.start()
    try:
        await store.record("fleetops.host.offline", subject="host/web-1", data={})
        alices = await until(store, "hook", "dead")
        bobs = await until(store, "bobs", "dead")
    finally:
        await events.stop()
    assert sender.sent == []
    assert "alice may not" in alices.last_error and "subscription" in alices.last_error
    assert "'bob' was deleted" in bobs.last_error


async def test_the_stream_starts_live_and_keeps_to_its_filters(parts: Parts) -> None:
    store, acting, sender = parts
    events = service(store, acting, sender)
    await store.record("fleetops.host.offline", subject="host/before", data={})
    await events.place_now()
    stream = events.watch(["host.*"], "role=web", 0)
    position, first = await anext(stream)
    assert first is None and position == 1  # live from now: the event before is not replayed
    async with store._db() as session, session.begin():
        record_event(session, "fleetops.command.failed", subject="command/c", data={})  # type filtered
        record_event(session, "fleetops.host.offline", subject="host/db-1", data={}, host="db-1")  # target
        record_event(session, "fleetops.host.offline", subject="host/web-1", data={}, host="web-1")
    await events.place_now()
    position, event = await asyncio.wait_for(anext(stream), 5)
    assert event is not None and event.subject == "host/web-1" and position == 4
    resumed = events.watch([], "", 1)
    assert (await anext(resumed))[0] == 1
    assert [(await anext(resumed))[1].subject for _ in range(3)] == ["command/c", "host/db-1", "host/web-1"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(name="Bad Name", webhook="http://x/"), "bad subscription name"),
        (dict(name="a", webhook="ftp://x/"), "bad webhook URL"),
        (dict(name="a", webhook="https://user:pw@x/"), "user name or password"),
        (dict(name="a", email="not-an-address"), "bad email address"),
        (dict(name="a", email="a@b.c\r\nBcc: x@y.z"), "bad email address"),
        (dict(name="a", webhook="http://x/", email="a@b.c"), "one of --webhook"),
        (dict(name="a", webhook="http://x/", types=["comand.failed"]), "did you mean command.failed"),
        (dict(name="a", webhook="http://x/", target="role="), "selector"),
    ],
)
async def test_what_a_subscription_refuses(parts: Parts, kwargs: dict[str, object], message: str) -> None:
    store, acting, sender = parts
    events = service(store, acting, sender)
    args = {"webhook": "", "email": "", "types": [], "target": "", **kwargs}
    with pytest.raises(InvalidInput) as caught:
        await events.create("operator:alice", **args)  # type: ignore[arg-type]
    assert message in f"{caught.value.message} {caught.value.hint}"
    assert await store.list_subscriptions() == []


async def test_email_needs_an_smtp_server(parts: Parts) -> None:
    store, acting, sender = parts
    with pytest.raises(InvalidInput, match="no SMTP server"):
        await service(store, acting, sender).create(
            "operator:alice", name="a", webhook="", email="a@b.c", types=[], target=""
        )
    with_smtp = DeliverySettings(smtp=SmtpSettings(server="127.0.0.1:25", sender="f@b.c"))
    created = await service(store, acting, sender, with_smtp).create(
        "operator:alice", name="a", webhook="", email="a@b.c", types=[], target=""
    )
    assert created.kind is Kind.EMAIL


def test_backoff_doubles_up_to_its_bound() -> None:
    s = DeliverySettings(retry_base=10, max_backoff=60)
    assert [round(backoff(n, s) / 10) for n in (1, 2, 3)] == [1, 2, 4]
    assert 54 <= backoff(10, s) <= 66


async def test_a_webhook_is_signed_so_the_receiver_can_check_it(parts: Parts) -> None:
    store, _, _ = parts
    receiver = WebhookReceiver(statuses=[302, 200])
    sender = WebhookSender(timeout=5)
    try:
        sub = await store.create_subscription(
            name="x", kind=Kind.WEBHOOK, endpoint=receiver.url, types=[], target="", author="operator:alice"
        )
        await store.record("fleetops.host.offline", subject="host/web-1", data={"host": "web-1"})
        await store.place(no_hosts)
        (delivery,) = await store.claim_due(1, timedelta(minutes=1))
        first = await sender.send(sub, delivery)
        second = await sender.send(sub, delivery)
    finally:
        await sender.close()
        receiver.close()
    assert (first.ok, first.result) == (False, "HTTP 302")  # a redirect is not followed
    assert second.ok
    request = receiver.requests[1]
    assert webhooks.verify(sub.secret, request.headers["Fleetops-Signature"], request.body)
    assert not webhooks.verify(sub.secret, request.headers["Fleetops-Signature"], request.body + b" ")
    assert not webhooks.verify("whsec_other", request.headers["Fleetops-Signature"], request.body)
    body = json.loads(request.body)
    assert body["specversion"] == "1.0" and body["type"] == "fleetops.host.offline"
    assert body["id"] == request.headers["Idempotency-Key"] == delivery.event.event_id
    assert body["data"] == {"host": "web-1"}
    assert request.headers["Content-Type"].startswith("application/cloudevents+json")


async def test_an_unreachable_receiver_is_a_failed_try_not_an_error(parts: Parts) -> None:
    store, _, _ = parts
    receiver = WebhookReceiver()
    url = receiver.url
    receiver.close()  # nothing listens there now
    sender = WebhookSender(timeout=2)
    try:
        sub = await store.create_subscription(
            name="x", kind=Kind.WEBHOOK, endpoint=url, types=[], target="", author="operator:alice"
        )
        await store.record("fleetops.host.offline", subject="host/web-1", data={})
        await store.place(no_hosts)
        (delivery,) = await store.claim_due(1, timedelta(minutes=1))
        result = await sender.send(sub, delivery)
    finally:
        await sender.close()
    assert not result.ok and not result.final and result.result.startswith("cannot connect")
