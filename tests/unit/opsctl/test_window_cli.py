"""``opsctl window``: the command line, the requests it builds, its checks, and its rendering on a fake client."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from fleetops.common.errors import InvalidInput, NotFound, SelectorError
from fleetops.opsctl import cli, window, window_request
from fleetops.opsctl.cli import build_parser
from fleetops.opsctl.client import OperatorClient
from fleetops.v1 import operator_pb2 as pb


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def ts(*parts: int) -> Timestamp:
    """A Timestamp at the UTC date-time *parts* (year, month, day[, hour, minute, second])."""
    stamp = Timestamp()
    stamp.FromDatetime(datetime(*parts, tzinfo=UTC))  # type: ignore[misc]
    return stamp


def iso(stamp: Timestamp) -> str:
    return stamp.ToJsonString()


# -- fakes -----------------------------------------------------------------------------------------


def saved_window(**fields: Any) -> pb.MaintenanceWindow:
    base: dict[str, Any] = dict(
        name="sunday-patch",
        schedule="cron(0 2 * * SUN)",
        timezone="Europe/Paris",
        duration_seconds=3 * 3600,
        cutoff_seconds=3600,
        cutoff_behavior="continue",
        offset_days=0,
        enabled=True,
        description="weekly patching",
        start_date=ts(2026, 2, 28, 23),
        created_at=ts(2026, 1, 10, 9),
        created_by="alice",
        next_run=ts(2026, 4, 5, 0),  # 02:00 in Paris, summer time
    )
    base.update(fields)
    return pb.MaintenanceWindow(**base)


TASKS = [
    pb.WindowTask(
        window="sunday-patch",
        id="t-2",
        priority=2,
        type="run",
        target=pb.Target(selector="role=web"),
        argv=["systemctl", "restart", "app server"],
        run_as="deploy",
        timeout_seconds=600,
        author="operator:alice",
    ),
    pb.WindowTask(
        window="sunday-patch",
        id="t-1",
        priority=1,
        type="patch-install",
        target=pb.Target(selector="env=prod"),
        max_concurrency="10%",
        max_errors="1",
        reboot="never",
        author="operator:bob",
    ),
    pb.WindowTask(window="sunday-patch", id="t-3", priority=2, type="patch-scan", target=pb.Target(all=True)),
]

HISTORY = [
    pb.WindowExecution(
        id="e-2",
        window="sunday-patch",
        scheduled_at=ts(2026, 3, 22, 1),  # 02:00 in Paris, winter time
        status="failed",
        reason="task t-1 exceeded max errors",
        started_at=ts(2026, 3, 22, 1, 0, 2),
        finished_at=ts(2026, 3, 22, 2, 41, 7),
        tasks=[
            pb.WindowTaskExecution(
                task_id="t-2",
                type="run",
                priority=2,
                status="skipped",
                reason="an earlier priority failed",
            ),
            pb.WindowTaskExecution(
                task_id="t-1",
                type="patch-install",
                priority=1,
                status="failed",
                command_id="c-77",
                counts={"success": 12, "failed": 2, "not_started": 0},
                reason="2 hosts failed (max errors 1)",
                author="operator:bob",
                refused_hosts=["pay-1", "pay-2"],
            ),
        ],
    ),
    pb.WindowExecution(
        id="e-1",
        window="sunday-patch",
        scheduled_at=ts(2026, 3, 15, 1),
        status="missed",
        reason="no controller was running at the scheduled time",
    ),
]


class FakeClient:
    def __init__(
        self,
        current: pb.MaintenanceWindow | None = None,
        *,
        tasks: list[pb.WindowTask] | None = None,
        local_starts: bool = True,
        window_gone: bool = False,
    ) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.current = current or saved_window()
        self.tasks = TASKS if tasks is None else tasks
        self.local_starts = local_starts
        self.window_gone = window_gone

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def create_window(self, w: pb.MaintenanceWindow) -> pb.MaintenanceWindow:
        self.calls.append(("create", w))
        created = pb.MaintenanceWindow()
        created.CopyFrom(w)
        created.created_by = "alice"
        created.next_run.CopyFrom(ts(2026, 4, 5, 0))
        return created

    def update_window(self, w: pb.MaintenanceWindow) -> pb.MaintenanceWindow:
        self.calls.append(("update", w))
        return w

    def list_windows(self) -> list[pb.MaintenanceWindow]:
        self.calls.append(("list", None))
        return [
            saved_window(name="zz-weekly-db", schedule="rate(7 days)", timezone="", enabled=False, next_run=None),
            saved_window(schedule="cron(0 2 ? * SUN#2)", offset_days=2, duration_seconds=5400),
        ]

    def get_window(self, name: str) -> pb.WindowDetail:
        self.calls.append(("get", name))
        if self.window_gone:
            raise NotFound(f"no window {name}")
        return pb.WindowDetail(window=self.current, tasks=self.tasks)

    def delete_window(self, name: str) -> None:
        self.calls.append(("delete", name))

    def set_window_enabled(self, name: str, enabled: bool) -> pb.MaintenanceWindow:
        self.calls.append(("set_enabled", (name, enabled)))
        return saved_window(name=name, enabled=enabled)

    def next_window_runs(
        self, *, name: str = "", window: pb.MaintenanceWindow | None = None, count: int = 0
    ) -> pb.NextWindowRunsResponse:
        self.calls.append(("next", {"name": name, "window": window, "count": count}))
        starts = [ts(2026, 3, 22, 1), ts(2026, 4, 5, 0), ts(2026, 4, 12, 0, 0, 30)][: count or 5]
        local = ["2026-03-22T02:00:00+01:00", "2026-04-05T02:00:00+02:00", "2026-04-12T02:00:30+02:00"][: count or 5]
        return pb.NextWindowRunsResponse(starts=starts, local_starts=local if self.local_starts else [])

    def add_window_task(self, task: pb.WindowTask) -> pb.WindowTask:
        self.calls.append(("add_task", task))
        added = pb.WindowTask()
        added.CopyFrom(task)
        added.id = "t-9"
        return added

    def remove_window_task(self, window_name: str, task_id: str) -> None:
        self.calls.append(("remove_task", (window_name, task_id)))

    def window_history(self, name: str, limit: int = 0) -> list[pb.WindowExecution]:
        self.calls.append(("history", (name, limit)))
        return HISTORY


def run(client: FakeClient, *argv: str) -> int:
    args = parse(*argv)
    return int(args.func(client, args))


def call(client: FakeClient, kind: str) -> Any:
    found = [arg for k, arg in client.calls if k == kind]
    assert len(found) == 1, client.calls
    return found[0]


CREATE = ("window", "create", "sunday-patch", "--schedule", "cron(0 2 * * SUN)", "--duration", "3h", "--cutoff", "1h")
PARIS = ("--timezone", "Europe/Paris")


# -- argv ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "func"),
    [
        (list(CREATE), window.create_window),
        (["window", "update", "w", "--cutoff", "30m"], window.update_window),
        (["window", "list", "-o", "json"], window.list_windows),
        (["window", "show", "w"], window.show_window),
        (["window", "next", "w", "-n", "3"], window.next_runs),
        (["window", "next", "--schedule", "rate(1 day)"], window.next_runs),
        (["window", "history", "w", "--limit", "5"], window.window_history),
        (["window", "enable", "w"], window.enable_window),
        (["window", "disable", "w"], window.disable_window),
        (["window", "delete", "w"], window.delete_window),
        (["window", "task", "add", "w", "--priority", "1", "--type", "patch-scan", "--all"], window.add_task),
        (["window", "task", "list", "w"], window.list_tasks),
        (["window", "task", "remove", "w", "t-1"], window.remove_task),
    ],
)
def test_subcommands(argv: list[str], func: Any) -> None:
    assert parse(*argv).func is func


def test_task_add_takes_the_command_after_dashes() -> None:
    args = parse(
        "window", "task", "add", "sunday-patch", "--priority", "2", "--type", "run", "--target", "role=web",
        "--", "systemctl", "restart", "app", "--now", "--", "-x",
    )  # fmt: skip
    assert (args.window, args.priority, args.task_type, args.target) == ("sunday-patch", 2, "run", "role=web")
    assert args.argv == ["systemctl", "restart", "app", "--now", "--", "-x"]


def test_task_add_options_after_the_window() -> None:
    args = parse(
        "window", "task", "add", "sunday-patch", "--priority", "1", "--type", "patch-install", "-t", "env=prod",
        "--max-concurrency", "10%", "--max-errors", "1", "--reboot", "never", "--timeout", "2h",
    )  # fmt: skip
    assert (args.max_concurrency, args.max_errors, args.reboot, args.timeout) == ("10%", "1", "never", "2h")
    assert args.argv == []


def test_a_command_without_dashes_is_a_usage_error_that_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse("window", "task", "add", "w", "--priority", "1", "--type", "run", "--all", "systemctl", "restart")
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: systemctl restart" in err
    assert "goes after --" in err


def test_dashes_elsewhere_are_left_alone() -> None:
    assert parse("window", "task", "remove", "w", "t-1").task_id == "t-1"
    assert parse("run", "--all", "--", "uptime").argv == ["uptime"]


def test_create_needs_schedule_duration_and_cutoff(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("window", "create", "w", "--schedule", "rate(1 day)", "--duration", "3h")
    assert "--cutoff" in capsys.readouterr().err


def test_a_bad_cutoff_behavior_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(*CREATE, "--cutoff-behavior", "stop")
    assert "continue" in capsys.readouterr().err
    args = parse(*CREATE)
    args.cutoff_behavior = "stop"  # past argparse (e.g. a caller building the namespace)
    with pytest.raises(InvalidInput, match="cutoff-behavior") as exc:
        window_request.creation_window(args)
    assert "cancel" in exc.value.hint


def test_update_enabled_and_disabled_exclude_each_other() -> None:
    assert parse("window", "update", "w", "--enabled").enabled is True
    assert parse("window", "update", "w", "--disabled").enabled is False
    assert parse("window", "update", "w", "--cutoff", "1h").enabled is None
    with pytest.raises(SystemExit):
        parse("window", "update", "w", "--enabled", "--disabled")


# -- create ----------------------------------------------------------------------------------------


def test_create_sends_seconds_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    assert run(client, *CREATE, "--description", "weekly") == 0
    w = call(client, "create")
    assert (w.name, w.schedule, w.timezone) == ("sunday-patch", "cron(0 2 * * SUN)", "UTC")
    assert (w.duration_seconds, w.cutoff_seconds, w.cutoff_behavior) == (10800, 3600, "continue")
    assert (w.enabled, w.description, w.offset_days) == (True, "weekly", 0)
    assert not w.HasField("start_date") and not w.HasField("end_date")
    out = capsys.readouterr().out
    assert "created window sunday-patch: cron(0 2 * * SUN) in UTC, open 3h, cutoff 1h, enabled" in out
    assert "window task add sunday-patch" in out


def test_create_disabled_with_cancel_and_a_composite_duration() -> None:
    client = FakeClient()
    run(client, *CREATE[:-4], "--duration", "1h30m", "--cutoff", "0", "--cutoff-behavior", "cancel", "--disabled")
    w = call(client, "create")
    assert (w.duration_seconds, w.cutoff_seconds, w.cutoff_behavior, w.enabled) == (5400, 0, "cancel", False)


@pytest.mark.parametrize(
    ("flags", "start", "end"),
    [
        # a date alone: the start of that day (start) or its last second (end), in --timezone
        (("--start-date", "2026-03-01", "--end-date", "2026-12-31"), "2026-02-28T23:00:00Z", "2026-12-31T22:59:59Z"),
        # a date-time without an offset is in --timezone (summer time: +02:00)
        (("--start-date", "2026-07-01T02:00",), "2026-07-01T00:00:00Z", None),
        (("--start-date", "2026-07-01 02:00",), "2026-07-01T00:00:00Z", None),
        # with an offset or Z it is that instant, whatever the time zone
        (("--start-date", "2026-07-01T02:00+05:00",), "2026-06-30T21:00:00Z", None),
        (("--end-date", "2026-07-01T02:00Z",), None, "2026-07-01T02:00:00Z"),
    ],
)  # fmt: skip
def test_dates_are_read_in_the_window_time_zone(flags: tuple[str, ...], start: str | None, end: str | None) -> None:
    client = FakeClient()
    run(client, *CREATE, *PARIS, *flags)
    w = call(client, "create")
    assert (iso(w.start_date) if w.HasField("start_date") else None) == start
    assert (iso(w.end_date) if w.HasField("end_date") else None) == end


def test_dates_without_a_time_zone_are_utc() -> None:
    client = FakeClient()
    run(client, *CREATE, "--start-date", "2026-03-01")
    assert iso(call(client, "create").start_date) == "2026-03-01T00:00:00Z"


@pytest.mark.parametrize("bad", ["next tuesday", "2026-13-01", "2026-02-30T10:00", "01/03/2026"])
def test_a_bad_date_is_invalid_input_with_a_hint(bad: str) -> None:
    client = FakeClient()
    with pytest.raises(InvalidInput, match="bad --start-date") as exc:
        run(client, *CREATE, "--start-date", bad)
    assert "ISO 8601" in exc.value.hint
    assert client.calls == []


def test_an_end_date_before_the_start_date_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not after"):
        run(FakeClient(), *CREATE, "--start-date", "2026-06-01", "--end-date", "2026-05-31")


@pytest.mark.parametrize(("text", "days"), [("2d", 2), ("2", 2), ("48h", 2), ("1w", 7), ("0", 0), ("1d24h", 2)])
def test_offsets_in_days(text: str, days: int) -> None:
    client = FakeClient()
    run(client, *CREATE, "--offset", text)
    assert call(client, "create").offset_days == days


@pytest.mark.parametrize("text", ["36h", "1d1m", "90s"])
def test_an_offset_of_part_of_a_day_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="whole number of days") as exc:
        run(FakeClient(), *CREATE, "--offset", text)
    assert "--offset 2d" in exc.value.hint


def test_a_bad_offset_is_a_bad_duration() -> None:
    with pytest.raises(InvalidInput, match="bad duration"):
        run(FakeClient(), *CREATE, "--offset", "two days")


def test_an_offset_needs_a_cron_schedule() -> None:
    args = ("window", "create", "w", "--schedule", "rate(7 days)", "--duration", "3h", "--cutoff", "1h")
    with pytest.raises(InvalidInput, match="cron"):
        run(FakeClient(), *args, "--offset", "2d")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--cutoff", "3h"), "not shorter than the duration"),
        (("--cutoff", "4h"), "not shorter than the duration"),
        (("--duration", "0s"), "--duration must be positive"),
        (("--duration", "3 hours"), "bad duration"),
        (("--timezone", "Europe/Pariss"), "unknown time zone"),
        (("--timezone", "../etc/passwd"), "unknown time zone"),
        (("--schedule", "every sunday"), "bad schedule"),
        (("--schedule", "cron()"), "bad schedule"),
    ],
)
def test_invalid_windows_are_refused_before_sending(flags: tuple[str, ...], message: str) -> None:
    client = FakeClient()
    with pytest.raises(InvalidInput, match=message) as exc:
        run(client, *CREATE, *flags)
    assert exc.value.hint
    assert client.calls == []


def test_utc_in_any_case_is_utc() -> None:
    client = FakeClient()
    run(client, *CREATE, "--timezone", "utc")
    assert call(client, "create").timezone == "UTC"


# -- update ----------------------------------------------------------------------------------------


def test_update_merges_the_flags_into_the_current_window(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient(saved_window(offset_days=2, cutoff_behavior="cancel"))
    run(client, "window", "update", "sunday-patch", "--cutoff", "30m", "--end-date", "2026-12-31")
    assert [k for k, _ in client.calls] == ["get", "update"]
    w = call(client, "update")
    assert (w.name, w.schedule, w.timezone) == ("sunday-patch", "cron(0 2 * * SUN)", "Europe/Paris")
    assert (w.duration_seconds, w.cutoff_seconds, w.cutoff_behavior) == (10800, 1800, "cancel")
    assert (w.enabled, w.offset_days, w.description) == (True, 2, "weekly patching")
    assert iso(w.start_date) == "2026-02-28T23:00:00Z"  # kept
    assert iso(w.end_date) == "2026-12-31T22:59:59Z"  # in the window's time zone
    # what the controller computes or records is not sent back
    assert not w.HasField("next_run") and not w.HasField("created_at") and w.created_by == ""
    assert "updated window sunday-patch" in capsys.readouterr().out


def test_update_reads_dates_in_the_new_time_zone() -> None:
    client = FakeClient()
    run(client, "window", "update", "sunday-patch", "--timezone", "America/New_York", "--start-date", "2026-07-01")
    w = call(client, "update")
    assert (w.timezone, iso(w.start_date)) == ("America/New_York", "2026-07-01T04:00:00Z")


def test_update_removes_a_date_and_the_offset() -> None:
    client = FakeClient(saved_window(offset_days=2))
    run(client, "window", "update", "sunday-patch", "--start-date", "none", "--offset", "0")
    w = call(client, "update")
    assert not w.HasField("start_date")
    assert w.offset_days == 0


def test_update_disables_and_keeps_the_rest() -> None:
    client = FakeClient()
    run(client, "window", "update", "sunday-patch", "--disabled")
    w = call(client, "update")
    assert (w.enabled, w.duration_seconds, w.schedule) == (False, 10800, "cron(0 2 * * SUN)")


def test_update_without_flags_changes_nothing() -> None:
    client = FakeClient()
    with pytest.raises(InvalidInput, match="nothing to change"):
        run(client, "window", "update", "sunday-patch")
    assert client.calls == []


def test_update_checks_the_merged_window() -> None:
    client = FakeClient(saved_window(offset_days=2))
    with pytest.raises(InvalidInput, match="cron") as exc:
        run(client, "window", "update", "sunday-patch", "--schedule", "rate(1 day)")
    assert "--offset 0" in exc.value.hint
    with pytest.raises(InvalidInput, match="not shorter"):
        run(client, "window", "update", "sunday-patch", "--duration", "1h")  # the cutoff is 1h
    assert [k for k, _ in client.calls] == ["get", "get"]


# -- tasks -----------------------------------------------------------------------------------------


TASK = ("window", "task", "add", "sunday-patch", "--priority", "1")


def test_a_patch_install_task(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    run(
        client,
        *TASK,
        "--type",
        "patch-install",
        "--target",
        "env=prod",
        "--max-concurrency",
        "10%",
        "--max-errors",
        "1",
    )
    t = call(client, "add_task")
    assert (t.window, t.priority, t.type, t.target.selector) == ("sunday-patch", 1, "patch-install", "env=prod")
    assert (t.max_concurrency, t.max_errors, t.reboot, t.timeout_seconds) == ("10%", "1", "if-needed", 0)
    assert list(t.argv) == [] and t.script == b""
    out = capsys.readouterr().out
    assert "added task t-9 to window sunday-patch: priority 1 patch-install on env=prod" in out


def test_a_run_task_with_a_command() -> None:
    client = FakeClient()
    run(
        client, "window", "task", "add", "sunday-patch", "--priority", "2", "--type", "run", "--host", "web-1",
        "--host", "web-2", "--as", "deploy", "--timeout", "10m", "--description", "restart",
        "--", "systemctl", "restart", "app",
    )  # fmt: skip
    t = call(client, "add_task")
    assert (t.type, list(t.argv), t.run_as, t.timeout_seconds) == (
        "run",
        ["systemctl", "restart", "app"],
        "deploy",
        600,
    )
    assert (list(t.target.hosts), t.target.selector, t.target.all) == (["web-1", "web-2"], "", False)
    assert (t.reboot, t.description) == ("", "restart")


def test_a_run_task_with_a_script(tmp_path: Path) -> None:
    script = tmp_path / "fix.sh"
    script.write_bytes(b"#!/bin/sh\necho fixed\n")
    client = FakeClient()
    run(client, *TASK, "--type", "run", "--all", "--script", str(script))
    t = call(client, "add_task")
    assert (t.script, list(t.argv), t.target.all) == (b"#!/bin/sh\necho fixed\n", [], True)


def test_a_patch_scan_task_with_never_reboot_is_refused() -> None:
    with pytest.raises(InvalidInput, match="--reboot goes with --type patch-install"):
        run(FakeClient(), *TASK, "--type", "patch-scan", "--all", "--reboot", "never")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--type", "run", "--all"), "needs a command after --"),
        (("--type", "run", "--all", "--script", "/etc/hostname", "--", "uptime"), "not both"),
        (("--type", "run", "--all", "--script", "/no/such/file.sh"), "cannot read script"),
        (("--type", "patch-install", "--all", "--", "apt-get", "upgrade"), "not a command"),
        (("--type", "patch-scan", "--all", "--script", "/etc/hostname"), "not a command"),
        (("--type", "run", "--all", "--reboot", "never", "--", "uptime"), "--reboot goes with --type patch-install"),
        (("--type", "patch-install", "--all", "--as", "root"), "--as goes with --type run"),
        (("--type", "patch-scan",), "no target given"),
        (("--type", "patch-scan", "--all", "--target", "env=prod"), "only one of"),
        (("--type", "patch-scan", "--all", "--max-concurrency", "ten"), "bad max-concurrency 'ten'"),
        (("--type", "patch-scan", "--all", "--max-concurrency", "0"), "never run"),
        (("--type", "patch-scan", "--all", "--max-errors", "150%"), "max-errors 150% is out of range"),
        (("--type", "patch-scan", "--all", "--timeout", "0s"), "--timeout must be positive"),
    ],
)  # fmt: skip
def test_invalid_tasks_are_refused_before_sending(flags: tuple[str, ...], message: str) -> None:
    client = FakeClient()
    with pytest.raises(InvalidInput, match=message):
        run(client, *TASK, *flags)
    assert client.calls == []


def test_a_negative_priority_is_refused() -> None:
    with pytest.raises(InvalidInput, match="--priority"):
        run(FakeClient(), "window", "task", "add", "w", "--priority", "-1", "--type", "patch-scan", "--all")


def test_a_bad_selector_points_at_the_problem() -> None:
    with pytest.raises(SelectorError):
        run(FakeClient(), *TASK, "--type", "patch-scan", "--target", "env=prod,(")


def test_task_remove(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    run(client, "window", "task", "remove", "sunday-patch", "t-2")
    assert call(client, "remove_task") == ("sunday-patch", "t-2")
    assert "removed task t-2 from window sunday-patch" in capsys.readouterr().out


def test_task_list_is_ordered_by_priority(capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(), "window", "task", "list", "sunday-patch")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["PRIORITY", "ID", "TYPE", "TARGET", "MAX-CONC", "MAX-ERR", "AUTHOR", "DETAILS"]
    assert [line.split()[1] for line in lines[1:]] == ["t-1", "t-2", "t-3"]
    assert [line.split()[6] for line in lines[1:3]] == ["operator:bob", "operator:alice"]
    assert lines[3].split()[6:8] == ["0", "-"]  # "all hosts" is two words: t-3 has no author


def test_task_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(), "window", "task", "list", "sunday-patch", "-o", "json")
    doc = json.loads(capsys.readouterr().out)
    assert [t["id"] for t in doc] == ["t-1", "t-2", "t-3"]
    assert doc[1]["argv"] == ["systemctl", "restart", "app server"]
    assert [t["author"] for t in doc] == ["operator:bob", "operator:alice", ""]


# -- list and show ---------------------------------------------------------------------------------


def test_list_table(capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(), "window", "list")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("  ")[0] == "NAME"
    for heading in ("SCHEDULE", "TZ", "DURATION", "CUTOFF", "ENABLED", "NEXT RUN (local)"):
        assert heading in lines[0]
    assert lines[1].startswith("sunday-patch")  # sorted by name
    assert "cron(0 2 ? * SUN#2) +2d" in lines[1]
    assert "Europe/Paris" in lines[1]
    assert " 1h30m " in lines[1] and " 1h " in lines[1] and " yes " in lines[1]
    assert lines[1].endswith("2026-04-05 02:00 +02:00 (Sun)")
    assert lines[2].startswith("zz-weekly-db")
    assert " UTC " in lines[2] and " no " in lines[2]
    assert lines[2].endswith("-")


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(), "window", "list", "-o", "json")
    doc = json.loads(capsys.readouterr().out)
    assert [w["name"] for w in doc] == ["sunday-patch", "zz-weekly-db"]
    assert doc[0]["duration_seconds"] == 5400 and doc[0]["offset_days"] == 2


def test_show_has_the_window_and_its_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(saved_window(offset_days=2, end_date=ts(2026, 12, 31, 22, 59, 59))), "window", "show", "w")
    out = capsys.readouterr().out
    fields = {line.split("  ")[0]: line.split("  ", 1)[1].strip() for line in out.split("\n\n")[0].splitlines()}
    assert fields["schedule"] == "cron(0 2 * * SUN)"
    assert fields["offset"] == "2 days after each match"
    assert fields["time zone"] == "Europe/Paris"
    assert fields["duration"] == "3h"
    assert fields["cutoff"] == "1h before the end, then let running tasks finish"
    assert fields["start date"] == "2026-03-01 00:00 +01:00"
    assert fields["end date"] == "2026-12-31 23:59:59 +01:00"
    assert fields["enabled"] == "yes"
    assert fields["next run"].startswith("2026-04-05 02:00 +02:00 (Sun)  (2026-04-05 00:00:00Z")
    assert fields["created"] == "2026-01-10 09:00:00Z by alice"
    tasks = out.split("\n\n")[1].splitlines()
    assert tasks[1].split() == ["PRIORITY", "ID", "TYPE", "TARGET", "MAX-CONC", "MAX-ERR", "AUTHOR", "DETAILS"]
    assert tasks[2].split() == ["1", "t-1", "patch-install", "env=prod", "10%", "1", "operator:bob", "reboot", "never"]
    assert tasks[3].split()[:7] == ["2", "t-2", "run", "role=web", "50", "0", "operator:alice"]
    assert "systemctl restart 'app server' as deploy; timeout 10m" in tasks[3]
    assert tasks[4].split()[:4] == ["2", "t-3", "patch-scan", "all"]


def test_show_without_tasks_says_how_to_add_one(capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(tasks=[]), "window", "show", "sunday-patch")
    assert "(no tasks: add one with opsctl window task add sunday-patch" in capsys.readouterr().out


def test_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(), "window", "show", "sunday-patch", "-o", "json")
    doc = json.loads(capsys.readouterr().out)
    assert doc["window"]["timezone"] == "Europe/Paris"
    assert len(doc["tasks"]) == 3


# -- next ------------------------------------------------------------------------------------------


def test_next_of_a_saved_window(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    run(client, "window", "next", "sunday-patch", "-n", "3")
    assert call(client, "next") == {"name": "sunday-patch", "window": None, "count": 3}
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "next runs of window sunday-patch:"
    assert lines[1].split() == ["LOCAL", "UTC"]
    assert lines[2] == "2026-03-22 02:00 +01:00 (Sun)     2026-03-22 01:00:00Z"
    assert lines[3] == "2026-04-05 02:00 +02:00 (Sun)     2026-04-05 00:00:00Z"
    assert lines[4] == "2026-04-12 02:00:30 +02:00 (Sun)  2026-04-12 00:00:30Z"


def test_next_defaults_to_five() -> None:
    client = FakeClient()
    run(client, "window", "next", "sunday-patch")
    assert call(client, "next")["count"] == 5


def test_next_computes_local_times_when_the_controller_sends_none(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient(local_starts=False)
    run(client, "window", "next", "sunday-patch", "-n", "2")
    assert ("get", "sunday-patch") in client.calls  # for its time zone
    out = capsys.readouterr().out
    assert "2026-03-22 02:00 +01:00 (Sun)" in out and "2026-04-05 02:00 +02:00 (Sun)" in out


def test_next_of_an_unsaved_schedule(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    run(
        client, "window", "next", "--schedule", "cron(0 2 ? * TUE#2)", *PARIS, "--offset", "2d",
        "--start-date", "2026-03-01",
    )  # fmt: skip
    request = call(client, "next")
    w = request["window"]
    assert (request["name"], request["count"]) == ("", 5)
    assert (w.schedule, w.timezone, w.offset_days, iso(w.start_date)) == (
        "cron(0 2 ? * TUE#2)",
        "Europe/Paris",
        2,
        "2026-02-28T23:00:00Z",
    )
    assert capsys.readouterr().out.startswith("next runs of cron(0 2 ? * TUE#2) +2d in Europe/Paris:")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("window", "next"), "give a window name or --schedule"),
        (("window", "next", "w", "--schedule", "rate(1 day)"), "not both"),
        (("window", "next", "w", "--timezone", "Europe/Paris"), "go with --schedule"),
        (("window", "next", "w", "-n", "0"), "-n must be 1 or more"),
        (("window", "next", "--schedule", "rate(1 day)", "--offset", "1d"), "cron"),
        (("window", "next", "--schedule", "weekly"), "bad schedule"),
        (("window", "next", "--schedule", "rate(1 day)", "--end-date", "soon"), "bad --end-date"),
    ],
)
def test_next_refuses(argv: tuple[str, ...], message: str) -> None:
    client = FakeClient()
    with pytest.raises(InvalidInput, match=message):
        run(client, *argv)
    assert client.calls == []


def test_next_json(capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(), "window", "next", "sunday-patch", "-o", "json")
    doc = json.loads(capsys.readouterr().out)
    assert doc["starts"][0] == "2026-03-22T01:00:00Z"
    assert doc["local_starts"][0] == "2026-03-22T02:00:00+01:00"


# -- history ---------------------------------------------------------------------------------------


def test_history_shows_each_execution_with_its_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    run(client, "window", "history", "sunday-patch", "--limit", "5")
    assert call(client, "history") == ("sunday-patch", 5)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "window sunday-patch (times in Europe/Paris):"
    assert lines[1].split() == ["SCHEDULED", "STATUS", "STARTED", "FINISHED", "REASON"]
    first = lines[2]
    assert first.startswith("2026-03-22 02:00 +01:00 (Sun)  failed")
    assert "2026-03-22 02:00:02" in first and "2026-03-22 03:41:07" in first
    assert first.endswith("task t-1 exceeded max errors")
    # its tasks, indented, by priority: command id, counts per state, and why one was skipped
    assert lines[3].split() == ["PRIORITY", "TYPE", "STATUS", "AUTHOR", "COMMAND", "COUNTS", "REASON"]
    assert lines[3].startswith("    PRIORITY")
    assert lines[4].startswith("    1 ")
    assert lines[4].split()[:5] == ["1", "patch-install", "failed", "operator:bob", "c-77"]
    assert "12 success, 2 failed  " in lines[4] and lines[4].endswith("2 hosts failed (max errors 1)")
    # hosts refused at run time (outside the author's rights) are named, every one
    assert lines[5] == "        refused, outside operator:bob's rights (sent nothing): pay-1, pay-2"
    assert lines[6].split()[:6] == ["2", "run", "skipped", "-", "-", "-"]
    assert lines[6].endswith("an earlier priority failed")
    # a missed execution has no tasks
    assert lines[7].startswith("2026-03-15 02:00 +01:00 (Sun)  missed")
    assert lines[7].endswith("no controller was running at the scheduled time")
    assert len(lines) == 8
    # columns line up across executions and across their tasks
    assert lines[2].index("failed") == lines[7].index("missed") == lines[1].index("STATUS")
    assert lines[4].index("failed") == lines[6].index("skipped") == lines[3].index("STATUS")


def test_history_of_a_deleted_window_is_in_utc(capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(window_gone=True), "window", "history", "sunday-patch")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "window sunday-patch (times in UTC):"
    assert lines[2].startswith("2026-03-22 01:00 +00:00 (Sun)")


def test_history_json(capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(), "window", "history", "sunday-patch", "-o", "json")
    doc = json.loads(capsys.readouterr().out)
    assert [e["id"] for e in doc] == ["e-2", "e-1"]
    assert doc[0]["tasks"][1]["counts"] == {"success": 12, "failed": 2, "not_started": 0}
    assert doc[0]["tasks"][1]["author"] == "operator:bob"
    assert doc[0]["tasks"][1]["refused_hosts"] == ["pay-1", "pay-2"]


# -- enable, disable, delete -----------------------------------------------------------------------


def test_enable_disable_delete(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    run(client, "window", "disable", "sunday-patch")
    run(client, "window", "enable", "sunday-patch")
    run(client, "window", "delete", "sunday-patch")
    assert client.calls == [
        ("set_enabled", ("sunday-patch", False)),
        ("set_enabled", ("sunday-patch", True)),
        ("delete", "sunday-patch"),
    ]
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("disabled window sunday-patch")
    assert out[1] == "enabled window sunday-patch; next run 2026-04-05 02:00 +02:00 (Sun)"
    assert out[2] == "deleted window sunday-patch and its tasks"


# -- through opsctl's entry point ------------------------------------------------------------------


def test_errors_are_printed_with_a_hint_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = FakeClient()
    monkeypatch.setattr(cli.OperatorClient, "from_profile", classmethod(lambda cls, name=None: client))
    assert cli.main([*CREATE, "--start-date", "someday"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: bad --start-date 'someday'")
    assert "hint: use an ISO 8601 date" in err
    assert "Traceback" not in err
    assert cli.main(["window", "task", "add", "w", "--priority", "1", "--type", "run", "--all"]) == 2
    assert "needs a command" in capsys.readouterr().err


def test_a_missing_window_exits_3(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient(window_gone=True)
    monkeypatch.setattr(cli.OperatorClient, "from_profile", classmethod(lambda cls, name=None: client))
    assert cli.main(["window", "show", "nope"]) == 3
    assert "error: no window nope" in capsys.readouterr().err


# -- the client's requests -------------------------------------------------------------------------


class RecordingStub:
    def __init__(self) -> None:
        self.requests: list[tuple[str, Any]] = []

    def __getattr__(self, method: str) -> Any:
        def invoke(request: Any, timeout: float | None = None) -> Any:
            self.requests.append((method, request))
            replies = {
                "ListWindows": pb.ListWindowsResponse(windows=[saved_window()]),
                "WindowHistory": pb.WindowHistoryResponse(executions=HISTORY),
            }
            return replies.get(method, pb.MaintenanceWindow())

        return invoke


def test_client_methods_build_the_requests() -> None:
    client = OperatorClient.__new__(OperatorClient)
    stub = RecordingStub()
    client._stub = stub  # type: ignore[assignment]
    client._timeout = 1.0
    unsaved = pb.MaintenanceWindow(schedule="rate(1 day)")
    client.next_window_runs(window=unsaved, count=3)
    client.next_window_runs(name="w")
    client.set_window_enabled("w", False)
    client.remove_window_task("w", "t-1")
    client.delete_window("w")
    assert [w.name for w in client.list_windows()] == ["sunday-patch"]
    assert len(client.window_history("w", limit=7)) == 2
    sent = dict(stub.requests)
    assert sent["NextWindowRuns"] == pb.NextWindowRunsRequest(name="w")  # the last one
    first = stub.requests[0][1]
    assert (first.name, first.window.schedule, first.count) == ("", "rate(1 day)", 3)
    assert sent["SetWindowEnabled"] == pb.SetWindowEnabledRequest(name="w", enabled=False)
    assert sent["RemoveWindowTask"] == pb.RemoveWindowTaskRequest(window="w", task_id="t-1")
    assert sent["DeleteWindow"] == pb.GetWindowRequest(name="w")
    assert sent["WindowHistory"] == pb.WindowHistoryRequest(name="w", limit=7)
