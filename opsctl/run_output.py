"""How a host's command output is shown: text or binary, whole or cut, for people and for programs.

The controller keeps the last 64 KiB of each stream in an invocation's tail; the whole stream is
read with ``opsctl run output ID HOST``. Every rule about what a person sees of that tail lives here:

- output that holds a NUL byte or is not UTF-8 is **binary**: never printed to a terminal; a note
  gives its size and the command that saves it;
- a cut tail starts at its first whole line and says it was cut, how much of how much is shown,
  and how to get all of it;
- in JSON, text stays a string and anything else travels as base64 in ``<stream>_base64``.
"""

from __future__ import annotations

import base64
import codecs
from dataclasses import dataclass
from typing import Any, BinaryIO, TextIO

from fleetops.opsctl import output
from fleetops.v1 import operator_pb2

#: Invocation states as opsctl prints them, text and JSON alike (output.enum_word).
STATE = {v.number: str(output.enum_word(v.type, v.number)) for v in operator_pb2.InvocationState.DESCRIPTOR.values}
FINAL = frozenset({"success", "failed", "timed_out", "cancelled", "undeliverable", "not_started"})


def state_name(inv: operator_pb2.Invocation) -> str:
    return STATE.get(inv.state, "unknown")


def is_final(inv: operator_pb2.Invocation) -> bool:
    return state_name(inv) in FINAL


def save_command(command_id: str, host: str, *, stderr: bool = False) -> str:
    """The command line that writes one host's whole stream to a file."""
    argv = ["opsctl", "run", "output", command_id, host, *(["--stderr"] if stderr else [])]
    return f"{output.command_line(argv)} > FILE"


def whole_characters(tail: bytes, total: int) -> bytes:
    """A tail that was cut (``total`` > its length) without the piece of a character it may start with."""
    if total <= len(tail):
        return tail
    skip = 0
    while skip < min(3, len(tail)) and 0x80 <= tail[skip] <= 0xBF:  # UTF-8 continuation bytes
        skip += 1
    return tail[skip:]


def as_text(data: bytes) -> str | None:
    """``data`` as text, or None when it is binary (a NUL byte, or not UTF-8)."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class ShownOutput:
    """What a person is shown of one stream's tail."""

    text: str | None  # None: binary
    total: int  # bytes the stream had in all
    shown: int  # bytes of it in text (when cut: from a line boundary)

    @property
    def cut(self) -> bool:
        return self.shown < self.total


def shown_output(tail: bytes, total: int) -> ShownOutput:
    """The part of a tail to print: all of it, or (when the stream was longer) from its first whole line.

    A cut tail with no line break at all is shown from its first whole character.
    """
    total = max(total, len(tail))
    data = whole_characters(tail, total)
    text = as_text(data)
    if text is None:
        return ShownOutput(None, total, 0)
    if total > len(data):
        newline = text.find("\n")
        if 0 <= newline < len(text) - 1:
            text = text[newline + 1 :]
    return ShownOutput(text, total, len(text.encode()))


def output_notes(shown: ShownOutput, command_id: str, host: str, *, stderr: bool = False) -> list[str]:
    """The notes that go with a shown tail: binary, or cut (empty when it is shown whole)."""
    save = save_command(command_id, host, stderr=stderr)
    if shown.text is None:
        return [f"binary, {output.size(shown.total)} ({shown.total} bytes); save it: {save}"]
    if shown.cut:
        return [
            f"… output cut: showing the last {output.size(shown.shown)} of {output.size(shown.total)}; "
            f"all of it: {save}"
        ]
    return []


def stream_doc(name: str, tail: bytes, total: int) -> dict[str, Any]:
    """One stream's JSON fields: ``<name>`` text (null when binary), ``<name>_base64`` (null when text), bytes.

    A cut tail's text starts at its first whole character; ``<name>_base64`` carries the tail's bytes
    exactly as the controller kept them.
    """
    text = as_text(whole_characters(tail, total))
    return {
        name: text,
        f"{name}_base64": None if text is not None else base64.b64encode(tail).decode("ascii"),
        f"{name}_bytes": max(total, len(tail)),
        f"{name}_truncated": total > len(tail),
    }


def invocation_doc(inv: operator_pb2.Invocation) -> dict[str, Any]:
    """One host's result as ``opsctl run -o json`` prints it (one document per line)."""
    return {
        "host": inv.host_name,
        "host_id": inv.host_id,
        "state": state_name(inv),
        "exit_code": inv.exit_code if inv.has_exit_code else None,
        "reason": inv.reason,
        **stream_doc("stdout", inv.stdout_tail, inv.stdout_bytes),
        **stream_doc("stderr", inv.stderr_tail, inv.stderr_bytes),
        "truncated": inv.stdout_bytes > len(inv.stdout_tail) or inv.stderr_bytes > len(inv.stderr_tail),
        "rebooted": inv.rebooted,
    }


def outcome(inv: operator_pb2.Invocation) -> str:
    """A final invocation in a few words: ``success``, ``exit 3``, ``timed out``, ``undeliverable``."""
    state = state_name(inv)
    if state == "failed" and inv.has_exit_code and inv.exit_code != 0:
        return f"exit {inv.exit_code}"
    return state.replace("_", " ")


def print_streams(
    inv: operator_pb2.Invocation, command_id: str, out: TextIO, *, indent: str = "   ", stdout: bool = True
) -> None:
    """An invocation's reason and output tails, indented, with the cut and binary notes.

    With ``stdout=False`` the standard output is not shown (agent tasks write a machine-readable
    report there); the standard error still is.
    """
    if inv.reason:
        print(f"{indent}{output.host_text(inv.reason, out=out)}", file=out)
    streams = [("", inv.stdout_tail, inv.stdout_bytes, False)] if stdout else []
    streams.append(("stderr: ", inv.stderr_tail, inv.stderr_bytes, True))
    for label, tail, total, is_stderr in streams:
        if not total and not tail:
            continue
        shown = shown_output(tail, total)
        notes = output_notes(shown, command_id, inv.host_name, stderr=is_stderr)
        if shown.cut or shown.text is None:
            for note in notes:
                print(f"{indent}{label}{note}", file=out)
        if shown.text:
            for line in shown.text.rstrip("\n").splitlines() or [""]:
                print(f"{indent}{label}{output.host_text(line, out=out, keep_layout=True)}", file=out)


class StreamSink:
    """One host's stream written as it arrives, as ``ssh host cmd`` would: byte for byte unless on a terminal.

    On a terminal (without ``--raw``) bytes are decoded incrementally and control characters escaped;
    once the stream shows it is binary (a NUL byte, or not UTF-8) nothing more of it is written and
    :meth:`close` returns a note with its size and the command that saves it. Gaps (bytes the
    controller did not pass on, see ``OutputData.skipped``) are noted too.
    """

    def __init__(self, out: TextIO, command_id: str, host: str, *, stderr: bool = False) -> None:
        self._out = out
        self._command_id = command_id
        self._host = host
        self._stderr = stderr
        self._terminal = output.is_terminal(out) and not output.RAW
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self.binary_at: int | None = None  # the offset where the stream turned out binary
        self.next_offset = 0  # the stream offset the next byte written has
        self.skipped = 0  # bytes of the stream this sink never got

    def write(self, data: bytes, offset: int | None = None) -> None:
        """Write ``data`` whose first byte is at ``offset`` in the stream.

        ``offset`` None or 0 after the first bytes (a controller that sends no offsets): right after the last.
        """
        if offset:
            if offset > self.next_offset:
                self.skipped += offset - self.next_offset
                self.next_offset = offset
                self._decoder.reset()  # the gap may have cut a character
            elif offset < self.next_offset:  # a byte this sink already has: never write it twice
                data = data[self.next_offset - offset :]
        if not data:
            return
        start = self.next_offset
        self.next_offset += len(data)
        if self.binary_at is not None:
            return
        if not self._terminal:
            binary: BinaryIO | None = getattr(self._out, "buffer", None)
            if binary is not None:
                self._out.flush()  # text written before (notes) goes first
                binary.write(data)
            else:  # a text-only stream (tests): the bytes as text, lossless for UTF-8
                self._out.write(data.decode("utf-8", errors="surrogateescape"))
            return
        # The text before the first NUL byte or bad sequence is written; nothing after it.
        nul = data.find(b"\x00")
        buffered = len(self._decoder.getstate()[0])  # the start of a character split between chunks
        try:
            text = self._decoder.decode(data if nul < 0 else data[:nul])
            if nul >= 0:
                self.binary_at = start + nul
        except UnicodeDecodeError as exc:
            text = exc.object[: exc.start].decode("utf-8")
            self.binary_at = start - buffered + exc.start
        self._out.write(output.neutralize(text, keep_layout=True))

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> list[str]:
        """Flush; the notes to print about this stream (binary, gaps), each naming how to get it all."""
        notes: list[str] = []
        if self._terminal and self.binary_at is None:
            try:
                self._out.write(self._decoder.decode(b"", final=True))
            except UnicodeDecodeError:
                self.binary_at = self.next_offset
        self._out.flush()
        save = save_command(self._command_id, self._host, stderr=self._stderr)
        name = "stderr" if self._stderr else "stdout"
        if self.binary_at is not None:
            where = f" from byte {self.binary_at} on" if self.binary_at else ""
            notes.append(
                f"{self._host}: {name} is binary{where}, {output.size(self.next_offset)} "
                f"({self.next_offset} bytes) in all; save it: {save}"
            )
        if self.skipped:
            notes.append(
                f"{self._host}: {output.size(self.skipped)} of {name} did not reach opsctl while it streamed; "
                f"all of it: {save}"
            )
        return notes
