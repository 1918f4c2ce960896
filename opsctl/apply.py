"""``opsctl apply``, ``opsctl diff`` and ``opsctl export``: configuration as code (docs/apply.md).

``diff`` and ``apply`` send the whole set; the controller checks and authorizes every object
before changing anything and answers with the plan (``diff``) or what it did (``apply``).
``diff`` exits :data:`CHANGES_PENDING` when applying would change something, 0 when not (as
``terraform plan -detailed-exitcode``; 2 is already opsctl's exit code for invalid input).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fleetops.opsctl import output
from fleetops.opsctl.client import OperatorClient
from fleetops.opsctl.config_files import default_source, dump_objects, read_set
from fleetops.v1 import operator_pb2

#: ``opsctl diff``'s exit code when applying the set would change something.
CHANGES_PENDING = 10
SYMBOLS = {"create": "+", "update": "~", "delete": "-", "unchanged": "="}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, func, what in (
        ("apply", apply_set, "make the controller's configuration what a YAML set says (docs/apply.md)"),
        ("diff", diff_set, f"what apply would change; exit 0 when nothing, {CHANGES_PENDING} when something"),
    ):
        p = sub.add_parser(name, help=what, description=what)
        p.add_argument("-f", "--file", required=True, metavar="PATH", help="a YAML file, a directory of them, or -")
        p.add_argument(
            "--prune",
            action="store_true",
            help="also delete objects applied before from this source that the set no longer has",
        )
        p.add_argument(
            "--source",
            default=None,
            metavar="NAME",
            help="the set's name for --prune (default: the file or directory name)",
        )
        output.add_output_argument(p)
        p.set_defaults(func=func)

    p = sub.add_parser(
        "export",
        help="the controller's configuration as a YAML set that apply reads back",
        description="Write roles, patch baselines and groups, documents, maintenance windows and associations "
        "as YAML (all kinds unless some are named), sorted, to standard output or --to FILE.",
    )
    p.add_argument("kinds", nargs="*", metavar="KIND", help="Role, PatchBaseline, PatchGroup, Document, ...")
    p.add_argument("--to", default=None, metavar="FILE", help="write to this file instead of standard output")
    p.set_defaults(func=export_set)


def _request_objects(path: str) -> list[operator_pb2.ConfigObject]:
    return [
        operator_pb2.ConfigObject(kind=o.kind, name=o.name, spec_json=json.dumps(o.spec), origin=o.origin)
        for o in read_set(path)
    ]


def _send(client: OperatorClient, args: argparse.Namespace, dry_run: bool) -> operator_pb2.ApplyConfigurationResponse:
    source = args.source or default_source(args.file)
    objects = _request_objects(args.file)
    return client.apply_configuration(objects, dry_run=dry_run, prune=args.prune, source=source)


def _value(text: str) -> str:
    return "(none)" if not text else text


def render(response: operator_pb2.ApplyConfigurationResponse, *, applied: bool) -> None:
    """One line per object that changes (``+`` create, ``~`` update, ``-`` delete), fields below updates."""
    changed = [c for c in response.changes if c.action != "unchanged"]
    for c in changed:
        verb = {"create": "created", "update": "updated", "delete": "deleted"}[c.action] if applied else c.action
        print(f"{SYMBOLS[c.action]} {c.kind} {c.name}: {verb}" + (f" ({c.note})" if c.note else ""))
        for f in c.fields:
            print(f"    {f.path}: {_value(f.before_json)} -> {_value(f.after_json)}")
    unchanged = len(response.changes) - len(changed)
    if not changed:
        print(f"no changes ({unchanged} object{'s' if unchanged != 1 else ''} up to date)")
    else:
        counts = {a: sum(1 for c in changed if c.action == a) for a in ("create", "update", "delete")}
        summary = ", ".join(f"{n} to {a}" if not applied else f"{n} {a}d" for a, n in counts.items() if n)
        print(f"{summary}; {unchanged} unchanged" if unchanged else summary)


def apply_set(client: OperatorClient, args: argparse.Namespace) -> int:
    response = _send(client, args, dry_run=False)
    output.emit(args, response, lambda: render(response, applied=True))
    return 0


def diff_set(client: OperatorClient, args: argparse.Namespace) -> int:
    response = _send(client, args, dry_run=True)
    output.emit(args, response, lambda: render(response, applied=False))
    return CHANGES_PENDING if any(c.action != "unchanged" for c in response.changes) else 0


def export_set(client: OperatorClient, args: argparse.Namespace) -> int:
    objects = client.export_configuration(list(args.kinds))
    text = dump_objects([(o.kind, o.name, json.loads(o.spec_json)) for o in objects])
    if args.to:
        Path(args.to).write_text(text, encoding="utf-8")
        print(f"wrote {len(objects)} objects to {args.to}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
