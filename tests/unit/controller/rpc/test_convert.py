"""proto <-> domain conversion of the main operator messages: what goes out comes back the same."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.common.roles import BUILTIN_ROLES
from fleetops.common.states import InvocationState
from fleetops.controller.commands.models import Invocation
from fleetops.controller.fleet.models import Host, HostStatus, Target
from fleetops.controller.rpc import convert
from fleetops.controller.windows.models import Window, WindowTask
from fleetops.v1 import operator_pb2

NOW = datetime(2026, 3, 29, 1, 30, 15, 250_000, tzinfo=UTC)


def test_timestamps_keep_the_instant_and_come_back_in_utc() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=-7)))
    back = convert.from_timestamp(convert.timestamp(local))  # type: ignore[arg-type]
    assert back == NOW and back.tzinfo is UTC
    assert convert.timestamp(None) is None


def test_a_target_comes_in_with_its_selector_trimmed() -> None:
    assert convert.target_from_proto(operator_pb2.Target(selector="  env=prod \n")) == Target(selector="env=prod")
    assert convert.target_from_proto(operator_pb2.Target(hosts=["web-1", "web-2"])).hosts == ("web-1", "web-2")
    assert convert.target_from_proto(operator_pb2.Target(all=True)).all


def test_a_window_round_trips() -> None:
    window = Window(
        name="sunday-patch",
        schedule="cron(0 2 ? * SUN *)",
        timezone="Europe/Berlin",
        duration_seconds=4 * 3600,
        cutoff_seconds=1800,
        cutoff_behavior="cancel",  # type: ignore[arg-type]
        start_date=NOW,
        end_date=NOW + timedelta(days=90),
        offset_days=2,
        enabled=False,
        description="patch the web tier",
        created_at=NOW,
        created_by="operator:alice",
    )
    message = convert.window_to_proto(window, NOW + timedelta(days=3))
    assert message.next_run.ToDatetime(tzinfo=UTC) == NOW + timedelta(days=3)
    # What the controller sets itself (creation time and author) is not taken from a request.
    assert convert.window_from_proto(message) == replace(window, created_at=None, created_by="")


def test_an_unsaved_window_gets_a_name_and_a_duration_to_preview_with() -> None:
    window = convert.window_from_proto(operator_pb2.MaintenanceWindow(schedule="rate(1 day)"), unsaved=True)
    assert (window.name, window.duration_seconds, window.timezone) == ("unsaved", 3600, "UTC")


@pytest.mark.parametrize(
    "task",
    [
        WindowTask(
            window="w",
            priority=1,
            type="run",  # type: ignore[arg-type]
            target=Target(selector="role=web"),
            max_concurrency="10%",
            max_errors="0",
            argv=("systemctl", "restart", "nginx"),
            run_as="root",
            timeout_seconds=600,
            description="restart",
        ),
        WindowTask(
            window="w",
            priority=2,
            type="patch-install",  # type: ignore[arg-type]
            target=Target(hosts=("web-1",)),
            reboot="never",
        ),
        WindowTask(window="w", priority=3, type="run", target=Target(all=True), script=b"#!/bin/sh\nuptime\n"),  # type: ignore[arg-type]
    ],
    ids=["run", "patch-install", "script"],
)
def test_a_window_task_round_trips(task: WindowTask) -> None:
    stored = replace(task, id="t-1", author="operator:alice")
    message = convert.window_task_to_proto(stored)
    assert (message.id, message.author) == ("t-1", "operator:alice")
    # A task coming in is new: its id and author are the controller's to set.
    assert convert.window_task_from_proto(message) == task


@pytest.mark.parametrize("name", sorted(BUILTIN_ROLES))
def test_a_role_round_trips(name: str) -> None:
    role = BUILTIN_ROLES[name]
    message = convert.role_to_proto(role)
    assert message.builtin and message.name == name
    assert type(role).from_dict(convert.role_document(message)) == role


def test_a_role_document_takes_its_name_from_the_message_when_it_has_none() -> None:
    document = convert.role_document(operator_pb2.Role(name="ops", document_json='{"allow": []}'))
    assert document == {"name": "ops", "allow": []}


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"admin"'])
def test_a_role_document_that_is_not_a_json_object_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        convert.role_document(operator_pb2.Role(name="ops", document_json=text))
    assert caught.value.hint


def test_a_host_goes_out_with_its_status_tags_and_times() -> None:
    host = Host(
        "h-1",
        "web-1",
        HostStatus.OFFLINE,
        {"env": "prod"},
        {},
        "a-1",
        NOW,
        NOW + timedelta(minutes=5),
        None,
        NOW + timedelta(days=30),
        host_tags={"rack": "r7"},
    )
    message = convert.host_to_proto(host)
    assert (message.id, message.name, message.status) == ("h-1", "web-1", operator_pb2.HOST_STATUS_OFFLINE)
    assert dict(message.tags) == {"env": "prod", "rack": "r7"} and dict(message.host_tags) == {"rack": "r7"}
    assert convert.from_timestamp(message.registered_at) == NOW
    assert not message.HasField("connected_at")


@pytest.mark.parametrize("state", list(InvocationState), ids=lambda s: s.value)
def test_every_invocation_state_has_its_own_wire_value(state: InvocationState) -> None:
    invocation = Invocation(
        "i-1", "cmd-1", "h-1", "web-1", state, None, "", b"out", b"", 3, 0, None, None, None, False, NOW
    )
    message = convert.invocation_to_proto(invocation)
    assert operator_pb2.InvocationState.Name(message.state) == f"INVOCATION_STATE_{state.name}"
    assert not message.has_exit_code
    assert message.stdout_tail == b"out" and convert.invocation_to_proto(invocation, False).stdout_tail == b""
