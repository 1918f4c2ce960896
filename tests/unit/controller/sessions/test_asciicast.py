"""Unit tests of the asciicast v2 encoder: header, events, UTF-8 cut anywhere, input on and off."""

from __future__ import annotations

import json

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.controller.sessions.asciicast import AsciicastEncoder


def encoder(**kwargs: object) -> AsciicastEncoder:
    options: dict[str, object] = {"timestamp": 1_700_000_000, "term": "xterm-256color", "shell": "/bin/bash"}
    options.update(kwargs)
    return AsciicastEncoder(80, 24, **options)  # type: ignore[arg-type]


def events(data: bytes) -> list[list[object]]:
    lines = data.decode("utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_header_has_the_v2_fields() -> None:
    line = encoder().header()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "version": 2,
        "width": 80,
        "height": 24,
        "timestamp": 1_700_000_000,
        "env": {"TERM": "xterm-256color", "SHELL": "/bin/bash"},
    }


def test_header_title_and_unknown_env() -> None:
    header = json.loads(encoder(title="web-1: alice", term=None, shell=None, timestamp=1.9).header())
    assert header["title"] == "web-1: alice"
    assert header["env"] == {}
    assert header["timestamp"] == 1  # whole seconds


def test_output_event_is_time_code_and_text() -> None:
    line = encoder().output(1.5, b"hello\r\n")
    assert line == b'[1.500000, "o", "hello\\r\\n"]\n'
    assert events(line) == [[1.5, "o", "hello\r\n"]]


def test_times_have_six_decimals_and_never_an_exponent() -> None:
    assert encoder().output(0.000001, b"x").startswith(b"[0.000001, ")
    assert encoder().output(12345.6789, b"x").startswith(b"[12345.678900, ")


def test_times_never_go_back() -> None:
    enc = encoder()
    enc.output(2.0, b"a")
    assert events(enc.output(1.0, b"b"))[0][0] == 2.0
    assert events(encoder().output(-3.0, b"c"))[0][0] == 0.0


def test_a_utf8_character_split_across_chunks_arrives_whole() -> None:
    enc = encoder()
    data = "héllo ✓ 🙂".encode()
    cuts = [2, 9, 11, 13]  # inside é, inside ✓, inside 🙂 (twice)
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    lines = b"".join(enc.output(float(i), piece) for i, piece in enumerate(pieces))
    text = "".join(event[2] for event in events(lines))  # type: ignore[misc]
    assert text == "héllo ✓ 🙂"
    assert "\ufffd" not in text


def test_a_chunk_holding_only_part_of_a_character_makes_no_event() -> None:
    enc = encoder()
    assert enc.output(1.0, "✓".encode()[:2]) == b""
    assert events(enc.output(2.0, "✓".encode()[2:])) == [[2.0, "o", "✓"]]


def test_bytes_that_are_not_utf8_become_replacement_characters() -> None:
    assert events(encoder().output(1.0, b"a\xffb\xc3("))[0][2] == "a\ufffdb\ufffd("


def test_flush_ends_a_character_cut_off_at_the_end() -> None:
    enc = encoder()
    assert enc.output(1.0, b"ok\xe2\x9c") == b'[1.000000, "o", "ok"]\n'
    assert events(enc.flush(5.0)) == [[5.0, "o", "\ufffd"]]
    assert enc.flush(6.0) == b""


def test_control_characters_and_quotes_are_escaped_on_one_line() -> None:
    line = encoder().output(0.5, b'\x1b[1m"bold"\x1b[0m\n\x00\\')
    assert line.count(b"\n") == 1
    assert events(line)[0][2] == '\x1b[1m"bold"\x1b[0m\n\x00\\'


def test_resize_event_is_cols_x_rows() -> None:
    assert events(encoder().resize(3.25, 132, 43)) == [[3.25, "r", "132x43"]]


@pytest.mark.parametrize("size", [(0, 24), (80, -1), (80, True)])
def test_resize_refuses_impossible_sizes(size: tuple[int, int]) -> None:
    with pytest.raises(InvalidInput):
        encoder().resize(1.0, *size)
    with pytest.raises(InvalidInput):
        AsciicastEncoder(*size, timestamp=0)


def test_input_is_not_recorded_by_default() -> None:
    enc = encoder()
    assert enc.input(1.0, b"hunter2\r") == b""
    assert enc.flush(2.0) == b""


def test_input_is_recorded_when_enabled_and_decoded_separately_from_output() -> None:
    enc = encoder(record_input=True)
    assert enc.output(1.0, "é".encode()[:1]) == b""  # output holds half a character...
    assert events(enc.input(1.5, b"ls\r")) == [[1.5, "i", "ls\r"]]  # ...which input does not get
    assert events(enc.output(2.0, "é".encode()[1:])) == [[2.0, "o", "é"]]
    assert enc.input(3.0, "ü".encode()[:1]) == b""
    assert events(enc.flush(4.0)) == [[4.0, "i", "\ufffd"]]


def test_same_calls_give_the_same_bytes() -> None:
    def transcript() -> bytes:
        enc = encoder(record_input=True)
        return enc.header() + enc.output(0.1, b"$ ") + enc.input(0.2, b"x") + enc.resize(0.3, 100, 30)

    assert transcript() == transcript()
