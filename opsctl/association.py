"""``opsctl association``: documents kept applied to targets (docs/automation.md#associations).

``create`` checks what it can here (the target flags, ``--param K=V``, the rates, ``--check-every``)
so that a typo is named before anything is sent; the controller checks everything again,
against the document (parameters, its check) and the creator's rights. ``show`` lists each host's
compliance: ``compliant``, ``non_compliant``, ``drifted``, ``pending`` or ``failed``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

from fleetops.common.durations import parse_duration
from fleetops.common.errors import InvalidInput
from fleetops.opsctl import output
from fleetops.opsctl.client import OperatorClient
from fleetops.opsctl.command import key_values
from fleetops.opsctl.hosts import add_target_arguments
from fleetops.opsctl.operation_request import add_rate_arguments, check_target, rate_limits
from fleetops.v1 import operator_pb2

SCHEDULE_FORMS = "rate(30 minutes), rate(1 day) or cron(0 2 * * *) (cron in UTC)"
DETAIL_WIDTH = 70


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``association`` command group."""
    group = sub.add_parser(
        "association",
        help="associations: documents kept applied to targets on a schedule, with compliance per host",
        description="An association applies a document to every host its target matches: at once, then on its "
        "schedule, and at once to each host that newly matches. Each application runs as its author, decided "
        "again when it runs (docs/automation.md#associations).",
    )
    asub = group.add_subparsers(dest="association_command", required=True)

    p = asub.add_parser(
        "create",
        help="create an association (prints its id); it applies at once",
        description="Create an association. The document (NAME: its default version when each application "
        "runs; NAME:VERSION: that version) is applied at once to every host the target matches, then on the "
        "schedule, and to each host that matches later. --check-every runs the document's check between "
        "applications: a host whose check fails is drifted until the next application.",
    )
    p.add_argument("name", nargs="?", default="", metavar="NAME", help="an optional name, unique")
    p.add_argument("--doc", required=True, metavar="NAME[:VERSION]", help="the document to keep applied")
    add_target_arguments(p, required=True)
    p.add_argument("--schedule", required=True, metavar="EXPR", help=SCHEDULE_FORMS)
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="a document parameter (repeatable)")
    add_rate_arguments(p)
    p.add_argument(
        "--check-every",
        default="",
        metavar="DURATION",
        help="run the document's check this often between applications, e.g. 5m (default: no checks)",
    )
    output.add_output_argument(p)
    p.set_defaults(func=create_association)

    p = asub.add_parser("list", help="every association with its compliance summary")
    output.add_output_argument(p)
    p.set_defaults(func=list_associations)

    p = asub.add_parser("show", help="one association and each host's compliance")
    p.add_argument("key", metavar="ID|NAME")
    output.add_output_argument(p)
    p.set_defaults(func=show_association)
    output.add_raw_argument(p)

    p = asub.add_parser("history", help="an association's runs (applications and checks), newest first")
    p.add_argument("key", metavar="ID|NAME")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="most recent runs (default 50)")
    output.add_output_argument(p)
    p.set_defaults(func=association_history)

    p = asub.add_parser("apply", help="apply it now on every host its target matches")
    p.add_argument("key", metavar="ID|NAME")
    output.add_output_argument(p)
    p.set_defaults(func=apply_association)

    p = asub.add_parser("delete", help="delete an association (commands already running go on)")
    p.add_argument("key", metavar="ID|NAME")
    p.set_defaults(func=delete_association)


def check_every(text: str) -> int:
    """``--check-every`` in whole seconds (``""`` or ``0``: no checks)."""
    if text.strip() in ("", "0"):
        return 0
    try:
        seconds = int(parse_duration(text).total_seconds())
    except InvalidInput as exc:
        raise InvalidInput(f"--check-every: {exc.message}", exc.hint) from None
    if seconds < 1:
        raise InvalidInput(f"--check-every {text} is shorter than a second", "e.g. --check-every 5m")
    return seconds


def create_association(client: OperatorClient, args: argparse.Namespace) -> int:
    check_target(args)
    concurrency, errors = rate_limits(args)
    request = operator_pb2.Association(
        name=args.name,
        document=args.doc,
        parameters=key_values(args.param, "--param"),
        target=operator_pb2.Target(selector=args.target, hosts=args.host, all=args.all),
        schedule=args.schedule,
        max_concurrency=concurrency,
        max_errors=errors,
        check_interval_seconds=check_every(args.check_every),
    )
    created = client.create_association(request)
    output.emit(args, created, lambda: print(created.id))
    return 0


def target_text(t: operator_pb2.Target) -> str:
    if t.all:
        return "--all"
    if t.hosts:
        return "hosts " + ",".join(output.host_text(h) for h in t.hosts)
    return t.selector


def _counts_text(counts: Mapping[str, int]) -> str:
    items = sorted(counts.items())
    return ", ".join(f"{n} {status}" for status, n in items if n) or "no hosts yet"


def list_associations(client: OperatorClient, args: argparse.Namespace) -> int:
    found = client.list_associations()

    def text() -> None:
        rows = [
            [
                a.id,
                a.name or "-",
                a.document,
                output.neutralize(target_text(a.target)),
                a.schedule,
                a.status,
                _counts_text(a.counts),
                output.when(a.next_run),
            ]
            for a in found
        ]
        output.table(["ID", "NAME", "DOCUMENT", "TARGET", "SCHEDULE", "STATUS", "HOSTS", "NEXT RUN"], rows)

    output.emit(args, found, text)
    return 0


def print_association(a: operator_pb2.Association) -> None:
    params = ", ".join(f"{k}={v}" for k, v in sorted(a.parameters.items())) or "-"
    lines = [
        ("association", a.id + (f" ({a.name})" if a.name else "")),
        ("document", a.document if ":" in a.document else f"{a.document} (its default version)"),
        ("parameters", output.neutralize(params)),
        ("target", output.neutralize(target_text(a.target))),
        ("schedule", a.schedule),
        ("checks", f"every {output.duration(a.check_interval_seconds)}" if a.check_interval_seconds else "none"),
        ("rates", f"max-concurrency {a.max_concurrency or 'default'}, max-errors {a.max_errors or 'default (100%)'}"),
        ("author", a.author),
        ("created", output.when(a.created_at)),
        ("last run", output.when(a.last_run) if output.is_set(a.last_run) else "-"),
        ("next run", output.when(a.next_run)),
        ("status", f"{a.status} ({_counts_text(a.counts)})"),
    ]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {value}")


def _clip(text: str, width: int = DETAIL_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def print_hosts(hosts: Sequence[operator_pb2.AssociationHostStatus]) -> None:
    rows = [
        [
            output.host_text(h.host_name or h.host_id),
            h.status,
            output.when(h.last_applied_at) if output.is_set(h.last_applied_at) else "-",
            h.last_command_id or "-",
            output.host_text(_clip(h.detail)) or "-",
        ]
        for h in hosts
    ]
    output.table(["HOST", "STATUS", "LAST APPLIED", "LAST COMMAND", "DETAIL"], rows, out=sys.stdout)


def show_association(client: OperatorClient, args: argparse.Namespace) -> int:
    detail = client.get_association(args.key)

    def text() -> None:
        print_association(detail.association)
        if detail.hosts:
            print()
            print_hosts(detail.hosts)

    output.emit(args, detail, text)
    return 0


def association_history(client: OperatorClient, args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise InvalidInput(f"--limit {args.limit} is not a positive number", "e.g. --limit 20")
    runs = client.association_history(args.key, min(args.limit, 1000))

    def text() -> None:
        rows = [[output.when(r.started_at), r.trigger, r.command_id, str(r.hosts), r.status or "-"] for r in runs]
        output.table(["STARTED", "TRIGGER", "COMMAND", "HOSTS", "STATUS"], rows)

    output.emit(args, runs, text)
    return 0


def apply_association(client: OperatorClient, args: argparse.Namespace) -> int:
    run = client.apply_association(args.key)
    message = f"applying {run.association_id}: command {run.command_id} on {output.plural(run.hosts, 'host')}"
    output.emit(args, run, lambda: print(message))
    return 0


def delete_association(client: OperatorClient, args: argparse.Namespace) -> int:
    client.delete_association(args.key)
    print(f"deleted association {args.key}")
    return 0
