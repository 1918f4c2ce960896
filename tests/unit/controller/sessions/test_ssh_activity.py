"""What a host reports about an SSH connection: checked as the host's word, never relayed as SSH bytes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.common.states import SessionState, TranscriptState
from fleetops.controller.rpc.session_streams import activity_from_proto
from fleetops.controller.sessions.live import LiveSession
from fleetops.controller.sessions.models import (
    Activity,
    ActivityNote,
    Resize,
    Session,
    SessionLimits,
    SessionRequest,
    TerminalOpened,
    TerminalOutput,
)
from fleetops.v1 import session_pb2


def audit(action: str, details_json: str) -> session_pb2.SessionActivity:
    return session_pb2.SessionActivity(audit=session_pb2.ActivityAudit(action=action, details_json=details_json))


def test_reports_become_domain_events() -> None:
    opened = session_pb2.TerminalOpened(term="xterm", size=session_pb2.TerminalSize(cols=100, rows=30))
    assert activity_from_proto(session_pb2.SessionActivity(terminal_opened=opened)) == TerminalOpened("xterm", 100, 30)
    assert activity_from_proto(session_pb2.SessionActivity(terminal_output=b"hi")) == TerminalOutput(b"hi")
    resized = session_pb2.SessionActivity(terminal_resized=session_pb2.TerminalSize(cols=120, rows=40))
    assert activity_from_proto(resized) == Resize(120, 40)
    note = activity_from_proto(audit("file.transfer", json.dumps({"path": "/etc/x", "size": 3})))
    assert note == ActivityNote("file.transfer", {"path": "/etc/x", "size": 3})


@pytest.mark.parametrize(
    ("activity", "error"),
    [
        (audit("admin", "{}"), "unknown action"),
        (audit("ssh.forward", "[1, 2]"), "not a JSON object"),
        (audit("ssh.forward", "{not json"), "not a JSON object"),
        (audit("ssh.forward", json.dumps({"x": "y" * 9000})), "longer than"),
        (session_pb2.SessionActivity(terminal_resized=session_pb2.TerminalSize(cols=0, rows=0)), "0"),
        (session_pb2.SessionActivity(), "empty"),
    ],
)
def test_malformed_reports_are_refused(activity: session_pb2.SessionActivity, error: str) -> None:
    with pytest.raises(InvalidInput, match=error):
        activity_from_proto(activity)


async def test_activity_reaches_the_broker_and_the_operator_only_as_an_empty_frame() -> None:
    record = Session(
        "s-1", "h-1", "web-1", "alice", "root", "", "xterm", 80, 24, False, "test:1", SessionState.ACTIVE,
        datetime.now(UTC), None, "", "", None, "k", TranscriptState.RECORDING, "", None,
    )  # fmt: skip
    live = LiveSession(record, SessionRequest(host="web-1"), SessionLimits(), clock=lambda: 0.0)
    seen: list[Activity] = []

    async def on_activity(activity: Activity) -> None:
        seen.append(activity)

    def on_end(end: object) -> None:
        raise AssertionError("no end")

    await live.agent_output(1, b"SSH-2.0-x\r\n", on_end, on_activity)
    await live.agent_output(2, TerminalOutput(b"secret shell output"), on_end, on_activity)
    await live.agent_output(3, None, on_end, on_activity)  # a malformed report: skipped, still counted
    await live.agent_output(2, TerminalOutput(b"again"), on_end, on_activity)  # a re-sent duplicate
    assert seen == [TerminalOutput(b"secret shell output")]
    relayed = [await live.out_window.take() for _ in range(3)]
    assert relayed == [(1, b"SSH-2.0-x\r\n"), (2, b""), (3, b"")]
