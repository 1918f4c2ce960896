"""How a host's command output is shown: text or binary, whole or cut from a line boundary, JSON, live sinks."""

from __future__ import annotations

import base64
import io
import json

import pytest

from fleetops.opsctl import output
from fleetops.opsctl.run_output import (
    StreamSink,
    as_text,
    invocation_doc,
    output_notes,
    print_streams,
    shown_output,
    stream_doc,
    whole_characters,
)
from fleetops.v1 import operator_pb2 as pb


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Piped(io.TextIOWrapper):
    """A redirected stdout: text and bytes both reach one byte buffer."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8")

    def value(self) -> bytes:
        self.flush()
        return self.buffer.getvalue()  # type: ignore[attr-defined, no-any-return]  # a BytesIO underneath


@pytest.fixture(autouse=True)
def not_raw(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "RAW", False)


def test_text_is_text_and_nul_or_bad_utf8_is_binary() -> None:
    assert as_text("héllo\n".encode()) == "héllo\n"
    assert as_text(b"") == ""
    assert as_text(b"a\x00b") is None
    assert as_text(b"\xff\xfe") is None


def test_a_cut_tail_loses_the_piece_of_character_it_starts_with() -> None:
    tail = "é".encode()[1:] + b"rest"
    assert whole_characters(tail, total=100) == b"rest"
    assert whole_characters(tail, total=len(tail)) == tail  # not cut: nothing is dropped (and it is binary)


def test_a_whole_tail_is_shown_whole() -> None:
    shown = shown_output(b"one\ntwo\n", 8)
    assert (shown.text, shown.cut) == ("one\ntwo\n", False)
    assert output_notes(shown, "cmd-1", "web-1") == []


def test_a_cut_tail_starts_at_a_line_and_says_how_to_get_it_all() -> None:
    tail = b"ial line\n" + b"x" * 100 + b"\nlast\n"
    shown = shown_output(tail, 3 * 1024 * 1024 + 300 * 1024)
    assert shown.text is not None and shown.text.startswith("xxx") and shown.cut
    assert output_notes(shown, "cmd-1", "web-1") == [
        "… output cut: showing the last 106 B of 3.3 MiB; all of it: opsctl run output cmd-1 web-1 > FILE"
    ]
    assert "opsctl run output cmd-1 web-1 --stderr > FILE" in output_notes(shown, "cmd-1", "web-1", stderr=True)[0]


def test_a_cut_tail_without_a_line_break_is_shown_from_its_first_character() -> None:
    shown = shown_output(b"abcdef", 1000)
    assert (shown.text, shown.shown, shown.total) == ("abcdef", 6, 1000)


def test_binary_output_is_named_with_its_size_never_shown() -> None:
    shown = shown_output(b"\x7fELF\x00\x01", 300)
    assert shown.text is None
    assert output_notes(shown, "cmd-1", "web 1") == [
        "binary, 300 B (300 bytes); save it: opsctl run output cmd-1 'web 1' > FILE"
    ]


def test_json_carries_text_as_a_string_and_binary_as_base64() -> None:
    assert stream_doc("stdout", b"hi\n", 3) == {
        "stdout": "hi\n",
        "stdout_base64": None,
        "stdout_bytes": 3,
        "stdout_truncated": False,
    }
    blob = bytes(range(256))
    doc = stream_doc("stderr", blob, 5000)
    assert doc["stderr"] is None and base64.b64decode(doc["stderr_base64"]) == blob
    assert doc["stderr_bytes"] == 5000 and doc["stderr_truncated"] is True


def test_invocation_doc_is_one_json_line_with_stable_words() -> None:
    inv = pb.Invocation(
        host_name="web-1",
        host_id="h1",
        state=pb.INVOCATION_STATE_FAILED,
        exit_code=3,
        has_exit_code=True,
        stdout_tail=b"\x00\x01",
        stdout_bytes=2,
        stderr_tail=b"oops\n",
        stderr_bytes=5,
    )
    doc = json.loads(json.dumps(invocation_doc(inv)))
    assert doc["state"] == "failed" and doc["exit_code"] == 3
    assert doc["stdout"] is None and base64.b64decode(doc["stdout_base64"]) == b"\x00\x01"
    assert doc["stderr"] == "oops\n" and doc["truncated"] is False


def test_print_streams_shows_cut_and_binary_notes() -> None:
    out = io.StringIO()
    inv = pb.Invocation(
        host_name="web-1",
        command_id="cmd-9",
        stdout_tail=b"tial\nkept line\n",
        stdout_bytes=200_000,
        stderr_tail=b"\xff\x00",
        stderr_bytes=2,
    )
    print_streams(inv, "cmd-9", out)
    assert out.getvalue().splitlines() == [
        "   … output cut: showing the last 10 B of 195.3 KiB; all of it: opsctl run output cmd-9 web-1 > FILE",
        "   kept line",
        "   stderr: binary, 2 B (2 bytes); save it: opsctl run output cmd-9 web-1 --stderr > FILE",
    ]


def test_stream_sink_writes_bytes_as_they_are_when_redirected() -> None:
    piped = Piped()
    sink = StreamSink(piped, "cmd-1", "web-1")
    blob = b"\x00\xff binary \xe2\x82"
    sink.write(blob[:5], 0)
    sink.write(blob[5:], 5)
    sink.write(blob[3:], 3)  # a repeat of bytes it has: never written twice
    assert sink.close() == []
    assert piped.value() == blob


def test_stream_sink_on_a_terminal_escapes_text_and_holds_back_binary() -> None:
    term = Terminal()
    sink = StreamSink(term, "cmd-1", "web-1")
    sink.write(b"caf", 0)
    sink.write("é\x1b[2J\n".encode()[:1], 3)  # a character split between chunks stays whole
    sink.write("é\x1b[2J\n".encode()[1:], 4)
    sink.write(b"\x00\x01\x02", 10)
    sink.write(b"more", 13)
    assert term.getvalue() == "café\\x1b[2J\n"
    assert sink.close() == [
        "web-1: stdout is binary from byte 10 on, 17 B (17 bytes) in all; save it: opsctl run output cmd-1 web-1 > FILE"
    ]


def test_stream_sink_notes_bytes_it_never_got() -> None:
    term = Terminal()
    sink = StreamSink(term, "cmd-1", "web-1", stderr=True)
    sink.write(b"a\n", 0)
    sink.write(b"b\n", 2050)
    assert term.getvalue() == "a\nb\n"
    assert sink.close() == [
        "web-1: 2.0 KiB of stderr did not reach opsctl while it streamed; "
        "all of it: opsctl run output cmd-1 web-1 --stderr > FILE"
    ]


def test_stream_sink_writes_the_text_before_the_first_binary_byte() -> None:
    term = Terminal()
    sink = StreamSink(term, "cmd-1", "web-1")
    sink.write(b"ok\n\xc3", 0)  # the start of "é"...
    sink.write(b"\xa9 then \xff bad", 4)  # ...its end, then a byte that is never UTF-8
    assert term.getvalue() == "ok\né then "
    assert sink.binary_at == 11
    nul = Terminal()
    sink = StreamSink(nul, "cmd-1", "web-1")
    sink.write(b"text\n\x00\x1b[2J", 0)
    assert (nul.getvalue(), sink.binary_at) == ("text\n", 5)
