"""``opsctl window``'s text output (opsctl/window_render.py), apart from the commands that call it."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from fleetops.common import rates
from fleetops.opsctl import window_render
from fleetops.v1 import operator_pb2 as pb


def stamp(text: str) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(datetime.fromisoformat(text).replace(tzinfo=UTC))
    return ts


def rendered(func: Callable[..., None], *args: object) -> str:
    out = io.StringIO()
    func(*args, out=out)
    return out.getvalue()


def test_a_task_without_limits_shows_the_shared_defaults() -> None:
    task = pb.WindowTask(id="t-1", priority=1, type="patch-scan", target=pb.Target(all=True))
    text = rendered(window_render.print_task_list, [task], "w1")
    row = text.splitlines()[1].split()
    assert row[:6] == ["1", "t-1", "patch-scan", "all", "hosts", rates.DEFAULT_MAX_CONCURRENCY]
    assert row[6] == rates.DEFAULT_MAX_ERRORS


def test_empty_lists_say_what_to_do() -> None:
    assert rendered(window_render.print_task_list, [], "w1").splitlines()[-1] == (
        "(no tasks: add one with opsctl window task add w1 --priority 1 --type ... --target ...)"
    )
    assert "create one with opsctl window create" in rendered(window_render.print_windows, [])
    assert rendered(window_render.print_history, "w1", [], "UTC") == "(window w1 has not run yet)\n"


def test_next_runs_prefer_the_controllers_local_times() -> None:
    response = pb.NextWindowRunsResponse(
        starts=[stamp("2026-03-29T00:00:00"), stamp("2026-04-05T00:00:00")],
        local_starts=["2026-03-29T02:00:00+02:00"],
    )
    lines = rendered(window_render.print_next_runs, "next runs of w1", response, UTC).splitlines()
    assert lines[0] == "next runs of w1:"
    assert lines[2].startswith("2026-03-29 02:00 +02:00 (Sun)")
    assert lines[3].startswith("2026-04-05 00:00 +00:00 (Sun)")  # none sent: computed in the zone given
    empty = rendered(window_render.print_next_runs, "next runs of w1", pb.NextWindowRunsResponse(), UTC)
    assert empty == "next runs of w1: none (the schedule has no further occurrence)\n"


def test_saved_and_enabled_messages() -> None:
    w = pb.MaintenanceWindow(
        name="w1", schedule="rate(1 day)", timezone="UTC", duration_seconds=3 * 3600, cutoff_seconds=3600
    )
    created = rendered(window_render.print_saved, "created", w, "w1").splitlines()
    assert created == [
        "created window w1: rate(1 day) in UTC, open 3h, cutoff 1h, disabled",
        "it does not run until: opsctl window enable w1",
        "add tasks with: opsctl window task add w1 --priority 1 --type ... --target ...",
    ]
    assert len(rendered(window_render.print_saved, "updated", w, "w1").splitlines()) == 2
    assert rendered(window_render.print_enabled, w, "w1", False) == (
        "disabled window w1: it does not run until opsctl window enable w1\n"
    )


def test_a_zone_this_system_cannot_resolve_is_shown_in_utc() -> None:
    assert window_render.display_zone("Not/AZone") is UTC
