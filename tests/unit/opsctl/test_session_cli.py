"""``opsctl session``: the command line (HOST vs subcommands) and list/show/kill/export/play on a fake client."""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from fleetops.common.errors import InternalError, InvalidInput
from fleetops.opsctl import session
from fleetops.opsctl.cli import build_parser
from fleetops.v1 import operator_pb2 as pb


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


# -- argv ------------------------------------------------------------------------------------------


def test_a_host_right_after_session_opens_a_session() -> None:
    args = parse("session", "web-1")
    assert args.func is session.connect
    assert (args.host, args.run_as, args.remote_command, args.record_input) == ("web-1", "", "", False)


def test_session_options_after_the_host() -> None:
    args = parse("--profile", "prod", "session", "web-1", "--as", "deploy", "--command", "top", "--record-input")
    assert args.func is session.connect
    assert (args.host, args.run_as, args.remote_command, args.record_input) == ("web-1", "deploy", "top", True)
    assert args.profile == "prod"


@pytest.mark.parametrize(
    ("argv", "func"),
    [
        (["session", "list"], session.list_sessions),
        (["session", "list", "--active", "--host", "web-1", "--limit", "5", "-o", "json"], session.list_sessions),
        (["session", "show", "s-1"], session.show_session),
        (["session", "kill", "s-1"], session.kill_session),
        (["session", "play", "s-1", "--speed", "2", "--idle-limit", "1"], session.play_session),
        (["session", "export", "s-1", "x.cast"], session.export_session),
    ],
)
def test_subcommand_words_are_subcommands(argv: list[str], func: Any) -> None:
    assert parse(*argv).func is func


def test_list_options() -> None:
    args = parse("session", "list", "--active", "--host", "web-1", "--limit", "5", "-o", "json")
    assert (args.active, args.host, args.limit, args.output) == (True, "web-1", 5, "json")
    args = parse("session", "play", "s-1", "--speed", "2", "--idle-limit", "1")
    assert (args.id, args.speed, args.idle_limit) == ("s-1", 2.0, 1.0)


def test_a_host_named_like_a_subcommand_is_reached_with_connect() -> None:
    args = parse("session", "connect", "list", "--as", "root")
    assert args.func is session.connect
    assert (args.host, args.run_as) == ("list", "root")
    assert parse("session", "connect", "connect").host == "connect"


def test_session_without_a_host_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse("session")
    assert caught.value.code == 2
    assert "HOST | SUBCOMMAND" in capsys.readouterr().err


def test_the_help_explains_connect(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("session", "--help")
    text = capsys.readouterr().out
    assert "opsctl session HOST" in text
    assert "opsctl session connect list" in text


def test_other_groups_still_parse() -> None:
    assert parse("hosts", "list").func.__name__ == "list_hosts"


# -- records ---------------------------------------------------------------------------------------


def ts(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds)


TRANSCRIPT = (
    json.dumps({"version": 2, "width": 80, "height": 24, "timestamp": 1700000000})
    + "\n"
    + '[0.0, "o", "hello\\r\\n"]\n'
).encode()
DIGEST = hashlib.sha256(TRANSCRIPT).hexdigest()


def info(**fields: Any) -> pb.SessionInfo:
    base: dict[str, Any] = dict(
        id="s-1",
        host_id="h-1",
        host_name="web-1",
        operator="alice",
        run_as="deploy",
        state="ended",
        started_at=ts(1_700_000_000),
        ended_at=ts(1_700_000_000 + 3725),
        end_reason="exited",
        end_message="the program exited",
        exit_code=0,
        has_exit_code=True,
        cols=80,
        rows=24,
        term="xterm",
        transcript_key="sessions/s-1/transcript.cast",
        transcript_sha256=DIGEST,
        transcript_size=len(TRANSCRIPT),
        transcript_state="stored",
    )
    base.update(fields)
    return pb.SessionInfo(**base)


class FakeClient:
    def __init__(self, record: pb.SessionInfo | None = None, transcript: bytes = TRANSCRIPT) -> None:
        self.record = record or info()
        self.transcript = transcript
        self.calls: list[tuple[str, Any]] = []

    def list_sessions(self, **kw: Any) -> list[pb.SessionInfo]:
        self.calls.append(("list", kw))
        return [self.record, info(id="s-2", state="active", ended_at=None, end_reason="", has_exit_code=False)]

    def get_session(self, session_id: str) -> pb.SessionInfo:
        self.calls.append(("get", session_id))
        return self.record

    def kill_session(self, session_id: str) -> pb.SessionInfo:
        self.calls.append(("kill", session_id))
        return info(state="active", end_reason="", has_exit_code=False)

    def session_transcript(self, session_id: str) -> Iterator[bytes]:
        self.calls.append(("transcript", session_id))
        for i in range(0, len(self.transcript), 10):
            yield self.transcript[i : i + 10]


def test_list_table(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    assert session.list_sessions(client, parse("session", "list", "--active", "--host", "web-1")) == 0  # type: ignore[arg-type]
    assert client.calls == [("list", {"active_only": True, "host": "web-1", "limit": 50})]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "ID",
        "HOST",
        "OPERATOR",
        "AS",
        "KIND",
        "STARTED",
        "DURATION",
        "STATE",
        "REASON",
        "EXIT",
    ]
    assert lines[1].split()[:5] == ["s-1", "web-1", "alice", "deploy", "shell"]
    assert "1h02m" in lines[1] and lines[1].split()[-3:] == ["ended", "exited", "0"]
    assert lines[2].split()[-3:] == ["active", "-", "-"] and "+" in lines[2]


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    session.list_sessions(FakeClient(), parse("session", "list", "-o", "json"))  # type: ignore[arg-type]
    doc = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in doc] == ["s-1", "s-2"]


def test_show_has_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    session.show_session(FakeClient(), parse("session", "show", "s-1"))  # type: ignore[arg-type]
    out = capsys.readouterr().out
    expected = ("sessions/s-1/transcript.cast", DIGEST, "stored", "deploy", "alice", "80x24 xterm", "1h02m", "exited")
    for text in (*expected, "the program exited", "91 B"):
        assert text in out


def test_kill_says_what_it_did(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    session.kill_session(client, parse("session", "kill", "s-1"))  # type: ignore[arg-type]
    assert client.calls == [("kill", "s-1")]
    assert "killing session s-1 on web-1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (45, "45s"), (192, "3m12s"), (7500, "2h05m"), (90000, "1d1h")]
)
def test_span(seconds: int, text: str) -> None:
    assert session.span(seconds) == text


# -- export ----------------------------------------------------------------------------------------


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_export_writes_the_verified_transcript(tmp_path: Path) -> None:
    target = tmp_path / "web-1.cast"
    assert session.export_session(FakeClient(), parse("session", "export", "s-1", str(target))) == 0  # type: ignore[arg-type]
    assert target.read_bytes() == TRANSCRIPT
    assert leftovers(tmp_path) == ["web-1.cast"]
    assert target.stat().st_mode & 0o777 == 0o600


def test_export_refuses_a_transcript_that_does_not_match_its_sha256(tmp_path: Path) -> None:
    target = tmp_path / "web-1.cast"
    target.write_bytes(b"an older export")
    damaged = FakeClient(transcript=TRANSCRIPT.replace(b"hello", b"HELLO"))
    with pytest.raises(InternalError, match="does not match") as caught:
        session.export_session(damaged, parse("session", "export", "s-1", str(target)))  # type: ignore[arg-type]
    assert "nothing was written" in caught.value.hint
    assert target.read_bytes() == b"an older export"  # untouched
    assert leftovers(tmp_path) == ["web-1.cast"]  # no temporary file left


def test_export_of_a_transcript_still_recording_is_not_verified(tmp_path: Path) -> None:
    client = FakeClient(record=info(state="active", transcript_sha256="", transcript_size=0))
    target = tmp_path / "live.cast"
    session.export_session(client, parse("session", "export", "s-1", str(target)))  # type: ignore[arg-type]
    assert target.read_bytes() == TRANSCRIPT


def test_export_to_stdout(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    session.export_session(FakeClient(), parse("session", "export", "s-1", "-"))  # type: ignore[arg-type]
    assert capsysbinary.readouterr().out == TRANSCRIPT


def test_export_into_a_missing_directory_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot write"):
        session.export_session(FakeClient(), parse("session", "export", "s-1", str(tmp_path / "no" / "x.cast")))  # type: ignore[arg-type]


# -- play ------------------------------------------------------------------------------------------


def test_play_writes_the_output(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert session.play_session(FakeClient(), parse("session", "play", "s-1")) == 0  # type: ignore[arg-type]
    assert capsysbinary.readouterr().out == b"hello\r\n"


def test_play_of_a_bad_transcript_names_the_line() -> None:
    client = FakeClient(transcript=TRANSCRIPT + b"[1.0, oops]\n")
    with pytest.raises(InvalidInput, match="line 3"):
        session.play_session(client, parse("session", "play", "s-1"))  # type: ignore[arg-type]


def test_play_checks_its_options_before_fetching() -> None:
    client = FakeClient()
    with pytest.raises(InvalidInput, match="speed"):
        session.play_session(client, parse("session", "play", "s-1", "--speed", "0"))  # type: ignore[arg-type]
    assert client.calls == []


def test_ctrl_c_stops_playback_cleanly(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    class Interrupted(FakeClient):
        def session_transcript(self, session_id: str) -> Iterator[bytes]:
            yield TRANSCRIPT
            raise KeyboardInterrupt

    assert session.play_session(Interrupted(), parse("session", "play", "s-1")) == 130  # type: ignore[arg-type]
    assert capsysbinary.readouterr().out.startswith(b"hello\r\n")
