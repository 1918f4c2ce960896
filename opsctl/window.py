"""``opsctl window``: maintenance windows and their tasks (docs/maintenance-windows.md).

A window is a schedule (``cron(...)``, ``rate(...)``, ``at(...)``) in an IANA time zone, a duration
and a cutoff (no task starts after ``end - cutoff``). Its tasks (patch scans, patch installs, run
commands) run by priority, lowest first; equal priorities run together. Times are shown in the
window's time zone with the zone's offset, so a run around a DST change is unambiguous.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from io import StringIO
from pathlib import Path
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from fleetops.common.durations import parse_duration
from fleetops.common.errors import InvalidInput, NotFound
from fleetops.common.selectors import Selector
from fleetops.opsctl import command, output, patch
from fleetops.opsctl.client import OperatorClient
from fleetops.opsctl.hosts import add_target_arguments
from fleetops.v1 import operator_pb2

CUTOFF_BEHAVIORS = ("continue", "cancel")
TASK_TYPES = ("patch-scan", "patch-install", "run")
REBOOT_CHOICES = patch.REBOOT_CHOICES
DEFAULT_TIMEZONE = "UTC"
DEFAULT_RUNS = 5
UINT32_MAX = 2**32 - 1
DETAIL_WIDTH = 60
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SCHEDULE_RE = re.compile(r"(cron|rate|at)\(\s*\S.*\)", re.DOTALL)
SCHEDULE_FORMS = "cron(0 2 * * SUN), rate(30 minutes) or at(2026-12-24T22:00)"
SCHEDULE_HINT = "use " + SCHEDULE_FORMS
DATE_HINT = "use an ISO 8601 date or date-time: 2026-03-01, 2026-03-01T08:00 (in --timezone) or 2026-03-01T08:00+01:00"
LIMIT_RE = re.compile(r"(\d+)(%?)")


# ---- command line -----------------------------------------------------------------------------


class _CommandAfterDashes(argparse.ArgumentParser):
    """A parser that takes the words after ``--`` as the command (``argv``), whatever options come before.

    argparse alone cannot: a positional (the window) followed by a ``nargs="*"`` positional is
    matched as one chunk, so ``WINDOW --priority 1 -- CMD`` would leave ``CMD`` unrecognized.
    Parsers without the ``command_after_dashes`` default behave as usual.
    """

    def parse_known_args(  # type: ignore[override]
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


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
        "run runs a command given after -- (or a --script). Lower priorities run first; equal ones together.",
        usage="%(prog)s WINDOW --priority N --type patch-scan|patch-install|run (--target SEL | --host H... | --all) "
        "[options] [-- CMD ARGS...]",
    )
    p.add_argument("window")
    p.add_argument("--priority", type=int, required=True, metavar="N", help="lower runs first; equal run together")
    p.add_argument("--type", dest="task_type", required=True, choices=TASK_TYPES)
    add_target_arguments(p, required=True)
    p.add_argument("--max-concurrency", default="", help="hosts at a time: a count or a percentage (default 50)")
    p.add_argument(
        "--max-errors", default="", help="stop after this many failed hosts: count or a percentage (default 0)"
    )
    p.add_argument("--reboot", choices=REBOOT_CHOICES, default=None, help="patch-install: default if-needed")
    p.add_argument("--timeout", default=None, metavar="DURATION", help="per host, e.g. 30m (default 1h)")
    p.add_argument("--as", dest="run_as", default="", metavar="USER", help="run: as this user (POSIX hosts)")
    p.add_argument("--script", type=Path, default=None, metavar="FILE", help="run: a script instead of a command")
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


# ---- values -----------------------------------------------------------------------------------


def zone(name: str) -> tzinfo:
    """The tzinfo of IANA zone *name* ("" is UTC); InvalidInput when it is unknown."""
    if not name or name.upper() == "UTC":
        return UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        if not available_timezones():
            raise InvalidInput(
                f"cannot look up time zone {name!r}: this system has no time zone database", "pip install tzdata"
            ) from None
        raise InvalidInput(
            f"unknown time zone {name!r}", "use an IANA name such as Europe/Paris, America/New_York or UTC"
        ) from None


def display_zone(name: str) -> tzinfo:
    """*name*'s tzinfo for showing times; UTC when this system cannot resolve it (times still carry their offset)."""
    try:
        return zone(name)
    except InvalidInput:
        return UTC


def canonical_timezone(name: str) -> str:
    name = name.strip()
    if not name or name.upper() == "UTC":
        return "UTC"
    zone(name)
    return name


def _uint32(value: int, flag: str) -> int:
    if value > UINT32_MAX:
        raise InvalidInput(f"{flag} is too large", f"give a smaller {flag}")
    return value


def seconds(text: str, flag: str, *, allow_zero: bool = False) -> int:
    """A duration flag's value in whole seconds ("0" is allowed with *allow_zero*)."""
    if allow_zero and text.strip() == "0":
        return 0
    value = int(parse_duration(text).total_seconds())
    if value <= 0 and not allow_zero:
        raise InvalidInput(f"{flag} must be positive", f"e.g. {flag} 3h")
    return _uint32(value, flag)


def offset_days(text: str) -> int:
    """``--offset``: days as a number (``2``) or a duration of whole days (``2d``, ``48h``, ``1w``)."""
    t = text.strip()
    if t.isdigit():
        return _uint32(int(t), "--offset")
    total = parse_duration(t).total_seconds()
    if total % 86400:
        raise InvalidInput(
            f"--offset {text} is not a whole number of days",
            "the offset counts days after each cron match, e.g. --offset 2d (or --offset 2)",
        )
    return _uint32(int(total // 86400), "--offset")


def parse_date(text: str, flag: str, timezone: str, *, end: bool = False) -> Timestamp | None:
    """An ISO 8601 date or date-time; one without an offset is in *timezone*. ``none``/empty: no date.

    A date alone is the start of that day, or for an end date (*end*) its last second.
    """
    t = text.strip()
    if t.lower() in ("", "none"):
        return None
    try:
        try:
            day = date.fromisoformat(t)
        except ValueError:
            moment = datetime.fromisoformat(t)
        else:
            moment = datetime.combine(day, time(23, 59, 59) if end else time(0))
    except ValueError:
        raise InvalidInput(f"bad {flag} {text!r}", DATE_HINT) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(timezone))
    stamp = Timestamp()
    try:
        stamp.FromDatetime(moment.astimezone(UTC))
    except (ValueError, OverflowError):
        raise InvalidInput(f"{flag} {text!r} is out of range", DATE_HINT) from None
    return stamp


def _is_set(ts: Timestamp) -> bool:
    return bool(ts.seconds or ts.nanos)


def check_schedule(schedule: str) -> str:
    s = schedule.strip()
    if not SCHEDULE_RE.fullmatch(s):
        raise InvalidInput(f"bad schedule {schedule!r}", SCHEDULE_HINT)
    return s


def check_window(w: operator_pb2.MaintenanceWindow, *, saved: bool = True) -> None:
    """What opsctl can check of a window before sending it (the controller checks the schedule itself)."""
    check_schedule(w.schedule)
    zone(w.timezone)
    if w.offset_days and not w.schedule.startswith("cron("):
        raise InvalidInput(
            "--offset goes with a cron(...) schedule only", "drop the offset (--offset 0) or use a cron schedule"
        )
    if _is_set(w.start_date) and _is_set(w.end_date) and w.end_date.ToSeconds() <= w.start_date.ToSeconds():
        raise InvalidInput("--end-date is not after --start-date", "give an end date later than the start date")
    if not saved:
        return
    if w.cutoff_behavior not in ("", *CUTOFF_BEHAVIORS):
        raise InvalidInput(f"bad cutoff behavior {w.cutoff_behavior!r}", "use --cutoff-behavior continue or cancel")
    if w.duration_seconds <= 0:
        raise InvalidInput("--duration must be positive", "e.g. --duration 3h")
    if w.cutoff_seconds >= w.duration_seconds:
        raise InvalidInput(
            f"the cutoff ({span(w.cutoff_seconds)}) is not shorter than the duration ({span(w.duration_seconds)}): "
            "no task could ever start",
            "no task starts after end - cutoff; e.g. --duration 3h --cutoff 1h",
        )


def window_flags_given(args: argparse.Namespace) -> bool:
    flags = (
        args.schedule,
        args.timezone,
        args.duration,
        args.cutoff,
        args.cutoff_behavior,
        args.start_date,
        args.end_date,
        args.offset,
        args.description,
        args.enabled,
    )
    return any(v is not None for v in flags)


def require_changes(args: argparse.Namespace) -> None:
    if not window_flags_given(args):
        raise InvalidInput(
            f"nothing to change in window {args.name}", "give the flags to change, e.g. --duration 4h or --cutoff 30m"
        )


def apply_window_flags(w: operator_pb2.MaintenanceWindow, args: argparse.Namespace) -> None:
    """Set the fields of *w* whose flags were given (dates are read in the window's resulting time zone)."""
    if args.schedule is not None:
        w.schedule = check_schedule(args.schedule)
    if args.timezone is not None:
        w.timezone = canonical_timezone(args.timezone)
    if args.duration is not None:
        w.duration_seconds = seconds(args.duration, "--duration")
    if args.cutoff is not None:
        w.cutoff_seconds = seconds(args.cutoff, "--cutoff", allow_zero=True)
    if args.cutoff_behavior is not None:
        behavior = args.cutoff_behavior.strip().lower()
        if behavior not in CUTOFF_BEHAVIORS:
            raise InvalidInput(
                f"bad --cutoff-behavior {args.cutoff_behavior!r}",
                "use continue (running tasks finish) or cancel (running tasks are cancelled at the cutoff)",
            )
        w.cutoff_behavior = behavior
    for flag, field, value, end in (
        ("--start-date", "start_date", args.start_date, False),
        ("--end-date", "end_date", args.end_date, True),
    ):
        if value is None:
            continue
        stamp = parse_date(value, flag, w.timezone, end=end)
        if stamp is None:
            w.ClearField(field)
        else:
            getattr(w, field).CopyFrom(stamp)
    if args.offset is not None:
        w.offset_days = offset_days(args.offset)
    if args.description is not None:
        w.description = args.description
    if args.enabled is not None:
        w.enabled = args.enabled


def creation_window(args: argparse.Namespace) -> operator_pb2.MaintenanceWindow:
    """The MaintenanceWindow ``window create`` sends."""
    w = operator_pb2.MaintenanceWindow(
        name=args.name, timezone=DEFAULT_TIMEZONE, cutoff_behavior="continue", enabled=True
    )
    apply_window_flags(w, args)
    check_window(w)
    return w


def updated_window(current: operator_pb2.MaintenanceWindow, args: argparse.Namespace) -> operator_pb2.MaintenanceWindow:
    """The MaintenanceWindow ``window update`` sends: *current* with the flags given (the RPC replaces every field)."""
    require_changes(args)
    w = operator_pb2.MaintenanceWindow()
    w.CopyFrom(current)
    for computed in ("next_run", "created_at", "created_by"):
        w.ClearField(computed)
    w.name = args.name
    apply_window_flags(w, args)
    check_window(w)
    return w


def unsaved_window(args: argparse.Namespace) -> operator_pb2.MaintenanceWindow:
    """``window next --schedule ...``: the schedule part of a window, to see its runs before saving it."""
    w = operator_pb2.MaintenanceWindow(
        schedule=check_schedule(args.schedule), timezone=canonical_timezone(args.timezone or DEFAULT_TIMEZONE)
    )
    for flag, field, value, end in (
        ("--start-date", "start_date", args.start_date, False),
        ("--end-date", "end_date", args.end_date, True),
    ):
        stamp = parse_date(value, flag, w.timezone, end=end) if value is not None else None
        if stamp is not None:
            getattr(w, field).CopyFrom(stamp)
    if args.offset is not None:
        w.offset_days = offset_days(args.offset)
    check_window(w, saved=False)
    return w


def check_limit(text: str, flag: str) -> str:
    """``--max-concurrency``/``--max-errors``: a count or a percentage ("" is the controller's default)."""
    value = text.strip()
    if not value:
        return ""
    m = LIMIT_RE.fullmatch(value)
    if not m:
        raise InvalidInput(f"bad {flag} {text!r}", f"use a count or a percentage, e.g. {flag} 10 or {flag} 10%")
    if m.group(2) and int(m.group(1)) > 100:
        raise InvalidInput(f"{flag} {text} is more than 100%", f"e.g. {flag} 25%")
    if flag == "--max-concurrency" and int(m.group(1)) == 0:
        raise InvalidInput("--max-concurrency 0 would never run anything", "e.g. --max-concurrency 10%")
    return value


def task_request(args: argparse.Namespace) -> operator_pb2.WindowTask:
    """The WindowTask ``window task add`` sends, checked."""
    patch.check_target(args)
    if args.target:
        Selector.parse(args.target)  # a bad selector is reported here, with a pointer to the bad character
    if args.priority < 0:
        raise InvalidInput("--priority must be 0 or more", "lower priorities run first; equal ones run together")
    kind = args.task_type
    if kind not in TASK_TYPES:
        raise InvalidInput(f"bad --type {kind!r}", "use --type patch-scan, patch-install or run")
    argv = list(args.argv or [])
    script = b""
    if kind == "run":
        if bool(argv) == bool(args.script):
            raise InvalidInput(
                "a run task needs a command after -- or --script FILE (not both)",
                f"opsctl window task add {args.window} --priority {args.priority} --type run "
                f"--target role=web -- systemctl restart app",
            )
        if args.script:
            try:
                script = args.script.read_bytes()
            except OSError as exc:
                raise InvalidInput(f"cannot read script {args.script}: {exc.strerror}") from exc
    else:
        if argv or args.script:
            raise InvalidInput(
                f"a {kind} task runs the patch agent task, not a command",
                "drop the command (and --script), or use --type run to run a command",
            )
        if args.run_as:
            raise InvalidInput(f"--as goes with --type run only, not {kind}", "patch tasks run as the agent does")
    if args.reboot is not None and kind != "patch-install":
        raise InvalidInput(f"--reboot goes with --type patch-install only, not {kind}", "drop --reboot")
    reboot = ""
    if kind == "patch-install":
        reboot = args.reboot or "if-needed"
        if reboot not in REBOOT_CHOICES:
            raise InvalidInput(f"bad --reboot {reboot!r}", "use --reboot if-needed or --reboot never")
    return operator_pb2.WindowTask(
        window=args.window,
        priority=_uint32(args.priority, "--priority"),
        type=kind,
        target=operator_pb2.Target(selector=args.target, hosts=args.host, all=args.all),
        max_concurrency=check_limit(args.max_concurrency, "--max-concurrency"),
        max_errors=check_limit(args.max_errors, "--max-errors"),
        reboot=reboot,
        argv=argv,
        script=script,
        run_as=args.run_as,
        timeout_seconds=command.positive_seconds(args.timeout, "--timeout") if args.timeout else 0,
        description=args.description,
    )


# ---- rendering --------------------------------------------------------------------------------


def span(total: int) -> str:
    """Seconds as ``3h``, ``1h30m``, ``2d``, ``0s``."""
    if total <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts)


def _offset_text(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta()).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def local_text(moment: datetime, *, weekday: bool = True) -> str:
    """``2026-03-29 02:00 +02:00 (Sun)`` (seconds only when there are some)."""
    pattern = "%Y-%m-%d %H:%M:%S" if moment.second else "%Y-%m-%d %H:%M"
    text = f"{moment.strftime(pattern)} {_offset_text(moment.utcoffset())}"
    return f"{text} ({WEEKDAYS[moment.weekday()]})" if weekday else text


def local_when(ts: Timestamp, tz: tzinfo, *, weekday: bool = True) -> str:
    """A Timestamp in the window's zone, or '-' when unset."""
    if not _is_set(ts):
        return "-"
    return local_text(ts.ToDatetime(tzinfo=UTC).astimezone(tz), weekday=weekday)


def clock(ts: Timestamp, tz: tzinfo) -> str:
    """``2026-03-29 02:00:03`` in *tz*, or '-'."""
    if not _is_set(ts):
        return "-"
    return ts.ToDatetime(tzinfo=UTC).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def schedule_text(w: operator_pb2.MaintenanceWindow) -> str:
    return w.schedule + (f" +{w.offset_days}d" if w.offset_days else "")


def describe(w: operator_pb2.MaintenanceWindow) -> str:
    """``cron(0 2 * * SUN) in Europe/Paris, open 3h, cutoff 1h, enabled``."""
    parts = [
        f"{schedule_text(w)} in {w.timezone or 'UTC'}",
        f"open {span(w.duration_seconds)}",
        f"cutoff {span(w.cutoff_seconds)}" + (" (cancel)" if w.cutoff_behavior == "cancel" else ""),
        "enabled" if w.enabled else "disabled",
    ]
    return ", ".join(parts)


def target_text(t: operator_pb2.Target) -> str:
    if t.all:
        return "all hosts"
    if t.hosts:
        return ("host " if len(t.hosts) == 1 else "hosts ") + ",".join(t.hosts)
    return t.selector or "-"


def _clip(text: str, width: int = DETAIL_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def task_details(t: operator_pb2.WindowTask) -> str:
    parts = []
    if t.type == "run":
        what = output.command_line(t.argv) if t.argv else f"(script, {output.size(len(t.script))})"
        parts.append(what + (f" as {t.run_as}" if t.run_as else ""))
    if t.type == "patch-install":
        parts.append(f"reboot {t.reboot or 'if-needed'}")
    if t.timeout_seconds:
        parts.append(f"timeout {span(t.timeout_seconds)}")
    if t.description:
        parts.append(t.description)
    return _clip("; ".join(parts)) or "-"


def print_tasks(tasks: Sequence[operator_pb2.WindowTask], out: Any = None) -> None:
    out = out or sys.stdout
    ordered = sorted(tasks, key=lambda t: (t.priority, t.id))
    rows = [
        [
            str(t.priority),
            t.id,
            t.type,
            target_text(t.target),
            t.max_concurrency or "50",
            t.max_errors or "0",
            t.author or "-",
            task_details(t),
        ]
        for t in ordered
    ]
    headers = ["PRIORITY", "ID", "TYPE", "TARGET", "MAX-CONC", "MAX-ERR", "AUTHOR", "DETAILS"]
    output.table(headers, rows, out)


def counts_text(counts: Any) -> str:
    """``12 success, 1 failed`` (most first), or '-'."""
    items = sorted(((n, state) for state, n in dict(counts).items() if n), key=lambda kv: (-kv[0], kv[1]))
    return ", ".join(f"{n} {state}" for n, state in items) or "-"


def _table_lines(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    buffer = StringIO()
    output.table(headers, rows, buffer)
    return buffer.getvalue().splitlines()


# ---- commands ---------------------------------------------------------------------------------


def _next_run_note(w: operator_pb2.MaintenanceWindow) -> str:
    if not w.enabled:
        return "it does not run until: opsctl window enable " + w.name
    if not _is_set(w.next_run):
        return "no run is scheduled (the schedule has no further occurrence)"
    return "next run " + local_when(w.next_run, display_zone(w.timezone))


def create_window(client: OperatorClient, args: argparse.Namespace) -> int:
    created = client.create_window(creation_window(args))
    if args.output == "json":
        output.as_json(created, sys.stdout)
        return 0
    print(f"created window {created.name or args.name}: {describe(created)}")
    print(_next_run_note(created))
    print(f"add tasks with: opsctl window task add {created.name or args.name} --priority 1 --type ... --target ...")
    return 0


def update_window(client: OperatorClient, args: argparse.Namespace) -> int:
    require_changes(args)  # before any call
    current = client.get_window(args.name).window
    updated = client.update_window(updated_window(current, args))
    if args.output == "json":
        output.as_json(updated, sys.stdout)
        return 0
    print(f"updated window {updated.name or args.name}: {describe(updated)}")
    print(_next_run_note(updated))
    return 0


def list_windows(client: OperatorClient, args: argparse.Namespace) -> int:
    windows = sorted(client.list_windows(), key=lambda w: w.name)
    if args.output == "json":
        output.as_json(windows, sys.stdout)
        return 0
    rows = [
        [
            w.name,
            schedule_text(w),
            w.timezone or "UTC",
            span(w.duration_seconds),
            span(w.cutoff_seconds),
            "yes" if w.enabled else "no",
            local_when(w.next_run, display_zone(w.timezone)),
        ]
        for w in windows
    ]
    output.table(["NAME", "SCHEDULE", "TZ", "DURATION", "CUTOFF", "ENABLED", "NEXT RUN (local)"], rows, sys.stdout)
    if not windows:
        print("(no maintenance windows: create one with opsctl window create NAME --schedule ...)")
    return 0


def show_window(client: OperatorClient, args: argparse.Namespace) -> int:
    detail = client.get_window(args.name)
    if args.output == "json":
        output.as_json(detail, sys.stdout)
        return 0
    w = detail.window
    tz = display_zone(w.timezone)
    next_run = "-"
    if _is_set(w.next_run):
        next_run = f"{local_when(w.next_run, tz)}  ({output.when(w.next_run)}, {output.ago(w.next_run)})"
    lines = [
        ("name", w.name),
        ("description", w.description or "-"),
        ("schedule", w.schedule),
        (
            "offset",
            f"{output.plural(w.offset_days, 'day')} after each match" if w.offset_days else "-",
        ),
        ("time zone", w.timezone or "UTC"),
        ("duration", span(w.duration_seconds)),
        (
            "cutoff",
            f"{span(w.cutoff_seconds)} before the end, then "
            + ("cancel running tasks" if w.cutoff_behavior == "cancel" else "let running tasks finish"),
        ),
        ("start date", local_when(w.start_date, tz, weekday=False)),
        ("end date", local_when(w.end_date, tz, weekday=False)),
        ("enabled", "yes" if w.enabled else "no"),
        ("next run", next_run if w.enabled or _is_set(w.next_run) else "- (disabled)"),
        ("created", f"{output.when(w.created_at)} by {w.created_by or '?'}" if _is_set(w.created_at) else "-"),
    ]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {value}")
    print()
    if detail.tasks:
        print("tasks (lower priorities first; equal priorities run together):")
        print_tasks(detail.tasks)
    else:
        print(f"(no tasks: add one with opsctl window task add {w.name} --priority 1 --type ... --target ...)")
    return 0


def next_runs(client: OperatorClient, args: argparse.Namespace) -> int:
    if args.count < 1:
        raise InvalidInput("-n must be 1 or more", "e.g. -n 10")
    count = _uint32(args.count, "-n")
    if args.name and args.schedule is not None:
        raise InvalidInput(
            "give a window name or --schedule, not both",
            f"opsctl window next {args.name}, or opsctl window next --schedule EXPR for an unsaved schedule",
        )
    tz_name = ""
    if args.name:
        extra = [
            f
            for f, v in (
                ("--timezone", args.timezone),
                ("--start-date", args.start_date),
                ("--end-date", args.end_date),
                ("--offset", args.offset),
            )
            if v is not None
        ]
        if extra:
            raise InvalidInput(
                f"{', '.join(extra)} go with --schedule (an unsaved schedule), not with a saved window",
                f"change the window with opsctl window update {args.name} ..., or drop the name",
            )
        response = client.next_window_runs(name=args.name, count=count)
        title = f"next runs of window {args.name}"
    elif args.schedule is not None:
        window = unsaved_window(args)
        response = client.next_window_runs(window=window, count=count)
        tz_name = window.timezone
        title = f"next runs of {schedule_text(window)} in {window.timezone}"
    else:
        raise InvalidInput(
            "give a window name or --schedule EXPR",
            "opsctl window next NAME, or opsctl window next --schedule 'cron(0 2 * * SUN)' --timezone Europe/Paris",
        )
    if args.output == "json":
        output.as_json(response, sys.stdout)
        return 0
    starts = list(response.starts)
    locals_ = list(response.local_starts)
    if len(locals_) < len(starts) and args.name:
        tz_name = client.get_window(args.name).window.timezone
    tz = display_zone(tz_name)
    rows = []
    for i, start in enumerate(starts):
        local = ""
        if i < len(locals_) and locals_[i]:
            try:
                local = local_text(datetime.fromisoformat(locals_[i]))
            except ValueError:
                local = locals_[i]
        rows.append([local or local_when(start, tz), output.when(start)])
    if not rows:
        print(f"{title}: none (the schedule has no further occurrence)")
        return 0
    print(f"{title}:")
    output.table(["LOCAL", "UTC"], rows, sys.stdout)
    return 0


def window_history(client: OperatorClient, args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise InvalidInput("--limit must be 1 or more", "e.g. --limit 50")
    executions = client.window_history(args.name, limit=_uint32(args.limit, "--limit"))
    if args.output == "json":
        output.as_json(executions, sys.stdout)
        return 0
    if not executions:
        print(f"(window {args.name} has not run yet)")
        return 0
    try:
        tz_name = client.get_window(args.name).window.timezone or "UTC"
    except NotFound:  # a deleted window's history: show UTC
        tz_name = "UTC"
    tz = display_zone(tz_name)
    print(f"window {args.name} (times in {tz_name}):")
    exec_lines = _table_lines(
        ["SCHEDULED", "STATUS", "STARTED", "FINISHED", "REASON"],
        [
            [
                local_when(e.scheduled_at, tz),
                e.status or "-",
                clock(e.started_at, tz),
                clock(e.finished_at, tz),
                e.reason or "-",
            ]
            for e in executions
        ],
    )
    per_execution = [sorted(e.tasks, key=lambda t: t.priority) for e in executions]
    task_lines = _table_lines(
        ["PRIORITY", "TYPE", "STATUS", "AUTHOR", "COMMAND", "COUNTS", "REASON"],
        [
            [
                str(t.priority),
                t.type,
                t.status or "-",
                t.author or "-",
                t.command_id or "-",
                counts_text(t.counts),
                t.reason or "-",
            ]
            for tasks in per_execution
            for t in tasks
        ],
    )
    print(exec_lines[0])
    next_task = 1
    for line, tasks in zip(exec_lines[1:], per_execution, strict=True):
        print(line)
        if not tasks:
            continue
        print("    " + task_lines[0])
        for task_line, t in zip(task_lines[next_task : next_task + len(tasks)], tasks, strict=True):
            print("    " + task_line)
            if t.refused_hosts:  # every one, not only the first few the reason names
                who = t.author or "its author"
                print(f"        refused, outside {who}'s rights (sent nothing): {', '.join(t.refused_hosts)}")
        next_task += len(tasks)
    return 0


def enable_window(client: OperatorClient, args: argparse.Namespace) -> int:
    return _set_enabled(client, args, True)


def disable_window(client: OperatorClient, args: argparse.Namespace) -> int:
    return _set_enabled(client, args, False)


def _set_enabled(client: OperatorClient, args: argparse.Namespace, enabled: bool) -> int:
    w = client.set_window_enabled(args.name, enabled)
    if args.output == "json":
        output.as_json(w, sys.stdout)
        return 0
    if enabled:
        print(f"enabled window {w.name or args.name}; {_next_run_note(w)}")
    else:
        print(
            f"disabled window {w.name or args.name}: it does not run until opsctl window enable {w.name or args.name}"
        )
    return 0


def delete_window(client: OperatorClient, args: argparse.Namespace) -> int:
    client.delete_window(args.name)
    print(f"deleted window {args.name} and its tasks")
    return 0


def add_task(client: OperatorClient, args: argparse.Namespace) -> int:
    task = client.add_window_task(task_request(args))
    if args.output == "json":
        output.as_json(task, sys.stdout)
        return 0
    print(
        f"added task {task.id or '?'} to window {task.window or args.window}: priority {task.priority} "
        f"{task.type} on {target_text(task.target)}; it acts for {task.author or 'you'} "
        "(their rights are checked again at each run)"
    )
    return 0


def list_tasks(client: OperatorClient, args: argparse.Namespace) -> int:
    detail = client.get_window(args.window)
    tasks = sorted(detail.tasks, key=lambda t: (t.priority, t.id))
    if args.output == "json":
        output.as_json(tasks, sys.stdout)
        return 0
    print_tasks(tasks)
    if not tasks:
        print(f"(no tasks: add one with opsctl window task add {args.window} --priority 1 --type ... --target ...)")
    return 0


def remove_task(client: OperatorClient, args: argparse.Namespace) -> int:
    client.remove_window_task(args.window, args.task_id)
    print(f"removed task {args.task_id} from window {args.window}")
    return 0
