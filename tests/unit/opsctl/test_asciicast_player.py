"""opsctl session play: reading asciicast v2 and its timing (a fake sleep: no real waiting)."""

from __future__ import annotations

import json

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.opsctl import asciicast_player
from fleetops.opsctl.asciicast_player import parse, play, split_lines

HEADER = json.dumps({"version": 2, "width": 80, "height": 24, "timestamp": 1700000000, "env": {"TERM": "xterm"}})


def cast(*events: list[object], header: str = HEADER) -> list[str]:
    return [header, *(json.dumps(e) for e in events)]


class Recorder:
    """Collects what playback does, in order: ("sleep", seconds) and ("write", text)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, object]] = []

    def sleep(self, seconds: float) -> None:
        self.log.append(("sleep", round(seconds, 6)))

    def write(self, text: str) -> None:
        self.log.append(("write", text))


def run(lines: list[str], **options: object) -> list[tuple[str, object]]:
    header, events = parse(lines)
    rec = Recorder()
    play(header, events, rec.write, sleep=rec.sleep, **options)  # type: ignore[arg-type]
    return rec.log


EVENTS = cast(
    [0.5, "o", "a"],
    [1.0, "i", "secret"],  # keystrokes: never shown
    [3.0, "o", "b"],
    [3.5, "r", "100x30"],  # a resize: nothing printed
    [10.0, "o", "c"],
    [10.0, "o", "d"],  # no gap: no sleep at all
)


def test_output_is_played_with_the_recorded_gaps_between_output_events() -> None:
    assert run(EVENTS) == [
        ("sleep", 0.5),
        ("write", "a"),
        ("sleep", 2.5),
        ("write", "b"),
        ("sleep", 7.0),
        ("write", "c"),
        ("write", "d"),
    ]


def test_speed_divides_every_gap() -> None:
    assert [v for k, v in run(EVENTS, speed=2.0) if k == "sleep"] == [0.25, 1.25, 3.5]


def test_idle_limit_caps_each_gap_before_the_speed_applies() -> None:
    assert [v for k, v in run(EVENTS, speed=2.0, idle_limit=2.0) if k == "sleep"] == [0.25, 1.0, 1.0]


def test_the_header_idle_time_limit_applies_unless_overridden() -> None:
    header = json.dumps({"version": 2, "width": 80, "height": 24, "idle_time_limit": 1.5})
    lines = cast([0.5, "o", "a"], [5.0, "o", "b"], header=header)
    assert [v for k, v in run(lines) if k == "sleep"] == [0.5, 1.5]
    assert [v for k, v in run(lines, idle_limit=3.0) if k == "sleep"] == [0.5, 3.0]


def test_times_that_go_back_count_as_no_gap() -> None:
    assert run(cast([2.0, "o", "a"], [1.0, "o", "b"], [3.0, "o", "c"])) == [
        ("sleep", 2.0),
        ("write", "a"),
        ("write", "b"),
        ("sleep", 1.0),
        ("write", "c"),
    ]


def test_empty_transcript_is_a_clear_error() -> None:
    for lines in ([], ["", "  "]):
        with pytest.raises(InvalidInput, match="empty"):
            parse(lines)


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("not json", "not JSON"),
        ('[1.0, "o"]', r"\[time, code, data\]"),
        ('{"time": 1}', r"\[time, code, data\]"),
        ('[-1, "o", "x"]', "bad event time"),
        ('["1", "o", "x"]', "bad event time"),
        ('[1.0, "o", 5]', "must be strings"),
    ],
)
def test_a_bad_event_line_is_named_and_earlier_output_was_played(bad: str, problem: str) -> None:
    lines = [HEADER, json.dumps([0.1, "o", "before"]), "", bad, json.dumps([0.2, "o", "never"])]
    header, events = parse(lines)
    rec = Recorder()
    with pytest.raises(InvalidInput, match=f"line 4: .*{problem}"):
        play(header, events, rec.write, sleep=rec.sleep)
    assert ("write", "before") in rec.log
    assert ("write", "never") not in rec.log


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        json.dumps([0.1, "o", "x"]),
        json.dumps({"version": 1, "width": 80, "height": 24}),
        json.dumps({"version": 2, "width": 0, "height": 24}),
        json.dumps({"version": 2, "width": 80, "height": 24, "idle_time_limit": -1}),
    ],
)
def test_a_bad_header_is_refused_with_its_line(header: str) -> None:
    with pytest.raises(InvalidInput, match="line 1:"):
        parse([header])


def test_non_utf8_line_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="line 1: not UTF-8"):
        parse([b"\xff\xfe"])


@pytest.mark.parametrize(("speed", "idle"), [(0.0, None), (-1.0, None), (float("nan"), None), (1.0, 0.0)])
def test_bad_speed_or_idle_limit(speed: float, idle: float | None) -> None:
    with pytest.raises(InvalidInput):
        list(asciicast_player.delays([], speed=speed, idle_limit=idle))


def test_split_lines_rejoins_lines_cut_across_chunks() -> None:
    data = (HEADER + "\n" + json.dumps([0.5, "o", "héllo\r\n"]) + "\n" + json.dumps([1, "o", "x"])).encode()
    chunks = [data[i : i + 7] for i in range(0, len(data), 7)]
    header, events = parse(split_lines(chunks))
    assert header.width == 80 and header.height == 24
    assert [(e.time, e.data, e.line) for e in events] == [(0.5, "héllo\r\n", 2), (1.0, "x", 3)]
