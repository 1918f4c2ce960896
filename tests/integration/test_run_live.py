"""Output and results while a command runs, through the RPCs opsctl uses, against real processes.

A job printing a line every 0.2 s: its bytes and tail show in GetCommand before it ends,
GetInvocationOutput gives what arrived so far and follows it to the end, WatchOutput streams
every host (a late watcher starts from the held tail) and each host's result; WatchCommand
delivers the online host's result while an offline host waits, saying why.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetops.common.errors import NotFound, PermissionDenied
from fleetops.opsctl.client import OperatorClient
from fleetops.v1 import operator_pb2

from harness import Agent, Controller, start_fleet, wait_until

pytestmark = pytest.mark.slow

LINES = 15
TICKING = f"for i in $(seq 1 {LINES}); do echo line $i; echo err $i >&2; sleep 0.2; done"
ALL_LINES = b"".join(b"line %d\n" % i for i in range(1, LINES + 1))


@pytest.fixture(scope="module")
def fleet(module_controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    agents = start_fleet(
        module_controller,
        tmp_path_factory.mktemp("live-agents"),
        {"live-1": {"role": "live"}, "live-2": {"role": "live", "tier": "b"}},
    )
    yield agents
    for agent in agents.values():
        agent.stop()


@pytest.fixture(scope="module")
def client(module_controller: Controller) -> Iterator[OperatorClient]:
    with OperatorClient.from_profile(str(module_controller.profile)) as c:
        yield c


def run(client: OperatorClient, *hosts: str, script: str = TICKING, **options: object) -> str:
    request = operator_pb2.RunCommandRequest(
        target=operator_pb2.Target(hosts=list(hosts)), argv=["sh", "-c", script], **options
    )
    return client.run_command(request).command.id


def invocation(client: OperatorClient, command_id: str, host: str) -> operator_pb2.Invocation:
    return next(i for i in client.get_command(command_id).invocations if i.host_name == host)


def wait_done(client: OperatorClient, command_id: str) -> operator_pb2.CommandDetail:
    return wait_until(lambda: (d := client.get_command(command_id)).done and d, 30, f"{command_id} done")


def test_run_show_and_run_output_see_a_running_command(client: OperatorClient, fleet: dict[str, Agent]) -> None:
    command_id = run(client, "live-1")
    running = wait_until(
        lambda: (i := invocation(client, command_id, "live-1")).stdout_bytes >= len(b"line 1\nline 2\n") and i,
        20,
        "output of the running invocation",
    )
    assert running.state == operator_pb2.INVOCATION_STATE_RUNNING and running.waiting_reason == "running"
    assert running.stdout_tail.startswith(b"line 1\nline 2\n") and running.stderr_tail.startswith(b"err 1\n")
    assert running.stdout_bytes == len(running.stdout_tail)
    # Without follow: what arrived so far, in order from the first byte (not nothing).
    so_far = list(client.invocation_output(command_id, "live-1"))
    data = b"".join(c.data for c in so_far)
    assert data.startswith(b"line 1\nline 2\n") and ALL_LINES.startswith(data)
    assert so_far[0].offset == 0 and all(c.skipped == 0 for c in so_far)
    assert not client.get_command(command_id).done  # all of this happened while it ran
    wait_done(client, command_id)


def test_follow_streams_lines_in_order_and_ends_with_the_invocation(
    client: OperatorClient, fleet: dict[str, Agent]
) -> None:
    command_id = run(client, "live-2")
    chunks = []
    seen_while_running = False
    for chunk in client.invocation_output(command_id, "live-2", follow=True):
        chunks.append(chunk)
        if not seen_while_running and b"line 2\n" in b"".join(c.data for c in chunks):
            seen_while_running = not client.get_command(command_id, include_output=False).done
    assert seen_while_running, "follow must deliver lines while the command runs"
    assert b"".join(c.data for c in chunks) == ALL_LINES
    offsets = [c.offset for c in chunks]
    assert offsets == [sum(len(c.data) for c in chunks[:n]) for n in range(len(chunks))]  # contiguous
    assert all(c.skipped == 0 for c in chunks)
    # The stream ended with the invocation: its result is there at once.
    final = invocation(client, command_id, "live-2")
    assert final.state == operator_pb2.INVOCATION_STATE_SUCCESS and final.stdout_bytes == len(ALL_LINES)
    # Following a finished invocation gives its whole stored output, as without follow.
    again = list(client.invocation_output(command_id, "live-2", stderr=True, follow=True))
    assert b"".join(c.data for c in again) == b"".join(b"err %d\n" % i for i in range(1, LINES + 1))


def test_a_late_watcher_gets_the_held_tail_then_live_output_and_each_result(
    client: OperatorClient, fleet: dict[str, Agent]
) -> None:
    command_id = run(client, "live-1", "live-2")
    wait_until(
        lambda: all(i.stdout_bytes >= 14 for i in client.get_command(command_id).invocations), 20, "output started"
    )
    stdout: dict[str, bytearray] = {"live-1": bytearray(), "live-2": bytearray()}
    first: dict[str, operator_pb2.LiveOutput] = {}
    finished: dict[str, operator_pb2.Invocation] = {}
    for event in client.watch_output(command_id):
        if event.WhichOneof("body") == "finished":
            assert event.host_name not in finished
            finished[event.host_name] = event.finished
            continue
        assert event.host_name not in finished, "no output after a host's result"
        if event.output.stderr:
            continue
        first.setdefault(event.host_name, event.output)
        # In order, without gaps: each piece starts where the last one ended.
        assert event.output.offset == first[event.host_name].offset + len(stdout[event.host_name])
        stdout[event.host_name] += event.output.data
    assert set(finished) == {"live-1", "live-2"}
    for host, result in finished.items():
        assert result.state == operator_pb2.INVOCATION_STATE_SUCCESS and result.has_exit_code
        assert result.stdout_tail == b""  # the watcher got the output live
        start = first[host]
        # The held tail first: everything from the first byte is still held, so nothing skipped.
        assert start.offset == 0 and start.skipped == 0
        assert bytes(stdout[host]) == ALL_LINES
    # Only some hosts, by name; an unknown host is refused clearly.
    only = [e.host_name for e in client.watch_output(command_id, ["live-2"])]
    assert set(only) == {"live-2"} and len(only) >= 1
    with pytest.raises(NotFound, match="has no invocation on host nowhere"):
        list(client.watch_output(command_id, ["nowhere"]))


def test_a_stuck_watcher_skips_and_slows_nobody(client: OperatorClient, fleet: dict[str, Agent]) -> None:
    size = 32 * 1024 * 1024
    command_id = run(client, "live-1", script=f"head -c {size} /dev/zero; echo done >&2")
    stuck = client.watch_output(command_id)
    first = next(stuck)  # the watcher started, then reads nothing while 32 MiB flow
    detail = wait_done(client, command_id)  # not held back by the stuck watcher
    assert detail.invocations[0].state == operator_pb2.INVOCATION_STATE_SUCCESS
    assert detail.invocations[0].stdout_bytes == size
    events = [first, *stuck]
    outputs = [e.output for e in events if e.WhichOneof("body") == "output" and not e.output.stderr]
    received = sum(len(o.data) for o in outputs)
    assert received < size and outputs[-1].skipped > 0
    assert outputs[-1].offset + len(outputs[-1].data) == size  # it caught up with the end
    assert outputs[-1].skipped + received == size  # what it did not get is counted exactly
    assert events[-1].WhichOneof("body") == "finished"


def test_an_offline_host_never_holds_back_the_online_hosts_result(
    client: OperatorClient, fleet: dict[str, Agent], module_controller: Controller
) -> None:
    fleet["live-2"].stop()
    try:
        wait_until(lambda: client.get_host("live-2").status != operator_pb2.HOST_STATUS_ONLINE, 15, "live-2 offline")
        command_id = run(client, "live-1", "live-2", script="echo hi", delivery_timeout_seconds=600)
        messages: list[operator_pb2.CommandDetail] = []
        done = threading.Event()

        def watch() -> None:
            for detail in client.watch_command(command_id):
                messages.append(detail)
                states = {i.host_name: i for i in detail.invocations}
                if states.get("live-1") and states["live-1"].state == operator_pb2.INVOCATION_STATE_SUCCESS:
                    done.set()
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        assert done.wait(30), "live-1's result did not arrive while live-2 was offline"
        everything = {i.host_name: i for i in messages[0].invocations}
        assert set(everything) == {"live-1", "live-2"}  # the first message has all of them
        waiting = everything["live-2"]
        assert waiting.waiting_reason.startswith("host offline since ") and "not yet sent" in waiting.waiting_reason
        assert waiting.HasField("host_offline_since")
        # Later messages carry only what changed: live-2 did not change, so it is not repeated.
        assert all("live-2" not in {i.host_name for i in m.invocations} for m in messages[1:])
        assert not client.get_command(command_id).done
        client.cancel_command(command_id)
        final = {i.host_name: i for i in wait_done(client, command_id).invocations}
        assert final["live-2"].state == operator_pb2.INVOCATION_STATE_CANCELLED and not final["live-2"].waiting_reason
    finally:
        fleet["live-2"].start()


LIVE_1_ONLY = """
name: live-1-ops
allow:
  - actions: [command.run]
    hosts: "role=live,!tier"
"""


def test_watching_output_needs_command_run_on_every_host_of_the_command(
    client: OperatorClient, fleet: dict[str, Agent], module_controller: Controller, tmp_path: Path
) -> None:
    role = tmp_path / "role.yaml"
    role.write_text(LIVE_1_ONLY)
    module_controller.opsctl("admin", "role", "create", "live-1-ops", "--file", str(role))
    profile = module_controller.issue_profile("carol", tmp_path / "carol", roles=("live-1-ops",))
    both = run(client, "live-1", "live-2", script="echo secret")
    own = run(client, "live-1", script="echo mine")
    with OperatorClient.from_profile(str(profile)) as carol:
        with pytest.raises(PermissionDenied):
            list(carol.watch_output(both))
        with pytest.raises(PermissionDenied):
            list(carol.watch_output(both, ["live-1"]))  # a command's output is all or nothing, as run show
        with pytest.raises(PermissionDenied):
            list(carol.invocation_output(both, "live-2", follow=True))
        events = list(carol.watch_output(own))
    assert b"".join(e.output.data for e in events if e.WhichOneof("body") == "output") == b"mine\n"
    refused = client.list_audit_events(actor="operator:carol", action="command.output", outcome="denied")
    assert len(refused) == 3 and all("live-2" in e.details_json for e in refused)
    allowed = client.list_audit_events(actor="operator:carol", action="command.output", outcome="ok")
    assert [e.target for e in allowed] == [own]
