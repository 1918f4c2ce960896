"""Encoding a session as asciicast v2, the format ``asciinema play`` and ``asciinema cat`` read.

A transcript is newline-delimited JSON: a header object, then one event array per line::

    {"version": 2, "width": 80, "height": 24, "timestamp": 1700000000, "env": {"TERM": "xterm", "SHELL": "/bin/sh"}}
    [0.012345, "o", "hello\\r\\n"]
    [1.500000, "r", "100x30"]
    [2.250000, "i", "ls\\r"]

``"o"`` is output, ``"i"`` input (written only when input recording is on: typed input includes
passwords), ``"r"`` a resize to ``COLSxROWS``. Times are seconds since the session started.

The encoder is deterministic: the caller passes every time, so tests and replays give the same
bytes. Terminal output is bytes cut anywhere, often inside a UTF-8 character; each stream is decoded
by an incremental decoder, which holds an incomplete character back until its next chunk, and
replaces bytes that are not UTF-8 with U+FFFD rather than failing the transcript.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from fleetops.common.terminal import check_size

ASCIICAST_VERSION = 2
OUTPUT = "o"
INPUT = "i"
RESIZE = "r"


class AsciicastEncoder:
    """Turns one session's events into asciicast v2 lines (UTF-8 bytes, each ending in ``\\n``).

    Args:
        width: terminal columns when the session starts.
        height: terminal rows when the session starts.
        timestamp: Unix time (seconds) the session started, for the header.
        term: the session's ``TERM``, or ``None`` when unknown.
        shell: the session's shell, or ``None`` when unknown.
        title: a title for players to show, or ``None``.
        record_input: whether :meth:`input` writes events; off by default because typed input
            includes passwords (which terminals do not echo, so output never shows them).

    Raises:
        InvalidInput: ``width`` or ``height`` is outside common/terminal.py's bound.
    """

    def __init__(
        self,
        width: int,
        height: int,
        *,
        timestamp: int | float,
        term: str | None = None,
        shell: str | None = None,
        title: str | None = None,
        record_input: bool = False,
    ) -> None:
        check_size(width, height)
        self._width = width
        self._height = height
        self._timestamp = int(timestamp)
        self._env = {name: value for name, value in (("TERM", term), ("SHELL", shell)) if value is not None}
        self._title = title
        self.record_input = record_input
        self._output = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._input = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._last_time = 0.0

    def header(self) -> bytes:
        """The header line; it must be the first line of the transcript."""
        header: dict[str, Any] = {
            "version": ASCIICAST_VERSION,
            "width": self._width,
            "height": self._height,
            "timestamp": self._timestamp,
            "env": self._env,
        }
        if self._title is not None:
            header["title"] = self._title
        return (json.dumps(header, ensure_ascii=False) + "\n").encode("utf-8")

    def output(self, elapsed: float, data: bytes) -> bytes:
        """An output event for ``data`` at ``elapsed`` seconds, or ``b""`` while it is only part of a character."""
        return self._event(elapsed, OUTPUT, self._output.decode(data))

    def input(self, elapsed: float, data: bytes) -> bytes:
        """An input event, or ``b""`` when input is not recorded (or ``data`` is part of a character)."""
        if not self.record_input:
            return b""
        return self._event(elapsed, INPUT, self._input.decode(data))

    def resize(self, elapsed: float, cols: int, rows: int) -> bytes:
        """A resize event to ``cols`` x ``rows``.

        Raises:
            InvalidInput: a dimension is outside common/terminal.py's bound.
        """
        check_size(cols, rows)
        return self._event(elapsed, RESIZE, f"{cols}x{rows}")

    def flush(self, elapsed: float) -> bytes:
        """Events for bytes still held back at the end of the session (an incomplete character).

        They cannot be completed any more, so they come out as U+FFFD.
        """
        lines = self._event(elapsed, OUTPUT, self._output.decode(b"", final=True))
        if self.record_input:
            lines += self._event(elapsed, INPUT, self._input.decode(b"", final=True))
        return lines

    def _event(self, elapsed: float, code: str, text: str) -> bytes:
        if not text:
            return b""
        # Players need times that never go back; a caller's clock step must not break playback.
        elapsed = max(float(elapsed), self._last_time)
        self._last_time = elapsed
        # A fixed six decimals: never an exponent (1e-06) that a strict player might refuse.
        return f"[{elapsed:.6f}, {json.dumps(code)}, {json.dumps(text, ensure_ascii=False)}]\n".encode()
