"""Following a command: prefixed lines (--stream), results as each host finishes, the progress line."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from fleetops.opsctl import output
from fleetops.opsctl.run_follow import PrefixedLines, follow_results, progress_text, stream_lines, waiting_why
from fleetops.v1 import operator_pb2 as pb

NOW = datetime(2026, 3, 1, 12, 5, tzinfo=UTC)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def not_raw(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "RAW", False)


def ts(hour: int, minute: int, second: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime(2026, 3, 1, hour, minute, second, tzinfo=UTC))
    return stamp


def inv(host: str, state: str = "success", **fields: Any) -> pb.Invocation:
    return pb.Invocation(
        host_name=host,
        host_id=f"id-{host}",
        command_id="cmd-1",
        state=pb.InvocationState.Value("INVOCATION_STATE_" + state.upper()),
        **fields,
    )


def out_event(host: str, data: bytes, offset: int, stderr: bool = False) -> pb.OutputEvent:
    return pb.OutputEvent(host_name=host, output=pb.LiveOutput(stderr=stderr, offset=offset, data=data))


def done_event(invocation: pb.Invocation) -> pb.OutputEvent:
    return pb.OutputEvent(host_name=invocation.host_name, finished=invocation)


class FakeClient:
    def __init__(
        self,
        *,
        events: list[pb.OutputEvent] | None = None,
        watch: list[pb.CommandDetail] | None = None,
        final: list[pb.Invocation] | None = None,
    ) -> None:
        self.events = events or []
        self.watch = watch or []
        self.final = final or []
        self.calls: list[tuple[str, Any]] = []

    def watch_output(self, command_id: str, hosts: list[str] | None = None) -> Iterator[pb.OutputEvent]:
        self.calls.append(("watch_output", command_id))
        yield from self.events

    def watch_command(self, command_id: str, include_output: bool = False) -> Iterator[pb.CommandDetail]:
        self.calls.append(("watch_command", include_output))
        yield from self.watch

    def get_command(self, command_id: str, include_output: bool = True) -> pb.CommandDetail:
        self.calls.append(("get_command", include_output))
        invocations = []
        for i in self.final:
            copy = pb.Invocation()
            copy.CopyFrom(i)
            if not include_output:
                copy.stdout_tail = copy.stderr_tail = b""
            invocations.append(copy)
        return pb.CommandDetail(
            command=pb.Command(id=command_id, status="success", total=len(invocations)),
            invocations=invocations,
            done=True,
        )


# -- --stream: prefixed lines ----------------------------------------------------------------------


def test_lines_are_printed_whole_with_their_host() -> None:
    out = io.StringIO()
    lines = PrefixedLines("web-1", out, "cmd-1")
    lines.feed(b"hel", 0)
    assert out.getvalue() == ""  # not a whole line yet
    lines.feed(b"lo\nwor", 3)
    assert out.getvalue() == "web-1: hello\n"
    lines.feed(b"ld\r\npartial", 9)
    assert lines.finish() == []
    assert out.getvalue().splitlines() == ["web-1: hello", "web-1: world", "web-1: partial"]


def test_a_very_long_line_is_printed_in_pieces() -> None:
    out = io.StringIO()
    lines = PrefixedLines("h", out, "cmd-1")
    lines.feed(b"x" * (PrefixedLines.LONGEST + 10), 0)
    assert out.getvalue() == f"h: {'x' * PrefixedLines.LONGEST}\n"
    lines.finish()
    assert out.getvalue().splitlines()[1] == "h: " + "x" * 10


def test_a_binary_stream_is_noted_not_printed() -> None:
    out = io.StringIO()
    lines = PrefixedLines("db-1", out, "cmd-1", stderr=True)
    lines.feed(b"text\n\x00\x01\x02\nmore\n", 0)
    assert lines.finish() == [
        "db-1: stderr is binary, 14 B (14 bytes) in all; save it: opsctl run output cmd-1 db-1 --stderr > FILE"
    ]
    assert out.getvalue() == "db-1: text\n"


def test_stream_lines_interleaves_hosts_and_reports_each_end() -> None:
    client = FakeClient(
        events=[
            out_event("web-1", b"one\n", 0),
            out_event("web-2", b"uno\n", 0),
            out_event("web-2", b"warn\n", 0, stderr=True),
            out_event("web-1", b"two (no newline)", 4),
            done_event(inv("web-1", stdout_bytes=20)),
            done_event(inv("web-2", "failed", exit_code=4, has_exit_code=True)),
        ]
    )
    out, err = io.StringIO(), io.StringIO()
    finished = stream_lines(client, "cmd-1", out, err)  # type: ignore[arg-type]  # a fake client
    assert [i.host_name for i in finished or []] == ["web-1", "web-2"]
    assert out.getvalue().splitlines() == [
        "web-1: one",
        "web-2: uno",
        "web-1: two (no newline)",
        "── web-1: success",
        "── web-2: exit 4",
    ]
    assert err.getvalue() == "web-2: warn\n"


# -- results as each host finishes ----------------------------------------------------------------


def detail(
    counts: dict[str, int], total: int, invocations: list[pb.Invocation], done: bool = False
) -> pb.CommandDetail:
    return pb.CommandDetail(
        command=pb.Command(id="cmd-1", total=total, counts=counts), invocations=invocations, done=done
    )


def test_results_print_as_each_host_finishes_and_same_ones_fold() -> None:
    web1 = inv("web-1", stdout_tail=b"hello\n", stdout_bytes=6)
    web2 = inv("web-2", stdout_tail=b"hello\n", stdout_bytes=6)
    web3 = inv("web-3", "failed", exit_code=1, has_exit_code=True, stderr_tail=b"nope\n", stderr_bytes=5)
    printed: list[str] = []

    class Recording(FakeClient):
        def watch_command(self, command_id: str, include_output: bool = False) -> Iterator[pb.CommandDetail]:
            self.calls.append(("watch_command", include_output))
            yield detail({"running": 3}, 3, [inv("web-1", "running"), inv("web-2", "running"), inv("web-3", "running")])
            yield detail({"success": 1, "running": 2}, 3, [web1])
            printed.append(out.getvalue())  # web-1's result is out before the others finish
            yield detail({"success": 2, "failed": 1}, 3, [web2, web3], done=True)

    client = Recording(final=[web1, web2, web3])
    out = io.StringIO()
    final = follow_results(client, "cmd-1", "text", out, io.StringIO())  # type: ignore[arg-type]  # a fake client
    assert final is not None
    assert printed == ["── web-1\n   hello\n"]
    assert out.getvalue().splitlines() == [
        "── web-1",
        "   hello",
        "── web-2: same as web-1",
        "── web-3 exit 1",
        "   stderr: nope",
        "── 2 hosts (web-1, web-2)",
        "── 1 host exit 1 (web-3)",
    ]
    assert ("watch_command", True) in client.calls
    assert ("get_command", True) not in client.calls  # the watch carried every result


def test_results_a_watch_left_out_come_from_get_command() -> None:
    web1 = inv("web-1", stdout_tail=b"hello\n", stdout_bytes=6)
    tailless = inv("web-1", stdout_bytes=6)  # an older controller: no tails in the watch
    client = FakeClient(watch=[detail({"success": 1}, 1, [tailless], done=True)], final=[web1])
    out = io.StringIO()
    assert follow_results(client, "cmd-1", "text", out, io.StringIO()) is not None  # type: ignore[arg-type]  # fake
    assert out.getvalue() == "── web-1\n   hello\n"
    assert ("get_command", True) in client.calls


def test_json_results_are_one_line_per_host_as_each_finishes() -> None:
    web1 = inv("web-1", stdout_tail=b"hi\n", stdout_bytes=3)
    client = FakeClient(watch=[detail({"success": 1}, 1, [web1], done=True)], final=[web1])
    out = io.StringIO()
    follow_results(client, "cmd-1", "json", out, io.StringIO())  # type: ignore[arg-type]  # a fake client
    assert out.getvalue().count("\n") == 1 and '"stdout": "hi\\n"' in out.getvalue()


def test_the_progress_line_names_what_waits_and_why_on_a_terminal_only() -> None:
    waiting = [
        inv("web-5", "pending", waiting_reason="not yet sent: max concurrency 2 reached"),
        inv("web-4", "pending", waiting_reason="host offline", host_offline_since=ts(12, 1, 7)),
    ]
    client = FakeClient(
        watch=[detail({"success": 3, "pending": 2}, 5, waiting), detail({"success": 5}, 5, [], done=True)]
    )
    err = Terminal()
    follow_results(client, "cmd-1", "text", io.StringIO(), err, show_results=False)  # type: ignore[arg-type]  # fake
    assert "3/5 done · 2 pending · web-4: host offline since " in err.getvalue()
    assert err.getvalue().endswith("\r\x1b[K")  # cleared at the end
    quiet = io.StringIO()
    follow_results(client, "cmd-1", "text", io.StringIO(), quiet, show_results=False)  # type: ignore[arg-type]  # fake
    assert quiet.getvalue() == ""


def test_progress_text_puts_offline_hosts_first_and_counts_the_rest() -> None:
    waiting = [
        inv("web-5", "pending", waiting_reason="not yet sent"),
        inv("web-4", "pending", waiting_reason="host offline", host_offline_since=ts(12, 1, 7)),
        inv("web-6", "running", waiting_reason="running"),
    ]
    counts = {"success": 2, "failed": 1, "running": 1, "pending": 1}
    assert (
        progress_text(counts, 6, waiting, width=200, now=NOW)
        == "3/6 done (1 failed) · 1 running · 2 pending · web-4: host offline since 12:01:07Z · "
        "web-5: not yet sent · web-6: running"
    )
    assert progress_text(counts, 6, waiting, width=95, now=NOW) == (
        "3/6 done (1 failed) · 1 running · 2 pending · web-4: host offline since 12:01:07Z · +2 more"
    )


def test_offline_since_another_day_gives_the_date() -> None:
    old = inv("db-1", "pending", host_offline_since=ts(9, 0, 0))
    assert waiting_why(old, now=datetime(2026, 3, 2, tzinfo=UTC)) == "host offline since 2026-03-01 09:00:00Z"
