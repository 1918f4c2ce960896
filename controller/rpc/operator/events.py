"""OperatorService calls for events and subscriptions (controller/events; docs/events.md).

Watching needs ``events.read``; everything about subscriptions ``subscription.manage`` (both
global). A subscription's secret is in CreateSubscription's answer only: it signs webhooks, and
who reads the subscription later does not need it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fleetops.common.errors import Unavailable
from fleetops.controller.events.catalog import EVENT_TYPES, SOURCE
from fleetops.controller.events.models import Delivery, StoredEvent, Subscription
from fleetops.controller.events.service import EventService
from fleetops.controller.rpc import convert
from fleetops.controller.rpc.operator.base import OperatorAdapter, operator_call, operator_stream
from fleetops.controller.rpc.peer import Peer
from fleetops.v1 import events_pb2

#: Deliveries ``subscription show`` lists when the request gives no limit.
DEFAULT_DELIVERIES = 20
MAX_DELIVERIES = 500


def event_to_proto(e: StoredEvent) -> events_pb2.Event:
    return events_pb2.Event(
        id=e.event_id,
        type=e.type,
        source=SOURCE,
        subject=e.subject,
        time=convert.timestamp(e.time),
        data_json=json.dumps(e.data, sort_keys=True),
        position=e.position or 0,
        host=e.host or "",
    )


def subscription_to_proto(s: Subscription, *, with_secret: bool = False) -> events_pb2.Subscription:
    return events_pb2.Subscription(
        id=s.id,
        name=s.name,
        kind=s.kind.value,
        endpoint=s.endpoint,
        types=list(s.types),
        target=s.target,
        author=s.author,
        created_at=convert.timestamp(s.created_at),
        secret=s.secret if with_secret else "",
        pending=s.counts.get("pending", 0),
        delivered=s.counts.get("delivered", 0),
        dead=s.counts.get("dead", 0),
    )


def delivery_to_proto(d: Delivery) -> events_pb2.Delivery:
    return events_pb2.Delivery(
        id=d.id,
        event_id=d.event.event_id,
        event_type=d.event.type,
        subject=d.event.subject,
        status=d.status.value,
        attempts=d.attempts,
        created_at=convert.timestamp(d.created_at),
        next_attempt_at=convert.timestamp(d.next_attempt_at),
        finished_at=convert.timestamp(d.finished_at),
        last_error=d.last_error,
        attempt_log=[
            events_pb2.DeliveryAttempt(
                number=a.number, at=convert.timestamp(a.at), duration_ms=a.duration_ms, ok=a.ok, result=a.result
            )
            for a in d.attempt_log
        ],
    )


class EventCalls(OperatorAdapter):
    """Events: watch the stream, list the types; subscriptions: create, list, show, test, redeliver, delete."""

    #: Set by the composition root.
    events: EventService | None = None

    def _events(self) -> EventService:
        if self.events is None:
            raise Unavailable("events are not served by this controller", "this is a controller bug")
        return self.events

    @operator_stream("events.watch")
    async def WatchEvents(self, request: events_pb2.WatchEventsRequest, peer: Peer) -> AsyncIterator[Any]:
        peer.access.details.update(types=list(request.types), target=request.target)
        async for position, event in self._events().watch(list(request.types), request.target, request.after_position):
            if event is None:
                yield events_pb2.WatchEventsResponse(ready=True, position=position)
            else:
                yield events_pb2.WatchEventsResponse(position=position, event=event_to_proto(event))

    @operator_call("events.types")
    async def ListEventTypes(self, request: events_pb2.ListEventTypesRequest, peer: Peer) -> tuple[Any, str]:
        types = [events_pb2.EventType(type=t, description=d) for t, d in sorted(EVENT_TYPES.items())]
        return events_pb2.ListEventTypesResponse(types=types), ""

    @operator_call("subscription.create")
    async def CreateSubscription(self, request: events_pb2.CreateSubscriptionRequest, peer: Peer) -> tuple[Any, str]:
        peer.access.details.update(
            kind="webhook" if request.webhook else "email",
            endpoint=request.webhook or request.email,
            types=list(request.types),
            target=request.target,
        )
        created = await self._events().create(
            peer.actor,
            name=request.name,
            webhook=request.webhook,
            email=request.email,
            types=list(request.types),
            target=request.target,
        )
        return subscription_to_proto(created, with_secret=True), created.name

    @operator_call("subscription.list")
    async def ListSubscriptions(self, request: events_pb2.ListSubscriptionsRequest, peer: Peer) -> tuple[Any, str]:
        found = await self._events().list_subscriptions()
        return events_pb2.ListSubscriptionsResponse(subscriptions=[subscription_to_proto(s) for s in found]), ""

    @operator_call("subscription.show")
    async def GetSubscription(self, request: events_pb2.GetSubscriptionRequest, peer: Peer) -> tuple[Any, str]:
        events = self._events()
        sub = await events.get(request.name)
        limit = min(request.limit or DEFAULT_DELIVERIES, MAX_DELIVERIES)
        deliveries = await events.deliveries(request.name, limit=limit, status=request.status)
        if request.show_secret:
            peer.access.details["secret_shown"] = True
        detail = events_pb2.SubscriptionDetail(
            subscription=subscription_to_proto(sub, with_secret=request.show_secret),
            deliveries=[delivery_to_proto(d) for d in deliveries],
        )
        return detail, sub.name

    @operator_call("subscription.test")
    async def TestSubscription(self, request: events_pb2.SubscriptionRequest, peer: Peer) -> tuple[Any, str]:
        event_id = await self._events().test(request.name, peer.actor)
        peer.access.details["event_id"] = event_id
        return events_pb2.TestSubscriptionResponse(event_id=event_id), request.name

    @operator_call("subscription.redeliver")
    async def RedeliverSubscription(self, request: events_pb2.RedeliverRequest, peer: Peer) -> tuple[Any, str]:
        count = await self._events().redeliver(request.name, request.delivery_id)
        peer.access.details["requeued"] = count
        return events_pb2.RedeliverResponse(requeued=count), request.name

    @operator_call("subscription.delete")
    async def DeleteSubscription(self, request: events_pb2.SubscriptionRequest, peer: Peer) -> tuple[Any, str]:
        gone = await self._events().delete(request.name)
        return events_pb2.DeleteSubscriptionResponse(), gone.name
