"""``opsctl events``: the live event stream and the event types (docs/events.md).

``watch`` prints each event as it happens, until interrupted (or ``--count`` events); ``-o json``
prints one CloudEvents JSON document per line, for programs (``jq``, a log shipper).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC

from fleetops.common.errors import InvalidInput
from fleetops.opsctl import output
from fleetops.opsctl.client import OperatorClient
from fleetops.v1 import events_pb2

#: Data fields shown on a text line (the rest are in -o json).
TEXT_FIELDS = 6


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``events`` command group."""
    group = sub.add_parser(
        "events",
        help="the live event stream: commands, sessions, windows, hosts, compliance (docs/events.md)",
        description="Every state change someone may act on is an event (CloudEvents JSON): see docs/events.md "
        "for the types and their data.",
    )
    esub = group.add_subparsers(dest="events_command", required=True)
    p = esub.add_parser(
        "watch",
        help="print events as they happen, until interrupted",
        description="Print events as they happen. -o json prints one CloudEvents JSON document per line.",
    )
    add_filter_arguments(p)
    p.add_argument(
        "--after",
        type=int,
        default=0,
        metavar="POSITION",
        help="start after this position (each event's fleetopsposition; default: from now), to resume a watch",
    )
    p.add_argument("--count", type=int, default=0, metavar="N", help="stop after N events (default: never)")
    output.add_output_argument(p)
    p.set_defaults(func=watch_events)

    p = esub.add_parser("types", help="every event type, with what it means")
    output.add_output_argument(p)
    p.set_defaults(func=list_types)


def add_filter_arguments(p: argparse.ArgumentParser) -> None:
    """``--type`` and ``--target``: the same filters for ``events watch`` and ``subscription create``."""
    p.add_argument(
        "--type",
        action="append",
        default=[],
        metavar="PATTERN",
        help="only events of this type, e.g. command.failed or window.* (repeatable; default: every type)",
    )
    p.add_argument(
        "--target",
        default="",
        metavar="SELECTOR",
        help="only events about hosts this selector matches, e.g. env=prod (events about no one host are left out)",
    )


def event_json(e: events_pb2.Event) -> dict[str, object]:
    """The event as CloudEvents JSON (structured mode), as webhooks carry it."""
    return {
        "specversion": "1.0",
        "id": e.id,
        "source": e.source,
        "type": e.type,
        "subject": e.subject,
        "time": output.json_time(e.time.ToDatetime(tzinfo=UTC)),
        "datacontenttype": "application/json",
        "data": json.loads(e.data_json or "{}"),
        "fleetopsposition": e.position,
    }


def event_line(e: events_pb2.Event) -> str:
    data = json.loads(e.data_json or "{}")
    fields = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in sorted(data.items())][:TEXT_FIELDS]
    when = e.time.ToDatetime(tzinfo=UTC).strftime("%H:%M:%S")
    short = e.type.removeprefix("fleetops.")
    return output.host_text(f"{when}  {short:<28} {e.subject:<30} {' '.join(fields)}".rstrip())


def watch_events(client: OperatorClient, args: argparse.Namespace) -> int:
    if args.count < 0 or args.after < 0:
        raise InvalidInput("--count and --after are not negative", "e.g. --count 10")
    seen = 0
    try:
        for message in client.watch_events(args.type, args.target, args.after):
            if message.ready:  # on stderr in every form: -o json's stdout stays one event per line
                live = f"watching events after position {message.position} (Ctrl-C to stop)"
                print(live, file=sys.stderr, flush=True)
                continue
            if args.output == "json":
                print(json.dumps(event_json(message.event), sort_keys=True), flush=True)
            else:
                print(event_line(message.event), flush=True)
            seen += 1
            if args.count and seen >= args.count:
                return 0
    except KeyboardInterrupt:
        return 130
    return 0


def list_types(client: OperatorClient, args: argparse.Namespace) -> int:
    types = client.list_event_types()
    output.emit(
        args,
        types,
        lambda: output.table(("TYPE", "MEANS"), [(t.type.removeprefix("fleetops."), t.description) for t in types]),
    )
    return 0
