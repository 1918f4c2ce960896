"""One live session's relay and recording: output reaches the operator only once it is recorded.

The transcript sink is a fake whose appends finish when the test says, so what is relayed while
an append is in flight is seen exactly (no sleeps: each step waits for the event it needs).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fleetops.common.errors import Unavailable
from fleetops.common.states import EndReason, SessionState, TranscriptState
from fleetops.controller.sessions.asciicast import AsciicastEncoder
from fleetops.controller.sessions.live import LiveSession
from fleetops.controller.sessions.models import (
    Resize,
    Session,
    SessionEnd,
    SessionLimits,
    SessionRequest,
)
from fleetops.controller.sessions.spool import TranscriptInfo


class GatedSink:
    """Each append waits until the test opens the gate (or fails it)."""

    def __init__(self) -> None:
        self.appended: list[bytes] = []
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        self.fail = False

    def append_nowait(self, batch: bytes) -> bool:
        return False  # every append goes the slow way, through the gate

    async def append(self, batch: bytes) -> None:
        self.started.set()
        await self.gate.wait()
        self.gate.clear()
        self.started.clear()
        if self.fail:
            raise OSError("disk full")
        self.appended.append(batch)

    async def finish(self) -> TranscriptInfo | None:
        return None


def live_session(sink: GatedSink) -> LiveSession:
    record = Session(
        "s-1", "h-1", "web-1", "alice", "", "", "xterm", 80, 24, True, "test:1", SessionState.ACTIVE,
        datetime.now(UTC), None, "", "", None, "k", TranscriptState.RECORDING, "", None,
    )  # fmt: skip
    live = LiveSession(record, SessionRequest(host="web-1"), SessionLimits(), clock=lambda: 0.0)
    live.encoder = AsciicastEncoder(80, 24, timestamp=0.0, record_input=True)
    live.sink = sink  # type: ignore[assignment]  # a fake TranscriptSink
    live.recording = True
    return live


def relayed(live: LiveSession) -> int:
    return live.out_window.last_seq


async def test_output_is_relayed_once_its_line_is_in_the_spool_and_in_order() -> None:
    sink = GatedSink()
    live = live_session(sink)
    await live.agent_output(1, b"one", lambda end: None)
    await asyncio.wait_for(sink.started.wait(), 5)
    await live.agent_output(2, b"two", lambda end: None)  # queued behind the append in flight
    await live.agent_output(3, b"three", lambda end: None)
    assert relayed(live) == 0
    sink.gate.set()
    await asyncio.wait_for(sink.started.wait(), 5)  # the second batch: both lines queued meanwhile
    assert relayed(live) == 1
    sink.gate.set()
    await asyncio.wait_for(live.finish_recording(), 5)
    assert relayed(live) == 3
    assert [b"one" in sink.appended[0], b"two" in sink.appended[1], b"three" in sink.appended[1]] == [True] * 3


class InlineSink(GatedSink):
    """Takes every line at once (as the spool does a small one while no fsync is due), or fails."""

    def append_nowait(self, batch: bytes) -> bool:
        if self.fail:
            raise Unavailable("cannot write the transcript spool: disk full")
        self.appended.append(batch)
        return True


async def test_a_small_line_with_nothing_queued_is_recorded_and_relayed_without_a_task() -> None:
    sink = InlineSink()
    live = live_session(sink)
    await live.agent_output(1, b"one", lambda end: None)
    # No await in between: the echo of a keystroke is relayed within the same turn of the loop.
    assert relayed(live) == 1 and b"one" in sink.appended[0]
    await live.agent_output(2, b"two", lambda end: None)
    assert relayed(live) == 2 and len(sink.appended) == 2


async def test_a_failed_inline_append_relays_the_line_and_ends_the_session() -> None:
    sink = InlineSink()
    live = live_session(sink)
    sink.fail = True
    await live.agent_output(1, b"one", lambda end: None)
    assert relayed(live) == 1  # relayed unrecorded: the session is being ended
    assert live.terminate_request is not None and live.terminate_request[0] == EndReason.RECORDING_FAILED
    assert not live.recording


async def test_the_end_is_relayed_after_the_output_before_it() -> None:
    sink = GatedSink()
    live = live_session(sink)
    ends: list[SessionEnd] = []
    await live.agent_output(1, b"bye", lambda end: None)
    await asyncio.wait_for(sink.started.wait(), 5)
    await live.agent_output(2, SessionEnd(0, EndReason.EXITED, ""), ends.append)
    assert ends == [] and live.output_ack.value == 0
    sink.gate.set()
    await asyncio.wait_for(live.finish_recording(), 5)
    assert ends == [SessionEnd(0, EndReason.EXITED, "")] and live.output_ack.value == 2


async def test_a_failed_recording_relays_what_waited_and_ends_the_session() -> None:
    sink = GatedSink()
    live = live_session(sink)
    await live.agent_output(1, b"one", lambda end: None)
    await asyncio.wait_for(sink.started.wait(), 5)
    await live.agent_output(2, b"two", lambda end: None)
    sink.fail = True
    sink.gate.set()
    await asyncio.wait_for(live.terminate_requested.wait(), 5)
    assert relayed(live) == 2  # relayed unrecorded: the session is being ended
    assert live.terminate_request is not None and live.terminate_request[0] == EndReason.RECORDING_FAILED
    assert "disk full" in live.terminate_request[1]
    await live.agent_output(3, b"three", lambda end: None)  # no longer recorded: relayed at once
    assert relayed(live) == 3 and sink.appended == []


async def test_a_resize_is_passed_on_and_recorded() -> None:
    sink = GatedSink()
    live = live_session(sink)
    await live.client_input(1, Resize(100, 40))
    await asyncio.wait_for(sink.started.wait(), 5)
    sink.gate.set()
    await asyncio.wait_for(live.finish_recording(), 5)
    assert live.in_window.last_seq == 1
    assert sink.appended == [b'[0.000000, "r", "100x40"]\n']
