"""``opsctl window``: maintenance windows and their tasks (docs/maintenance-windows.md).

A window is a schedule (``cron(...)``, ``rate(...)``, ``at(...)``) in an IANA time zone, a duration
and a cutoff (no task starts after ``end - cutoff``). Its tasks (patch scans, patch installs, run
commands) run by priority, lowest first; equal priorities run together.

This module holds the commands: their flags and handlers. The flags become requests in
:mod:`~fleetops.opsctl.window_request`; results are printed by :mod:`~fleetops.opsctl.window_render`
(text) or :func:`fleetops.opsctl.output.emit` (``-o json``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from fleetops.common.errors import NotFound
from fleetops.opsctl import output, window_render
from fleetops.opsctl import window_request as request
from fleetops.opsctl.client import OperatorClient
from fleetops.opsctl.hosts import add_target_arguments
from fleetops.opsctl.operation_request import add_rate_arguments
from fleetops.opsctl.patch_request import REBOOT_CHOICES
from fleetops.opsctl.window_request import CUTOFF_BEHAVIORS, SCHEDULE_FORMS, TASK_TYPES

DEFAULT_RUNS = 5


# ---- command line -----------------------------------------------------------------------------


class _CommandAfterDashes(argparse.ArgumentParser):
    """A parser that takes the words after ``--`` as the command (``argv``), whatever options come before.

    argparse alone cannot: a positional (the window) followed by a ``nargs="*"`` positional is
    matched as one chunk, so ``WINDOW --priority 1 -- CMD`` would leave ``CMD`` unrecognized.
    Parsers without the ``command_after_dashes`` default behave as usual.
    """

    def parse_known_args(  # type: ignore[override]  # typeshed overloads it; same runtime signature
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if not self.get_default("command_after_dashes"):
            return super().parse_known_args(args, namespace)
        words = list(sys.argv[1:] if args is None else args)
        tail: list[str] = []
        if "--" in words:
            cut = words.index("--")
            words, tail = words[:cut], words[cut + 1 :]
        parsed, extras = super().parse_known_args(words, namespace)
        if extras:
            self.error(
                f"unrecognized arguments: {' '.join(extras)} "
                "(a run task's command goes after --, e.g. ... --type run --target role=web -- systemctl restart app)"
            )
        parsed.argv = tail
        return parsed, extras


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    window = sub.add_parser(
        "window",
        help="maintenance windows: scheduled patching and commands",
        description="Maintenance windows (docs/maintenance-windows.md): a schedule in a time zone, a duration and "
        "a cutoff, and tasks that run by priority (lowest first) while the window is open.",
    )
    wsub = window.add_subparsers(dest="window_command", required=True)

    p = wsub.add_parser(
        "create",
        help="create a window",
        description="Create a maintenance window. Dates without an offset are in --timezone; a date alone is "
        "the start of that day for --start-date and its end (23:59:59) for --end-date.",
    )
    p.add_argument("name")
    _add_window_flags(p, update=False)
    p.set_defaults(func=create_window)

    p = wsub.add_parser(
        "update",
        help="change a window (only the flags given change)",
        description="Change a maintenance window: the flags given replace those fields, the others keep their "
        "values. --start-date none / --end-date none remove a date; --offset 0 removes the offset.",
    )
    p.add_argument("name")
    _add_window_flags(p, update=True)
    p.set_defaults(func=update_window)

    p = wsub.add_parser("list", help="every window with its next run")
    output.add_output_argument(p)
    p.set_defaults(func=list_windows)

    p = wsub.add_parser("show", help="one window and its tasks")
    p.add_argument("name")
    output.add_output_argument(p)
    p.set_defaults(func=show_window)

    p = wsub.add_parser(
        "next",
        help="the next runs of a window, or of a schedule before saving it (--schedule)",
        description="The next start times of window NAME, or of an unsaved schedule: "
        "opsctl window next --schedule 'cron(0 2 * * SUN)' --timezone Europe/Paris --offset 2d",
    )
    p.add_argument("name", nargs="?", help="a saved window (or give --schedule)")
    p.add_argument("--schedule", default=None, metavar="EXPR", help="an unsaved schedule: " + SCHEDULE_FORMS)
    p.add_argument("--timezone", default=None, metavar="TZ", help="with --schedule: IANA time zone (default UTC)")
    p.add_argument("--start-date", default=None, metavar="ISO", help="with --schedule: no run before")
    p.add_argument("--end-date", default=None, metavar="ISO", help="with --schedule: no run after")
    p.add_argument("--offset", default=None, metavar="DAYS", help="with --schedule: days after each cron match")
    p.add_argument("-n", "--count", type=int, default=DEFAULT_RUNS, help=f"how many runs (default {DEFAULT_RUNS})")
    output.add_output_argument(p)
    p.set_defaults(func=next_runs)

    p = wsub.add_parser("history", help="past executions of a window with their tasks")
    p.add_argument("name")
    p.add_argument("--limit", type=int, default=20, help="most recent executions (default 20)")
    output.add_output_argument(p)
    p.set_defaults(func=window_history)

    for verb, enabled in (("enable", True), ("disable", False)):
        p = wsub.add_parser(verb, help="let the window run again" if enabled else "stop the window from running")
        p.add_argument("name")
        output.add_output_argument(p)
        p.set_defaults(func=enable_window if enabled else disable_window)

    p = wsub.add_parser("delete", help="delete a window and its tasks")
    p.add_argument("name")
    p.set_defaults(func=delete_window)

    task = wsub.add_parser("task", help="the tasks of a window: add, list, remove")
    tsub = task.add_subparsers(dest="task_command", required=True, parser_class=_CommandAfterDashes)
    p = tsub.add_parser(
        "add",
        help="add a task to a window",
        description="Add a task. patch-scan and patch-install run the patch agent tasks (docs/patching.md); "
        "run runs a command given after -- (or a --script); document runs a document (--doc, --param) on the "
        "target; automation starts a runbook (no target: its steps name theirs). Lower priorities run first; "
        "equal ones together.",
        usage="%(prog)s WINDOW --priority N --type patch-scan|patch-install|run|document|automation "
        "(--target SEL | --host H... | --all) [--doc NAME[:VERSION] --param K=V...] [options] [-- CMD ARGS...]",
    )
    p.add_argument("window")
    p.add_argument("--priority", type=int, required=True, metavar="N", help="lower runs first; equal run together")
    p.add_argument("--type", dest="task_type", required=True, choices=TASK_TYPES)
    add_target_arguments(p, required=True)
    add_rate_arguments(p)
    p.add_argument("--reboot", choices=REBOOT_CHOICES, default=None, help="patch-install: default if-needed")
    p.add_argument("--timeout", default=None, metavar="DURATION", help="per host, e.g. 30m (default 1h)")
    p.add_argument("--as", dest="run_as", default="", metavar="USER", help="run: as this user (POSIX hosts)")
    p.add_argument("--script", type=Path, default=None, metavar="FILE", help="run: a script instead of a command")
    p.add_argument("--doc", default="", metavar="NAME[:VERSION]", help="document and automation: what runs")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="document and automation: a parameter")
    p.add_argument("--description", default="", metavar="TEXT")
    output.add_output_argument(p)
    p.set_defaults(func=add_task, command_after_dashes=True, argv=[])

    p = tsub.add_parser("list", help="a window's tasks")
    p.add_argument("window")
    output.add_output_argument(p)
    p.set_defaults(func=list_tasks)

    p = tsub.add_parser("remove", help="remove a task from a window")
    p.add_argument("window")
    p.add_argument("task_id", metavar="TASK_ID")
    p.set_defaults(func=remove_task)


def _add_window_flags(p: argparse.ArgumentParser, *, update: bool) -> None:
    p.add_argument("--schedule", required=not update, default=None, metavar="EXPR", help=SCHEDULE_FORMS)
    p.add_argument(
        "--timezone",
        default=None,
        metavar="TZ",
        help="IANA time zone, e.g. Europe/Paris" + ("" if update else " (default UTC)"),
    )
    p.add_argument(
        "--duration", required=not update, default=None, metavar="DURATION", help="how long it is open, e.g. 3h"
    )
    p.add_argument(
        "--cutoff",
        required=not update,
        default=None,
        metavar="DURATION",
        help="no task starts this long before the end",
    )
    p.add_argument(
        "--cutoff-behavior",
        choices=CUTOFF_BEHAVIORS,
        default=None,
        help="at the cutoff, let running tasks finish (continue, the default) or cancel them",
    )
    p.add_argument("--start-date", default=None, metavar="ISO", help="no run before this date")
    p.add_argument("--end-date", default=None, metavar="ISO", help="no run after this date")
    p.add_argument("--offset", default=None, metavar="DAYS", help="cron only: run this many days after each match (2d)")
    p.add_argument("--description", default=None, metavar="TEXT")
    if update:
        group = p.add_mutually_exclusive_group()
        group.add_argument("--enabled", dest="enabled", action="store_const", const=True, default=None)
        group.add_argument("--disabled", dest="enabled", action="store_const", const=False)
    else:
        p.add_argument(
            "--disabled",
            dest="enabled",
            action="store_const",
            const=False,
            default=None,
            help="create it disabled (enable it with opsctl window enable)",
        )
    output.add_output_argument(p)


# ---- commands ---------------------------------------------------------------------------------


def create_window(client: OperatorClient, args: argparse.Namespace) -> int:
    created = client.create_window(request.creation_window(args))
    output.emit(args, created, lambda: window_render.print_saved("created", created, args.name))
    return 0


def update_window(client: OperatorClient, args: argparse.Namespace) -> int:
    request.require_changes(args)  # before any call
    current = client.get_window(args.name).window
    updated = client.update_window(request.updated_window(current, args))
    output.emit(args, updated, lambda: window_render.print_saved("updated", updated, args.name))
    return 0


def list_windows(client: OperatorClient, args: argparse.Namespace) -> int:
    windows = sorted(client.list_windows(), key=lambda w: w.name)
    output.emit(args, windows, lambda: window_render.print_windows(windows))
    return 0


def show_window(client: OperatorClient, args: argparse.Namespace) -> int:
    detail = client.get_window(args.name)
    output.emit(args, detail, lambda: window_render.print_window(detail))
    return 0


def next_runs(client: OperatorClient, args: argparse.Namespace) -> int:
    name, unsaved, count = request.next_runs_query(args)
    if unsaved is None:
        response = client.next_window_runs(name=name, count=count)
        title = f"next runs of window {name}"
        tz_name = ""
    else:
        response = client.next_window_runs(window=unsaved, count=count)
        title = f"next runs of {window_render.schedule_text(unsaved)} in {unsaved.timezone}"
        tz_name = unsaved.timezone

    def text() -> None:
        zone_name = tz_name
        if len(response.local_starts) < len(response.starts) and name:  # an older controller: its zone is needed
            zone_name = client.get_window(name).window.timezone
        window_render.print_next_runs(title, response, window_render.display_zone(zone_name))

    output.emit(args, response, text)
    return 0


def window_history(client: OperatorClient, args: argparse.Namespace) -> int:
    executions = client.window_history(args.name, limit=request.history_limit(args))

    def text() -> None:
        tz_name = "UTC"
        if executions:
            try:
                tz_name = client.get_window(args.name).window.timezone or "UTC"
            except NotFound:  # a deleted window's history: show UTC
                tz_name = "UTC"
        window_render.print_history(args.name, executions, tz_name)

    output.emit(args, executions, text)
    return 0


def enable_window(client: OperatorClient, args: argparse.Namespace) -> int:
    return _set_enabled(client, args, True)


def disable_window(client: OperatorClient, args: argparse.Namespace) -> int:
    return _set_enabled(client, args, False)


def _set_enabled(client: OperatorClient, args: argparse.Namespace, enabled: bool) -> int:
    w = client.set_window_enabled(args.name, enabled)
    output.emit(args, w, lambda: window_render.print_enabled(w, args.name, enabled))
    return 0


def delete_window(client: OperatorClient, args: argparse.Namespace) -> int:
    client.delete_window(args.name)
    print(f"deleted window {args.name} and its tasks")
    return 0


def add_task(client: OperatorClient, args: argparse.Namespace) -> int:
    task = client.add_window_task(request.task_request(args))
    output.emit(args, task, lambda: window_render.print_task_added(task, args.window))
    return 0


def list_tasks(client: OperatorClient, args: argparse.Namespace) -> int:
    detail = client.get_window(args.window)
    tasks = sorted(detail.tasks, key=lambda t: (t.priority, t.id))
    output.emit(args, tasks, lambda: window_render.print_task_list(tasks, args.window))
    return 0


def remove_task(client: OperatorClient, args: argparse.Namespace) -> int:
    client.remove_window_task(args.window, args.task_id)
    print(f"removed task {args.task_id} from window {args.window}")
    return 0
