"""``opsctl audit``: review, export and verify the hash-chained audit log."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from fleetops.common.durations import parse_duration
from fleetops.common.errors import InvalidInput
from fleetops.opsctl import output
from fleetops.opsctl.client import OperatorClient
from fleetops.opsctl.command import STATE

TIME_HINT = "give a duration back from now (90s, 2h, 7d) or an ISO 8601 time (2025-01-31T14:00:00Z; no zone means UTC)"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", help="who did what, where and when")
    asub = audit.add_subparsers(dest="audit_command", required=True)

    p = asub.add_parser("list", help="the newest matching audit events, shown oldest first")
    p.add_argument("--since", help="events at or after: a duration back from now (2h, 7d) or an ISO time")
    p.add_argument("--until", help="events before: a duration back from now or an ISO time")
    p.add_argument("--actor", default="", help="e.g. operator:alice, host:h-..., controller:NAME")
    p.add_argument("--host", default="", help="events about this host (name or id)")
    p.add_argument("--action", default="", help="e.g. session.start, command.run, hosts.tag")
    p.add_argument("--outcome", default="", choices=("", "ok", "denied", "refused", "error"))
    p.add_argument("--before", type=int, default=0, metavar="ID", help="only events older than event ID (paging)")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.set_defaults(func=list_events)

    p = asub.add_parser("show", help="one event, with the session or command it concerns")
    p.add_argument("id", type=int)
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=show_event)

    p = asub.add_parser("export", help="write the events not exported yet to the object store now")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=export)

    p = asub.add_parser(
        "verify",
        help="recompute the hash chain and compare it with the newest signed checkpoint; name what does not match",
    )
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=verify)


def parse_time(text: str, flag: str, now: datetime | None = None) -> datetime:
    """``2h`` (that long before ``now``) or an ISO 8601 time (UTC unless it names a zone).

    Raises:
        InvalidInput: neither.
    """
    try:
        return (now or datetime.now(UTC)) - parse_duration(text)
    except InvalidInput:
        pass
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"bad {flag} {text!r}", TIME_HINT) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def list_events(client: OperatorClient, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    since = parse_time(args.since, "--since", now) if args.since else None
    until = parse_time(args.until, "--until", now) if args.until else None
    events = client.list_audit_events(
        since=since,
        until=until,
        actor=args.actor,
        action=args.action,
        outcome=args.outcome,
        host=args.host,
        before_id=args.before,
        limit=args.limit,
    )
    if args.output == "json":
        output.as_json(events)
        return 0
    rows = [
        [str(e.id), output.when(e.time), e.actor, e.action, e.target or "-", e.outcome, _short(e.details_json)]
        for e in events
    ]
    output.table(["ID", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "DETAILS"], rows)
    if events and len(events) == args.limit:
        print(f"(the newest {args.limit}; older ones: --before {events[0].id})")
    return 0


def _short(details_json: str) -> str:
    doc = json.loads(details_json or "{}")
    text = ", ".join(f"{k}={v}" for k, v in doc.items()) if isinstance(doc, dict) else str(doc)
    return text if len(text) <= 60 else text[:57] + "..."


def show_event(client: OperatorClient, args: argparse.Namespace) -> int:
    detail = client.get_audit_event(args.id)
    if args.output == "json":
        output.as_json(detail)
        return 0
    e = detail.event
    _fields(
        [
            ("event", str(e.id)),
            ("time", output.when(e.time)),
            ("actor", e.actor),
            ("action", e.action),
            ("target", e.target or "-"),
            ("outcome", e.outcome),
            ("hash", e.hash),
            ("previous", e.previous_hash),
        ]
    )
    details = json.loads(e.details_json or "{}")
    if details:
        print("details")
        for line in json.dumps(details, indent=2, sort_keys=True, ensure_ascii=False).splitlines():
            print(f"  {line}")
    if detail.HasField("session"):
        s = detail.session
        print()
        _fields(
            [
                ("session", s.id),
                ("host", f"{s.host_name} ({s.host_id})" if s.host_name else s.host_id or "-"),
                ("operator", s.operator or "-"),
                ("state", s.state or "-"),
                ("end reason", s.end_reason or "-"),
                ("transcript", s.transcript_key or "-"),
                ("transcript state", s.transcript_state or "-"),
                ("transcript sha256", s.transcript_sha256 or "-"),
                ("transcript size", output.size(s.transcript_size) if s.transcript_size else "-"),
            ]
        )
        if s.transcript_key:
            print(f"replay it with: opsctl session play {s.id}")
    if detail.HasField("command"):
        c = detail.command.command
        print()
        _fields(
            [
                ("command", f"{c.id}  ({c.status})"),
                ("run", " ".join(c.argv) or "(script)"),
                ("target", f"{c.target}  ({c.total} hosts)"),
                ("by", f"{c.created_by} at {output.when(c.created_at)}"),
            ]
        )
        rows = [
            [
                i.host_name or i.host_id,
                STATE.get(i.state, "?"),
                str(i.exit_code) if i.has_exit_code else "-",
                i.reason[:60] or "-",
            ]
            for i in detail.command.invocations
        ]
        print()
        output.table(["HOST", "STATE", "EXIT", "REASON"], rows)
        print(f"output: opsctl run output {c.id} HOST")
    return 0


def _fields(lines: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {value}")


def export(client: OperatorClient, args: argparse.Namespace) -> int:
    result = client.export_audit()
    if args.output == "json":
        output.as_json(result)
        return 0
    if result.events:
        print(f"exported {result.events} event(s) in {result.chunks} chunk(s)")
    else:
        print("nothing new to export")
    if result.last_event_id:
        print(f"the object store's copy ends at event {result.last_event_id} (hash {result.last_hash})")
    return 0


# Checkpoint statuses (AuditCheckpointCheck.status) that fail the verification.
CHECKPOINT_LABELS = {
    "missing": "audit log TRUNCATED",
    "differs": "audit log REWRITTEN",
    "bad-signature": "checkpoint FORGED",
    "invalid": "checkpoint DAMAGED",
}
CHECKPOINT_FAILURES = frozenset(CHECKPOINT_LABELS)


def verify(client: OperatorClient, args: argparse.Namespace) -> int:
    """0: intact and matching the newest checkpoint (or none yet); 1: something does not match;
    6: the chain is intact but the checkpoint could not be read (the tail is unverified)."""
    result = client.verify_audit()
    check = result.checkpoint
    failed = check.status in CHECKPOINT_FAILURES
    chain_broken = not result.ok and not (failed and result.problem == check.message)
    code = 1 if failed or not result.ok else 6 if check.status == "unavailable" else 0
    if args.output == "json":
        output.as_json(result)
        return code
    if chain_broken:
        print(f"audit chain BROKEN at event {result.first_bad_event_id}: {result.problem}")
        print(f"({result.events_checked} events before it verified)")
    else:
        print(f"audit chain intact: {result.events_checked} events verified")
    if failed:
        print(f"{CHECKPOINT_LABELS.get(check.status, 'checkpoint check FAILED')}: {check.message}")
    elif check.status == "ok":
        print(f"checkpoint verified: {check.message}")
    elif check.status:
        print(f"checkpoint not checked: {check.message}")
    if check.key and check.status != "ok":
        print(f"(checkpoint {check.key}, signed by {check.key_id})")
    return code
