"""``opsctl window``'s text output: windows, tasks, next runs and history for people.

Times are shown in the window's time zone with the zone's offset, so a run around a DST change is
unambiguous; ``-o json`` (:func:`fleetops.opsctl.output.emit`) never comes here.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from io import StringIO
from typing import Any, TextIO

from google.protobuf.timestamp_pb2 import Timestamp

from fleetops.common import rates
from fleetops.common.errors import InvalidInput
from fleetops.opsctl import output
from fleetops.opsctl.window_request import zone
from fleetops.v1 import operator_pb2

DETAIL_WIDTH = 60
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


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
    if not output.is_set(ts):
        return "-"
    return local_text(ts.ToDatetime(tzinfo=UTC).astimezone(tz), weekday=weekday)


def clock(ts: Timestamp, tz: tzinfo) -> str:
    """``2026-03-29 02:00:03`` in *tz*, or '-'."""
    if not output.is_set(ts):
        return "-"
    return ts.ToDatetime(tzinfo=UTC).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def schedule_text(w: operator_pb2.MaintenanceWindow) -> str:
    return w.schedule + (f" +{w.offset_days}d" if w.offset_days else "")


def describe(w: operator_pb2.MaintenanceWindow) -> str:
    """``cron(0 2 * * SUN) in Europe/Paris, open 3h, cutoff 1h, enabled``."""
    parts = [
        f"{schedule_text(w)} in {w.timezone or 'UTC'}",
        f"open {output.duration(w.duration_seconds)}",
        f"cutoff {output.duration(w.cutoff_seconds)}" + (" (cancel)" if w.cutoff_behavior == "cancel" else ""),
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
    if t.document:
        params = " ".join(f"{k}={v}" for k, v in sorted(t.parameters.items()))
        parts.append(f"doc {t.document}" + (f" {params}" if params else "") + (f" as {t.run_as}" if t.run_as else ""))
    if t.timeout_seconds:
        parts.append(f"timeout {output.duration(t.timeout_seconds)}")
    if t.description:
        parts.append(t.description)
    return _clip("; ".join(parts)) or "-"


def print_tasks(tasks: Sequence[operator_pb2.WindowTask], out: TextIO | None = None) -> None:
    """The task table, lower priorities first."""
    out = out or sys.stdout
    ordered = sorted(tasks, key=lambda t: (t.priority, t.id))
    rows = [
        [
            str(t.priority),
            t.id,
            t.type,
            target_text(t.target),
            t.max_concurrency or rates.DEFAULT_MAX_CONCURRENCY,
            t.max_errors or rates.DEFAULT_MAX_ERRORS,
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


def table_lines(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    buffer = StringIO()
    output.table(headers, rows, buffer)
    return buffer.getvalue().splitlines()


def next_run_note(w: operator_pb2.MaintenanceWindow) -> str:
    """``next run ...``, or why there is none (disabled, no further occurrence)."""
    if not w.enabled:
        return "it does not run until: opsctl window enable " + w.name
    if not output.is_set(w.next_run):
        return "no run is scheduled (the schedule has no further occurrence)"
    return "next run " + local_when(w.next_run, display_zone(w.timezone))


def display_zone(name: str) -> tzinfo:
    """*name*'s tzinfo for showing times; UTC when this system cannot resolve it (times still carry their offset)."""
    try:
        return zone(name)
    except InvalidInput:
        return UTC


# ---- one command's text output each -----------------------------------------------------------


def print_saved(verb: str, w: operator_pb2.MaintenanceWindow, name: str, out: TextIO | None = None) -> None:
    """After ``window create`` (*verb* ``created``, with how to add tasks) or ``window update`` (``updated``)."""
    out = out or sys.stdout
    print(f"{verb} window {w.name or name}: {describe(w)}", file=out)
    print(next_run_note(w), file=out)
    if verb == "created":
        print(f"add tasks with: opsctl window task add {w.name or name} --priority 1 --type ... --target ...", file=out)


def print_windows(windows: Sequence[operator_pb2.MaintenanceWindow], out: TextIO | None = None) -> None:
    """``window list``: one row per window (in the order given) with its next run in its zone."""
    out = out or sys.stdout
    rows = [
        [
            w.name,
            schedule_text(w),
            w.timezone or "UTC",
            output.duration(w.duration_seconds),
            output.duration(w.cutoff_seconds),
            "yes" if w.enabled else "no",
            local_when(w.next_run, display_zone(w.timezone)),
        ]
        for w in windows
    ]
    output.table(["NAME", "SCHEDULE", "TZ", "DURATION", "CUTOFF", "ENABLED", "NEXT RUN (local)"], rows, out)
    if not windows:
        print("(no maintenance windows: create one with opsctl window create NAME --schedule ...)", file=out)


def print_window(detail: operator_pb2.WindowDetail, out: TextIO | None = None) -> None:
    """``window show``: the window's fields, then its tasks."""
    out = out or sys.stdout
    w = detail.window
    tz = display_zone(w.timezone)
    next_run = "-"
    if output.is_set(w.next_run):
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
        ("duration", output.duration(w.duration_seconds)),
        (
            "cutoff",
            f"{output.duration(w.cutoff_seconds)} before the end, then "
            + ("cancel running tasks" if w.cutoff_behavior == "cancel" else "let running tasks finish"),
        ),
        ("start date", local_when(w.start_date, tz, weekday=False)),
        ("end date", local_when(w.end_date, tz, weekday=False)),
        ("enabled", "yes" if w.enabled else "no"),
        ("next run", next_run if w.enabled or output.is_set(w.next_run) else "- (disabled)"),
        ("created", f"{output.when(w.created_at)} by {w.created_by or '?'}" if output.is_set(w.created_at) else "-"),
    ]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {value}", file=out)
    print(file=out)
    if detail.tasks:
        print("tasks (lower priorities first; equal priorities run together):", file=out)
        print_tasks(detail.tasks, out)
    else:
        print(
            f"(no tasks: add one with opsctl window task add {w.name} --priority 1 --type ... --target ...)", file=out
        )


def print_next_runs(
    title: str, response: operator_pb2.NextWindowRunsResponse, tz: tzinfo, out: TextIO | None = None
) -> None:
    """``window next``: each start in the window's zone (as the controller computed it, else in *tz*) and in UTC."""
    out = out or sys.stdout
    starts = list(response.starts)
    locals_ = list(response.local_starts)
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
        print(f"{title}: none (the schedule has no further occurrence)", file=out)
        return
    print(f"{title}:", file=out)
    output.table(["LOCAL", "UTC"], rows, out)


def print_history(
    name: str,
    executions: Sequence[operator_pb2.WindowExecution],
    tz_name: str,
    out: TextIO | None = None,
) -> None:
    """``window history``: each execution, its tasks indented under it, times in zone *tz_name*."""
    out = out or sys.stdout
    if not executions:
        print(f"(window {name} has not run yet)", file=out)
        return
    tz = display_zone(tz_name)
    print(f"window {name} (times in {tz_name}):", file=out)
    exec_lines = table_lines(
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
    task_lines = table_lines(
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
    print(exec_lines[0], file=out)
    next_task = 1
    for line, tasks in zip(exec_lines[1:], per_execution, strict=True):
        print(line, file=out)
        if not tasks:
            continue
        print("    " + task_lines[0], file=out)
        for task_line, t in zip(task_lines[next_task : next_task + len(tasks)], tasks, strict=True):
            print("    " + task_line, file=out)
            if t.refused_hosts:  # every one, not only the first few the reason names
                who = t.author or "its author"
                print(f"        refused, outside {who}'s rights (sent nothing): {', '.join(t.refused_hosts)}", file=out)
        next_task += len(tasks)


def print_enabled(w: operator_pb2.MaintenanceWindow, name: str, enabled: bool, out: TextIO | None = None) -> None:
    """After ``window enable`` / ``window disable``."""
    out = out or sys.stdout
    if enabled:
        print(f"enabled window {w.name or name}; {next_run_note(w)}", file=out)
    else:
        print(
            f"disabled window {w.name or name}: it does not run until opsctl window enable {w.name or name}", file=out
        )


def print_task_added(task: operator_pb2.WindowTask, window: str, out: TextIO | None = None) -> None:
    """After ``window task add``: what it runs on and whose rights it acts with."""
    print(
        f"added task {task.id or '?'} to window {task.window or window}: priority {task.priority} "
        f"{task.type} on {target_text(task.target)}; it acts for {task.author or 'you'} "
        "(their rights are checked again at each run)",
        file=out or sys.stdout,
    )


def print_task_list(tasks: Sequence[operator_pb2.WindowTask], window: str, out: TextIO | None = None) -> None:
    """``window task list``: the task table, or how to add the first task."""
    out = out or sys.stdout
    print_tasks(tasks, out)
    if not tasks:
        print(
            f"(no tasks: add one with opsctl window task add {window} --priority 1 --type ... --target ...)", file=out
        )
