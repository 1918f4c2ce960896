"""``opsctl subscription``: where events are sent, by webhook or email (docs/events.md#subscriptions).

A webhook's secret is printed once, at ``create``: the receiver verifies each request's
``Fleetops-Signature`` with it. ``show`` lists the newest deliveries with every attempt (when, how
long, what the receiver said); ``redeliver`` sends dead-lettered ones again.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC

from fleetops.common.durations import parse_duration
from fleetops.common.errors import InvalidInput
from fleetops.opsctl import output
from fleetops.opsctl.client import OperatorClient
from fleetops.opsctl.events import add_filter_arguments
from fleetops.v1 import events_pb2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``subscription`` command group."""
    group = sub.add_parser(
        "subscription",
        help="send events to a webhook or an email address (docs/events.md#subscriptions)",
        description="A subscription sends the events its filters let through to a webhook (signed, "
        "HMAC-SHA256) or an email address, retrying failed deliveries for a day, then dead-lettering them.",
    )
    ssub = group.add_subparsers(dest="subscription_command", required=True)

    p = ssub.add_parser("create", help="create a subscription (a webhook's secret is printed once)")
    p.add_argument("name", metavar="NAME", help="its name, e.g. oncall")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--webhook", default="", metavar="URL", help="POST each event (CloudEvents JSON) here")
    where.add_argument("--email", default="", metavar="ADDRESS", help="mail each event here")
    add_filter_arguments(p)
    output.add_output_argument(p)
    p.set_defaults(func=create_subscription)

    p = ssub.add_parser("list", help="every subscription, with its deliveries pending, delivered and dead")
    output.add_output_argument(p)
    p.set_defaults(func=list_subscriptions)

    p = ssub.add_parser("show", help="one subscription and its newest deliveries, with each attempt")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--status", choices=("pending", "delivered", "dead"), help="only deliveries in this state")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="newest deliveries shown (default 20)")
    p.add_argument("--show-secret", action="store_true", help="print the webhook's secret too (audited)")
    output.add_output_argument(p)
    p.set_defaults(func=show_subscription)

    p = ssub.add_parser("test", help="send it a test event and wait for the first try's result")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--wait", default="30s", metavar="DURATION", help="how long to wait for the result (default 30s)")
    output.add_output_argument(p)
    p.set_defaults(func=test_subscription)

    p = ssub.add_parser("redeliver", help="send dead-lettered deliveries again (all of them, or one)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--delivery", type=int, default=0, metavar="ID", help="only this delivery (see subscription show)")
    p.set_defaults(func=redeliver)

    p = ssub.add_parser("delete", help="delete a subscription and its delivery history")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=delete_subscription)


def _filters(s: events_pb2.Subscription) -> str:
    types = ",".join(t.removeprefix("fleetops.") for t in s.types) or "*"
    return types + (f" on {s.target}" if s.target else "")


def create_subscription(client: OperatorClient, args: argparse.Namespace) -> int:
    created = client.create_subscription(
        events_pb2.CreateSubscriptionRequest(
            name=args.name, webhook=args.webhook, email=args.email, types=args.type, target=args.target
        )
    )

    def text() -> None:
        print(f"subscription {created.name} created: {created.kind} {created.endpoint}, events {_filters(created)}")
        if created.secret:
            print(f"secret: {created.secret}")
            print("it is shown only now: give it to the receiver, which checks each request's Fleetops-Signature")

    output.emit(args, created, text)
    return 0


def list_subscriptions(client: OperatorClient, args: argparse.Namespace) -> int:
    subs = client.list_subscriptions()

    def text() -> None:
        if not subs:
            print("no subscriptions (create one: opsctl subscription create NAME --webhook URL)")
            return
        rows = [
            (s.name, s.kind, s.endpoint, _filters(s), str(s.pending), str(s.delivered), str(s.dead), s.author)
            for s in subs
        ]
        output.table(("NAME", "KIND", "TO", "EVENTS", "PENDING", "DELIVERED", "DEAD", "AUTHOR"), rows)

    output.emit(args, subs, text)
    return 0


def _at(ts: events_pb2.DeliveryAttempt | events_pb2.Delivery, field: str) -> str:
    value = getattr(ts, field)
    if not output.is_set(value):
        return "-"
    return value.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S")


def show_subscription(client: OperatorClient, args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise InvalidInput("--limit is at least 1", "e.g. --limit 50")
    detail = client.get_subscription(args.name, args.limit, args.status or "", args.show_secret)

    def text() -> None:
        s = detail.subscription
        print(f"name:      {s.name}")
        print(f"to:        {s.kind} {s.endpoint}")
        print(f"events:    {_filters(s)}")
        print(f"author:    {s.author} (each delivery is decided again as {s.author})")
        print(f"created:   {output.when(s.created_at)}")
        if s.secret:
            print(f"secret:    {s.secret}")
        print(f"deliveries: {s.pending} pending, {s.delivered} delivered, {s.dead} dead")
        if not detail.deliveries:
            print("no deliveries yet")
            return
        print()
        for d in detail.deliveries:
            line = f"#{d.id}  {d.event_type.removeprefix('fleetops.')}  {d.subject}  {d.status}"
            if d.status == "pending" and d.attempts:
                line += f", next try {_at(d, 'next_attempt_at')}"
            print(output.host_text(line))
            print(f"    event {d.event_id}, created {_at(d, 'created_at')}")
            for a in d.attempt_log:
                mark = "ok" if a.ok else "failed"
                print(output.host_text(f"    try {a.number}  {_at(a, 'at')}  {mark}: {a.result} ({a.duration_ms} ms)"))

    output.emit(args, detail, text)
    return 0


def test_subscription(client: OperatorClient, args: argparse.Namespace) -> int:
    wait = parse_duration(args.wait).total_seconds()
    sent = client.test_subscription(args.name)
    deadline = time.monotonic() + wait
    found: events_pb2.Delivery | None = None
    while time.monotonic() < deadline:
        for d in client.get_subscription(args.name, 50).deliveries:
            if d.event_id == sent.event_id and d.attempts:
                found = d
        if found is not None:
            break
        time.sleep(0.2)
    if found is None:
        print(f"test event {sent.event_id} sent; no try finished within {args.wait}", file=sys.stderr)
        print(f"see opsctl subscription show {args.name}", file=sys.stderr)
        return 1
    first = found.attempt_log[0] if found.attempt_log else None
    ok = found.status == "delivered"

    def text() -> None:
        result = first.result if first else found.last_error
        took = f" in {first.duration_ms} ms" if first else ""
        if ok:
            print(f"delivered: {result}{took} (event {sent.event_id})")
        else:
            again = "dead-lettered" if found.status == "dead" else f"retried at {_at(found, 'next_attempt_at')}"
            print(output.host_text(f"not delivered: {result}{took}; {again} (event {sent.event_id})"))

    output.emit(args, found, text)
    return 0 if ok else 1


def redeliver(client: OperatorClient, args: argparse.Namespace) -> int:
    answer = client.redeliver(args.name, args.delivery)
    print(f"{output.plural(answer.requeued, 'delivery', 'deliveries')} of {args.name} will be sent again now")
    return 0


def delete_subscription(client: OperatorClient, args: argparse.Namespace) -> int:
    client.delete_subscription(args.name)
    print(f"subscription {args.name} deleted")
    return 0
