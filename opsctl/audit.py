"""``opsctl audit``: review, export and verify the hash-chained audit log."""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from fleetops.common.durations import parse_time
from fleetops.opsctl import output
from fleetops.opsctl.client import OperatorClient
from fleetops.opsctl.command import STATE
from fleetops.v1 import operator_pb2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="who did what, where and when")
    asub = audit.add_subparsers(dest="audit_command", required=True)

    p = asub.add_parser(
        "list",
        help="the newest matching audit events, shown oldest first (changes; --reads adds reads)",
        description="The newest matching audit events, oldest first. Every call is recorded, but reads "
        "(listing, showing, watching) are left out unless --reads is given, --action names one, or they "
        "were denied or refused.",
    )
    p.add_argument("--since", help="events at or after: a duration back from now (2h, 7d) or an ISO time")
    p.add_argument("--until", help="events before: a duration back from now or an ISO time")
    p.add_argument(
        "--actor",
        default="",
        help="who acted: a bare name (alice, web-1) matches the operator and the host of that name; "
        "operator:alice, host:h-..., controller:NAME match exactly",
    )
    p.add_argument(
        "--host", default="", help="events about this host (name or id): its target, or a host it named or acted on"
    )
    p.add_argument("--action", default="", help="e.g. session.start, command.run, hosts.tag")
    p.add_argument("--outcome", default="", choices=("", "ok", "denied", "refused", "error"))
    p.add_argument("--reads", action="store_true", help="include reads (hosts list, run show...), hidden by default")
    p.add_argument("--before", type=int, default=0, metavar="ID", help="only events older than event ID (paging)")
    p.add_argument("--limit", type=int, default=100)
    output.add_output_argument(p)
    p.set_defaults(func=list_events)

    p = asub.add_parser("show", help="one event, with the session or command it concerns")
    p.add_argument("id", type=int)
    output.add_output_argument(p)
    p.set_defaults(func=show_event)

    p = asub.add_parser("export", help="write the events not exported yet to the object store now")
    output.add_output_argument(p)
    p.set_defaults(func=export)

    p = asub.add_parser(
        "verify",
        help="recompute the hash chain and compare it with the newest signed checkpoint; name what does not match",
    )
    output.add_output_argument(p)
    p.set_defaults(func=verify)


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
        include_reads=args.reads,
    )
    reads_left_out = not (args.reads or args.action)
    output.emit(
        args,
        lambda: [event_dict(e) for e in events],
        lambda: print_events(events, limit=args.limit, reads_left_out=reads_left_out),
    )
    return 0


def print_events(events: Sequence[operator_pb2.AuditEvent], *, limit: int, reads_left_out: bool) -> None:
    """The event table, oldest first, and how to see older ones when *limit* was reached."""
    if not events:
        reads = " (reads are left out: add --reads to include them)" if reads_left_out else ""
        print(f"no events match{reads}")
        return
    rows = [
        [
            str(e.id),
            output.when(e.time),
            output.neutralize(e.actor),
            e.action,
            output.neutralize(e.target) or "-",
            e.outcome,
            details_text(_details(e.details_json), e.outcome, limit=DETAILS_COLUMN),
        ]
        for e in events
    ]
    output.table(["ID", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "DETAILS"], rows)
    if len(events) == limit:
        print(f"(the newest {limit}; older ones: --before {events[0].id}; all of one: opsctl audit show ID)")


def event_dict(event: operator_pb2.AuditEvent) -> dict[str, Any]:
    """An event as ``-o json`` prints it: the message's JSON form, with ``details`` as an object.

    ``details_json`` (the same, as a string) stays for scripts written before ``details`` existed.
    """
    doc = output.message_dict(event)
    doc["details"] = _details(event.details_json)
    return doc


def _details(details_json: str) -> dict[str, Any]:
    try:
        doc = json.loads(details_json or "{}")
    except ValueError:
        return {"unreadable": details_json}
    return doc if isinstance(doc, dict) else {"value": doc}


# -- details as words ---------------------------------------------------------------------------------

#: Characters of the DETAILS column; ``opsctl audit show ID`` prints everything.
DETAILS_COLUMN = 120
#: Shown first, in this order (what was attempted); then any other key; then why it failed.
_LEAD = (
    "operation",
    "argv",
    "script_sha256",
    "selector",
    "all",
    "hosts",
    "host",
    "run_as",
    "command",
    "cwd",
    "env",
    "window",
    "task",
    "task_type",
)
#: Not shown in the column: the caller's roles and the decisions (opsctl audit show has them).
_HIDDEN = {
    "roles",
    "authz",
    "error",
    "script_bytes",
    "argv_truncated",
    "argv_items",
    "hosts_truncated",
    "max_concurrency",
    "max_errors",
}
_FAILED = {"denied": "denied", "refused": "refused", "error": "failed"}


def details_text(details: dict[str, Any], outcome: str = "ok", limit: int = 0) -> str:
    """Audit details as one line of words: ``argv=sh -c uptime target=env=prod run_as=root; denied: ...``.

    Control characters are shown escaped (details may quote what a host reported). With ``limit``,
    cut to that many characters with an ellipsis, keeping room for why it failed.
    """
    keys = [k for k in _LEAD if k in details] + [k for k in details if k not in _LEAD and k not in _HIDDEN]
    what = output.neutralize(" ".join(w for w in (_word(k, details[k], details) for k in keys) if w))
    error = details.get("error")
    why = output.neutralize(f"{_FAILED.get(outcome, 'failed')}: {error}") if error else ""
    if not what and not why and isinstance(details.get("authz"), list):
        allowed = [str(m) for d in details["authz"] if isinstance(d, dict) for m in d.get("matched", [])]
        what = output.neutralize(f"allowed by {', '.join(allowed)}") if allowed else ""
    if limit and what and why and len(what) + 2 + len(why) > limit:
        what = _cut(what, max(limit - 2 - len(why), limit // 2))
    return _cut("; ".join(t for t in (what, why) if t), limit)


def _cut(text: str, limit: int) -> str:
    return text if not limit or len(text) <= limit else text[: limit - 1] + "…"


def _word(key: str, value: Any, details: dict[str, Any]) -> str:
    if value in (None, "", [], {}):
        return ""
    if key == "argv":
        more = " …" if details.get("argv_truncated") else ""
        return f"argv={output.command_line([str(a) for a in value])}{more}"
    if key == "script_sha256":
        size = details.get("script_bytes")
        return f"script=sha256:{str(value)[:12]}…" + (f" ({output.size(int(size))})" if size is not None else "")
    if key == "selector":
        return f"target={value}"
    if key == "all":
        return "target=all" if value is True else ""
    if key == "hosts" and isinstance(value, list):
        count = details.get("host_count")
        shown = ",".join(str(h) for h in value[:5])
        hidden = (count if isinstance(count, int) else len(value)) - min(len(value), 5)
        return f"hosts={shown}" + (f" (+{hidden} more)" if hidden > 0 else "")
    if key == "host_count":
        return ""
    if isinstance(value, bool):
        return key if value else f"{key}=false"
    if isinstance(value, list):
        return f"{key}={','.join(_atom(v) for v in value)}"
    if isinstance(value, dict):
        return f"{key}={','.join(f'{k}={_atom(v)}' for k, v in value.items())}"
    return f"{key}={_atom(value)}"


def _atom(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    text = str(value)
    return shlex.quote(text) if any(c.isspace() for c in text) or not text else text


def show_event(client: OperatorClient, args: argparse.Namespace) -> int:
    detail = client.get_audit_event(args.id)
    output.emit(args, lambda: event_detail_dict(detail), lambda: print_event(detail))
    return 0


def event_detail_dict(detail: operator_pb2.AuditEventDetail) -> dict[str, Any]:
    """``audit show -o json``: the detail's JSON form, its event as :func:`event_dict` writes it."""
    doc = output.message_dict(detail)
    doc["event"] = event_dict(detail.event)
    return doc


def print_event(detail: operator_pb2.AuditEventDetail) -> None:
    """One event's fields and details, then the session or command it is about."""
    e = detail.event
    details = _details(e.details_json)
    summary = details_text(details, e.outcome)
    _fields(
        [
            ("event", str(e.id)),
            ("time", output.when(e.time)),
            ("actor", e.actor),
            ("action", e.action),
            ("target", output.neutralize(e.target) or "-"),
            ("outcome", e.outcome),
            ("hash", e.hash),
            ("previous", e.previous_hash),
            *([("what", summary)] if summary else []),
        ]
    )
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
                ("run", output.command_line(c.argv) or "(script)"),
                ("target", f"{c.target}  ({output.plural(c.total, 'host')})"),
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


def _fields(lines: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {value}")


def export(client: OperatorClient, args: argparse.Namespace) -> int:
    result = client.export_audit()
    output.emit(args, result, lambda: print_export(result))
    return 0


def print_export(result: operator_pb2.ExportAuditResponse) -> None:
    """What an export wrote and where the object store's copy ends."""
    if result.events:
        print(f"exported {output.plural(result.events, 'event')} in {output.plural(result.chunks, 'chunk')}")
    else:
        print("nothing new to export")
    if result.last_event_id:
        print(f"the object store's copy ends at event {result.last_event_id} (hash {result.last_hash})")


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
    output.emit(args, result, lambda: print_verification(result, chain_broken=chain_broken, failed=failed))
    return code


def print_verification(result: operator_pb2.VerifyAuditResponse, *, chain_broken: bool, failed: bool) -> None:
    """The chain's verdict, then the checkpoint's."""
    check = result.checkpoint
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
