"""``opsctl audit``: list and verify the hash-chained audit log."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from fleetops.common.durations import parse_duration
from fleetops.opsctl import output
from fleetops.opsctl.client import OperatorClient


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", help="who did what, where and when")
    asub = audit.add_subparsers(dest="audit_command", required=True)

    p = asub.add_parser("list", help="audit events, oldest first")
    p.add_argument("--since", help="e.g. 2h, 7d")
    p.add_argument("--actor", default="")
    p.add_argument("--action", default="")
    p.add_argument("--outcome", default="", choices=("", "ok", "denied", "refused", "error"))
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.set_defaults(func=list_events)

    p = asub.add_parser("verify", help="recompute the hash chain; name the first event that does not match")
    p.set_defaults(func=verify)


def list_events(client: OperatorClient, args: argparse.Namespace) -> int:
    since = datetime.now(UTC) - parse_duration(args.since) if args.since else None
    events = client.list_audit_events(
        since=since, actor=args.actor, action=args.action, outcome=args.outcome, limit=args.limit
    )
    if args.output == "json":
        output.as_json(events)
        return 0
    rows = [
        [str(e.id), output.when(e.time), e.actor, e.action, e.target or "-", e.outcome, _short(e.details_json)]
        for e in events
    ]
    output.table(["ID", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "DETAILS"], rows)
    return 0


def _short(details_json: str) -> str:
    doc = json.loads(details_json or "{}")
    text = ", ".join(f"{k}={v}" for k, v in doc.items())
    return text if len(text) <= 60 else text[:57] + "..."


def verify(client: OperatorClient, args: argparse.Namespace) -> int:
    result = client.verify_audit()
    if result.ok:
        print(f"audit chain intact: {result.events_checked} events verified")
        return 0
    print(f"audit chain BROKEN at event {result.first_bad_event_id}: {result.problem}")
    print(f"({result.events_checked} events before it verified)")
    return 1
