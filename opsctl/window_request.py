"""``opsctl window``'s flags as requests: the MaintenanceWindow and WindowTask messages it sends.

Each value is checked here, before anything is sent, with the message and hint the operator needs
(the controller checks everything again: it never trusts a client). What a shared type already
checks is checked by it: selectors (:class:`~fleetops.common.selectors.Selector`), durations
(:func:`~fleetops.common.durations.parse_duration`), rate limits (:mod:`fleetops.common.rates`).
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, date, datetime, time, tzinfo

from google.protobuf.timestamp_pb2 import Timestamp

from fleetops.common.durations import parse_duration
from fleetops.common.errors import InvalidInput
from fleetops.common.selectors import Selector
from fleetops.opsctl import command, output
from fleetops.opsctl.operation_request import check_target, rate_limits
from fleetops.opsctl.patch_request import REBOOT_CHOICES
from fleetops.v1 import operator_pb2

CUTOFF_BEHAVIORS = ("continue", "cancel")
TASK_TYPES = ("patch-scan", "patch-install", "run", "document", "automation")
DEFAULT_TIMEZONE = "UTC"
UINT32_MAX = 2**32 - 1
SCHEDULE_RE = re.compile(r"(cron|rate|at)\(\s*\S.*\)", re.DOTALL)
SCHEDULE_FORMS = "cron(0 2 * * SUN), rate(30 minutes) or at(2026-12-24T22:00)"
SCHEDULE_HINT = "use " + SCHEDULE_FORMS
DATE_HINT = "use an ISO 8601 date or date-time: 2026-03-01, 2026-03-01T08:00 (in --timezone) or 2026-03-01T08:00+01:00"


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


def canonical_timezone(name: str) -> str:
    name = name.strip()
    if not name or name.upper() == "UTC":
        return "UTC"
    zone(name)
    return name


def uint32(value: int, flag: str) -> int:
    """*value* if it fits the proto's uint32 field; InvalidInput naming *flag* otherwise."""
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
    return uint32(value, flag)


def offset_days(text: str) -> int:
    """``--offset``: days as a number (``2``) or a duration of whole days (``2d``, ``48h``, ``1w``)."""
    t = text.strip()
    if t.isdigit():
        return uint32(int(t), "--offset")
    total = parse_duration(t).total_seconds()
    if total % 86400:
        raise InvalidInput(
            f"--offset {text} is not a whole number of days",
            "the offset counts days after each cron match, e.g. --offset 2d (or --offset 2)",
        )
    return uint32(int(total // 86400), "--offset")


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
    if output.is_set(w.start_date) and output.is_set(w.end_date) and w.end_date.ToSeconds() <= w.start_date.ToSeconds():
        raise InvalidInput("--end-date is not after --start-date", "give an end date later than the start date")
    if not saved:
        return
    if w.cutoff_behavior not in ("", *CUTOFF_BEHAVIORS):
        raise InvalidInput(f"bad cutoff behavior {w.cutoff_behavior!r}", "use --cutoff-behavior continue or cancel")
    if w.duration_seconds <= 0:
        raise InvalidInput("--duration must be positive", "e.g. --duration 3h")
    if w.cutoff_seconds >= w.duration_seconds:
        raise InvalidInput(
            f"the cutoff ({output.duration(w.cutoff_seconds)}) is not shorter than the duration "
            f"({output.duration(w.duration_seconds)}): no task could ever start",
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


def task_request(args: argparse.Namespace) -> operator_pb2.WindowTask:
    """The WindowTask ``window task add`` sends, checked."""
    kind = args.task_type
    if kind == "automation":
        if args.target or args.host or args.all:
            raise InvalidInput(
                "an automation task has no target: the runbook's steps name theirs",
                "pass hosts to the runbook as a parameter, e.g. --param target=role=web",
            )
    else:
        check_target(args)
    if args.target:
        Selector.parse(args.target)  # a bad selector is reported here, with a pointer to the bad character
    if args.priority < 0:
        raise InvalidInput("--priority must be 0 or more", "lower priorities run first; equal ones run together")
    if kind not in TASK_TYPES:
        raise InvalidInput(f"bad --type {kind!r}", f"use --type {', '.join(TASK_TYPES)}")
    argv = list(args.argv or [])
    script = b""
    documented = kind in ("document", "automation")
    if documented != bool(args.doc):
        raise InvalidInput(
            "--doc NAME[:VERSION] goes with --type document or automation, and they need it",
            f"opsctl window task add {args.window} --priority {args.priority} --type document --doc NAME "
            "--param K=V --target SEL",
        )
    if args.param and not documented:
        raise InvalidInput("--param goes with --doc", "use --type document --doc NAME --param K=V")
    if documented:
        if argv or args.script:
            raise InvalidInput(f"a {kind} task runs its document, not a command", "drop the command and --script")
        if kind == "automation" and args.run_as:
            raise InvalidInput("--as does not go with an automation task", "its steps run as the agent does")
    elif kind == "run":
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
    max_concurrency, max_errors = rate_limits(args)
    return operator_pb2.WindowTask(
        window=args.window,
        priority=uint32(args.priority, "--priority"),
        type=kind,
        target=operator_pb2.Target(selector=args.target, hosts=args.host, all=args.all),
        max_concurrency=max_concurrency,
        max_errors=max_errors,
        reboot=reboot,
        argv=argv,
        script=script,
        run_as=args.run_as,
        timeout_seconds=command.positive_seconds(args.timeout, "--timeout") if args.timeout else 0,
        description=args.description,
        document=args.doc or "",
        parameters=command.key_values(args.param, "--param"),
    )


def next_runs_query(args: argparse.Namespace) -> tuple[str, operator_pb2.MaintenanceWindow | None, int]:
    """``window next``'s question: ``(name, None, count)`` for a saved window, ``("", window, count)`` for
    an unsaved ``--schedule``.

    Raises:
        InvalidInput: a bad count, both or neither of NAME and --schedule, or --schedule's flags with NAME.
    """
    if args.count < 1:
        raise InvalidInput("-n must be 1 or more", "e.g. -n 10")
    count = uint32(args.count, "-n")
    if args.name and args.schedule is not None:
        raise InvalidInput(
            "give a window name or --schedule, not both",
            f"opsctl window next {args.name}, or opsctl window next --schedule EXPR for an unsaved schedule",
        )
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
        return args.name, None, count
    if args.schedule is not None:
        return "", unsaved_window(args), count
    raise InvalidInput(
        "give a window name or --schedule EXPR",
        "opsctl window next NAME, or opsctl window next --schedule 'cron(0 2 * * SUN)' --timezone Europe/Paris",
    )


def history_limit(args: argparse.Namespace) -> int:
    """``window history --limit``, checked."""
    if args.limit < 1:
        raise InvalidInput("--limit must be 1 or more", "e.g. --limit 50")
    return uint32(args.limit, "--limit")
