"""Reading and timing asciicast v2 transcripts for ``opsctl session play`` (no I/O of its own).

A transcript is a header line (a JSON object with ``"version": 2``) followed by one JSON array
``[time, code, data]`` per line (see ``fleetops.controller.sessions.asciicast``). Playback writes the
``"o"`` events with the recorded gaps between them, as ``asciinema play`` does: each gap is first
capped at the idle limit, then divided by the speed. ``"i"`` (keystrokes) and ``"r"`` (resizes)
events produce nothing; unknown codes (markers...) are skipped.

Everything is lazy: a transcript of a 12-hour session is played while it is still being read, and a
bad line is reported with its number when playback reaches it. The sleep and write functions are
parameters, so tests play without waiting.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fleetops.common.errors import InvalidInput

OUTPUT = "o"
HINT = "the transcript is not asciicast v2; check it with: opsctl session export ID FILE"


@dataclass(frozen=True)
class Header:
    width: int
    height: int
    idle_time_limit: float | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    time: float
    code: str
    data: str
    line: int


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines (without their ``\\n``) of a byte stream cut anywhere; the last line may lack its newline."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        if b"\n" not in chunk:
            continue
        *lines, pending = pending.split(b"\n")
        yield from lines
    if pending:
        yield pending


def parse(lines: Iterable[bytes | str]) -> tuple[Header, Iterator[Event]]:
    """The header of a transcript (read now) and its events (read as they are iterated).

    Blank lines are skipped. Line numbers count every line from 1 (the header).

    Raises:
        InvalidInput: the transcript is empty, or a line is not a valid header or event (the
            events' errors are raised while iterating; the message names the line).
    """
    numbered = _numbered(lines)
    for number, text in numbered:
        return _header(number, text), _events(numbered)
    raise InvalidInput("the transcript is empty", "the session may have produced nothing yet, or was never recorded")


def _numbered(lines: Iterable[bytes | str]) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"transcript line {number}: not UTF-8 ({exc.reason})", HINT) from exc
        else:
            text = raw
        if text.strip():
            yield number, text


def _header(number: int, text: str) -> Header:
    doc = _json(number, text)
    if not isinstance(doc, dict):
        raise InvalidInput(f"transcript line {number}: the header must be a JSON object", HINT)
    if doc.get("version") != 2:
        version = doc.get("version")
        raise InvalidInput(f"transcript line {number}: not an asciicast v2 header (version {version!r})", HINT)
    width, height = _size(doc, "width", number), _size(doc, "height", number)
    idle = doc.get("idle_time_limit")
    if idle is not None and not (_is_number(idle) and idle > 0):
        raise InvalidInput(f"transcript line {number}: bad idle_time_limit {idle!r} in the header", HINT)
    return Header(width=width, height=height, idle_time_limit=float(idle) if idle is not None else None, fields=doc)


def _size(doc: dict[str, Any], name: str, number: int) -> int:
    """The header's ``width`` or ``height``: a positive integer."""
    value = doc.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"transcript line {number}: bad {name} {value!r} in the header", HINT)
    return value


def _events(numbered: Iterator[tuple[int, str]]) -> Iterator[Event]:
    for number, text in numbered:
        doc = _json(number, text)
        if not (isinstance(doc, list) and len(doc) == 3):
            raise InvalidInput(f"transcript line {number}: an event must be [time, code, data]", HINT)
        at, code, data = doc
        if not (_is_number(at) and at >= 0):
            raise InvalidInput(f"transcript line {number}: bad event time {at!r}", HINT)
        if not isinstance(code, str) or not isinstance(data, str):
            raise InvalidInput(f"transcript line {number}: the event code and data must be strings", HINT)
        yield Event(time=float(at), code=code, data=data, line=number)


def _json(number: int, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"transcript line {number}: not JSON ({exc})", HINT) from exc


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def delays(
    events: Iterable[Event], *, speed: float = 1.0, idle_limit: float | None = None
) -> Iterator[tuple[float, Event]]:
    """Each output event with the seconds to wait before showing it.

    The gap since the previous output event (the start for the first one) is capped at
    ``idle_limit`` when given, then divided by ``speed``. Times that go back count as no gap.

    Raises:
        InvalidInput: ``speed`` or ``idle_limit`` is not positive (or a line is bad, see :func:`parse`).
    """
    if not (_is_number(speed) and speed > 0):
        raise InvalidInput(f"bad speed {speed!r}: it must be a positive number", "e.g. --speed 2 (twice as fast)")
    if idle_limit is not None and not (_is_number(idle_limit) and idle_limit > 0):
        raise InvalidInput(f"bad idle limit {idle_limit!r}: it must be a positive number of seconds", "--idle-limit 1")
    previous = 0.0
    for event in events:
        if event.code != OUTPUT:
            continue
        gap = max(0.0, event.time - previous)
        previous = max(previous, event.time)
        if idle_limit is not None:
            gap = min(gap, idle_limit)
        yield gap / speed, event


def play(
    header: Header,
    events: Iterable[Event],
    write: Callable[[str], None],
    *,
    speed: float = 1.0,
    idle_limit: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Write the output events with their timing; the number of events written.

    ``idle_limit`` overrides the header's ``idle_time_limit``; ``None`` keeps it.
    """
    limit = idle_limit if idle_limit is not None else header.idle_time_limit
    written = 0
    for delay, event in delays(events, speed=speed, idle_limit=limit):
        if delay > 0:
            sleep(delay)
        write(event.data)
        written += 1
    return written
