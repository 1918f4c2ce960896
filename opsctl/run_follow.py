"""Following a running command as ``opsctl run`` shows it.

Three ways, picked by ``opsctl run`` (see docs/run-command.md, "What you see"):

- :func:`stream_one`: one host's stdout and stderr as they arrive, like ``ssh host cmd``;
- :func:`stream_lines` (``--stream``): complete output lines from every host as they arrive, each
  prefixed with its host's name, like ``pssh -i`` or Salt's streaming returners;
- :func:`follow_results` (the default for many hosts): each host's result as it finishes, with a
  progress line on a terminal that names what is still pending and why.

Each returns None when the operator pressed Ctrl-C (the command goes on; how to follow or stop it
has been printed), else the invocations' final results.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from fleetops.opsctl import output
from fleetops.opsctl.client import OperatorClient
from fleetops.opsctl.run_output import (
    FINAL,
    StreamSink,
    as_text,
    invocation_doc,
    is_final,
    outcome,
    print_streams,
    save_command,
    state_name,
)
from fleetops.v1 import operator_pb2


def detached(command_id: str, err: TextIO) -> None:
    print(
        f"\ndetached; the command goes on. Follow it: opsctl run watch {command_id}; "
        f"stop it: opsctl run cancel {command_id}",
        file=err,
    )


# -- one host: like ssh ---------------------------------------------------------------------------


def stream_one(
    client: OperatorClient, command_id: str, host: str, out: TextIO | None = None, err: TextIO | None = None
) -> bool:
    """Write one host's stdout to ``out`` and its stderr to ``err`` as they arrive; notes go to ``err``.

    Returns False when the operator pressed Ctrl-C.
    """
    out, err = out or sys.stdout, err or sys.stderr
    sinks = {False: StreamSink(out, command_id, host), True: StreamSink(err, command_id, host, stderr=True)}
    try:
        for event in client.watch_output(command_id):
            if event.WhichOneof("body") == "output":
                sink = sinks[event.output.stderr]
                sink.write(event.output.data, event.output.offset)
                sink.flush()
    except KeyboardInterrupt:
        for sink in sinks.values():
            sink.close()
        detached(command_id, err)
        return False
    for sink in sinks.values():
        for note in sink.close():
            print(output.host_text(note, out=err), file=err)
    return True


# -- many hosts, --stream: prefixed lines ---------------------------------------------------------


class PrefixedLines:
    """One host's stream cut into complete lines, each printed as ``HOST: line`` as soon as it is whole.

    A partial line waits for its end (or for :meth:`finish`, when the host's result comes). A line
    longer than :data:`LONGEST` is printed in pieces, so memory stays bounded. A stream that turns
    out binary (a NUL byte or not UTF-8) is not printed further; :meth:`finish` notes it instead.
    """

    LONGEST = 64 * 1024

    def __init__(self, host: str, out: TextIO, command_id: str, *, stderr: bool = False) -> None:
        self.host = host
        self._out = out
        self._command_id = command_id
        self._stderr = stderr
        self._pending = bytearray()
        self.next_offset = 0
        self.skipped = 0
        self.binary = False

    def feed(self, data: bytes, offset: int | None = None) -> None:
        """Take ``data`` whose first byte is at ``offset`` in the stream (None or 0 later: right after the last)."""
        if offset:
            if offset > self.next_offset:
                self.skipped += offset - self.next_offset
                self._emit_pending()  # the rest of that line is in the gap
                self.next_offset = offset
            elif offset < self.next_offset:
                data = data[self.next_offset - offset :]
        self.next_offset += len(data)
        if self.binary or not data:
            return
        self._pending += data
        while True:
            end = self._pending.find(b"\n")
            if end < 0:
                break
            line = bytes(self._pending[:end])
            del self._pending[: end + 1]
            self._emit(line)
            if self.binary:
                return
        if len(self._pending) > self.LONGEST:
            cut = self.LONGEST
            while cut > self.LONGEST - 3 and 0x80 <= self._pending[cut] <= 0xBF:
                cut -= 1  # never inside a character
            line = bytes(self._pending[:cut])
            del self._pending[:cut]
            self._emit(line)

    def _emit_pending(self) -> None:
        if self._pending and not self.binary:
            line = bytes(self._pending)
            self._pending.clear()
            self._emit(line)

    def _emit(self, line: bytes) -> None:
        text = as_text(line)
        if text is None:
            self.binary = True
            self._pending.clear()
            return
        prefix = output.host_text(self.host, out=self._out)
        print(f"{prefix}: {output.host_text(text.rstrip(chr(13)), out=self._out, keep_layout=True)}", file=self._out)

    def finish(self) -> list[str]:
        """Print the partial last line; the notes about this stream (binary, gaps)."""
        self._emit_pending()
        self._out.flush()
        save = save_command(self._command_id, self.host, stderr=self._stderr)
        name = "stderr" if self._stderr else "stdout"
        notes = []
        if self.binary:
            notes.append(
                f"{self.host}: {name} is binary, {output.size(self.next_offset)} ({self.next_offset} bytes) in all; "
                f"save it: {save}"
            )
        if self.skipped:
            notes.append(
                f"{self.host}: {output.size(self.skipped)} of {name} did not reach opsctl while it streamed; "
                f"all of it: {save}"
            )
        return notes


def stream_lines(
    client: OperatorClient, command_id: str, out: TextIO | None = None, err: TextIO | None = None
) -> list[operator_pb2.Invocation] | None:
    """Print every host's output lines as they arrive (``HOST: line``; stderr lines to ``err``), and
    ``── HOST: outcome`` as each host finishes. Returns the finished invocations, None on Ctrl-C.
    """
    out, err = out or sys.stdout, err or sys.stderr
    streams: dict[tuple[str, bool], PrefixedLines] = {}
    finished: list[operator_pb2.Invocation] = []

    def lines(host: str, stderr: bool) -> PrefixedLines:
        key = (host, stderr)
        if key not in streams:
            streams[key] = PrefixedLines(host, err if stderr else out, command_id, stderr=stderr)
        return streams[key]

    try:
        for event in client.watch_output(command_id):
            body = event.WhichOneof("body")
            if body == "output":
                lines(event.host_name, event.output.stderr).feed(event.output.data, event.output.offset)
                (err if event.output.stderr else out).flush()
            elif body == "finished":
                inv = event.finished
                host = event.host_name or inv.host_name
                notes = [*lines(host, False).finish(), *lines(host, True).finish()]
                err.flush()
                for note in notes:
                    print(output.host_text(note, out=out), file=out)
                print(finished_line(inv, host, out), file=out, flush=True)
                finished.append(inv)
    except KeyboardInterrupt:
        detached(command_id, err)
        return None
    return finished


def finished_line(inv: operator_pb2.Invocation, host: str, out: TextIO) -> str:
    reason = f": {inv.reason}" if inv.reason else ""
    return f"── {output.host_text(host, out=out)}: {outcome(inv)}{output.host_text(reason, out=out)}"


# -- many hosts: results as each finishes -------------------------------------------------------


def result_key(inv: operator_pb2.Invocation) -> tuple[Any, ...]:
    """Invocations with equal keys show the same result (state, exit code, reason, output)."""
    return (
        state_name(inv),
        inv.exit_code if inv.has_exit_code else None,
        inv.reason,
        inv.rebooted,
        inv.stdout_tail,
        inv.stdout_bytes,
        inv.stderr_tail,
        inv.stderr_bytes,
    )


def group_heading(state: str, exit_code: int | None, hosts: list[str], out: TextIO, names_shown: int = 10) -> str:
    """``── 27 hosts (web-1, ...)``, ``── 3 hosts exit 1 (...)``, ``── 1 host undeliverable (db-1)``."""
    what = output.plural(len(hosts), "host")
    if state != "success":
        what += f" exit {exit_code}" if state == "failed" and exit_code not in (None, 0) else f" {state}"
    ordered = sorted(hosts)
    names = ", ".join(ordered) if len(ordered) <= names_shown else f"{', '.join(ordered[:3])}, ..."
    return f"── {what} ({output.host_text(names, out=out)})"


class ResultPrinter:
    """Prints each host's result once, as it finishes.

    Text: ``── HOST`` (or ``── HOST exit 3``) then its reason and output; a host whose result equals
    an earlier one's prints one line (``── web-2: same as web-1``), and :meth:`recap` lists the
    hosts per result at the end. JSON: one document per host (:func:`invocation_doc`).
    """

    def __init__(self, command_id: str, fmt: str, out: TextIO) -> None:
        self._command_id = command_id
        self._fmt = fmt
        self._out = out
        self._groups: dict[tuple[Any, ...], list[str]] = {}
        self.printed: set[str] = set()

    def add(self, inv: operator_pb2.Invocation) -> None:
        if inv.host_id in self.printed:
            return
        self.printed.add(inv.host_id)
        out = self._out
        if self._fmt == "json":
            print(json.dumps(invocation_doc(inv), sort_keys=True), file=out, flush=True)
            return
        key = result_key(inv)
        host = output.host_text(inv.host_name, out=out)
        same = self._groups.get(key)
        if same:
            print(f"── {host}: same as {output.host_text(same[0], out=out)}", file=out)
        else:
            state = state_name(inv)
            print(f"── {host}{'' if state == 'success' else ' ' + outcome(inv)}", file=out)
            print_streams(inv, self._command_id, out)
        self._groups.setdefault(key, []).append(inv.host_name)
        out.flush()

    def recap(self) -> None:
        """The hosts per result, largest group first (text, when more than one host finished)."""
        if self._fmt == "json" or sum(len(h) for h in self._groups.values()) < 2:
            return
        for key, hosts in sorted(self._groups.items(), key=lambda g: -len(g[1])):
            print(group_heading(key[0], key[1], hosts, self._out), file=self._out)


def clock(ts: Any, now: datetime | None = None) -> str:
    """A Timestamp as ``12:01:07Z`` when it is today (UTC), else ``2026-03-01 12:01:07Z``."""
    moment = ts.ToDatetime(tzinfo=UTC)
    if moment.date() == (now or datetime.now(UTC)).date():
        return moment.strftime("%H:%M:%SZ")
    return output.when(ts)


def waiting_why(inv: operator_pb2.Invocation, now: datetime | None = None) -> str:
    """Why a host has not finished, in words: ``host offline since 12:01:07Z``, ``not yet sent``..."""
    if inv.HasField("host_offline_since"):
        return f"host offline since {clock(inv.host_offline_since, now)}"
    return inv.waiting_reason or state_name(inv)


def _waiting_order(inv: operator_pb2.Invocation) -> tuple[int, str]:
    """Offline hosts first (they may hold the command longest), then unsent ones, then the rest."""
    if inv.HasField("host_offline_since"):
        return (0, inv.host_name)
    if inv.waiting_reason.startswith("not yet sent") or state_name(inv) == "pending":
        return (1, inv.host_name)
    return (2, inv.host_name)


def progress_text(
    counts: dict[str, int],
    total: int,
    waiting: Iterable[operator_pb2.Invocation],
    width: int = 100,
    now: datetime | None = None,
) -> str:
    """``3/5 done · 1 running · 1 pending · web-4: host offline since 12:01:07Z · web-5: not yet sent``.

    As many waiting hosts are named as fit in ``width`` characters; ``+N more`` counts the rest.
    """
    done = sum(n for state, n in counts.items() if state in FINAL)
    failed = sum(n for state, n in counts.items() if state in FINAL and state != "success")
    running = counts.get("delivered", 0) + counts.get("running", 0)
    pending = max(0, total - done - running)
    parts = [f"{done}/{total} done" + (f" ({failed} failed)" if failed else "")]
    parts += [f"{n} {what}" for n, what in ((running, "running"), (pending, "pending")) if n]
    text = " · ".join(parts)
    named = sorted(waiting, key=_waiting_order)
    for i, inv in enumerate(named):
        item = f" · {output.host_text(inv.host_name)}: {output.host_text(waiting_why(inv, now))}"
        rest = len(named) - i - 1
        more = f" · +{rest} more" if rest else ""
        if len(text) + len(item) + len(more) > width:
            return text + f" · +{len(named) - i} more"
        text += item
    return text


class ProgressLine:
    """One line redrawn on a terminal (stderr), cleared while results are printed."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._shown = False

    def draw(self, text: str) -> None:
        width = shutil.get_terminal_size((100, 24)).columns - 1
        self._stream.write("\r" + text[:width] + "\x1b[K")
        self._stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown = False


def has_untold_output(inv: operator_pb2.Invocation) -> bool:
    """The invocation wrote output its message does not carry (a watch or listing without tails)."""
    return bool((inv.stdout_bytes and not inv.stdout_tail) or (inv.stderr_bytes and not inv.stderr_tail))


def follow_results(
    client: OperatorClient,
    command_id: str,
    fmt: str,
    out: TextIO | None = None,
    err: TextIO | None = None,
    *,
    show_results: bool = True,
) -> operator_pb2.CommandDetail | None:
    """Follow a command to its end: results as each host finishes (unless ``show_results`` is False),
    and on a terminal a progress line naming what is pending and why.

    Returns the command's final detail (without output tails), or None when the operator pressed
    Ctrl-C. Results a watch did not carry (an older controller, or tails it left out) are printed
    at the end from GetCommand.
    """
    out, err = out or sys.stdout, err or sys.stderr
    progress = ProgressLine(err) if output.is_terminal(err) and fmt == "text" else None
    printer = ResultPrinter(command_id, fmt, out) if show_results else None
    waiting: dict[str, operator_pb2.Invocation] = {}
    deferred = False
    try:
        for detail in client.watch_command(command_id, include_output=show_results):
            ready = []
            for inv in detail.invocations:
                if is_final(inv):
                    waiting.pop(inv.host_id, None)
                    if printer is not None and inv.host_id not in printer.printed:
                        if has_untold_output(inv):
                            deferred = True  # the watch left its output out: printed from GetCommand below
                        else:
                            ready.append(inv)
                else:
                    waiting[inv.host_id] = inv
            if progress is not None and ready:
                progress.clear()
            for inv in sorted(ready, key=lambda i: i.host_name):
                printer.add(inv)  # type: ignore[union-attr]  # ready is only filled with a printer
            if progress is not None and not detail.done:
                width = shutil.get_terminal_size((100, 24)).columns - 1
                progress.draw(progress_text(dict(detail.command.counts), detail.command.total, waiting.values(), width))
            if detail.done:
                break
    except KeyboardInterrupt:
        if progress is not None:
            progress.clear()
        detached(command_id, err)
        return None
    if progress is not None:
        progress.clear()
    final = client.get_command(command_id, include_output=False)
    if printer is not None:
        unprinted = [i for i in final.invocations if is_final(i) and i.host_id not in printer.printed]
        if unprinted or deferred:
            full = client.get_command(command_id, include_output=True)
            for inv in sorted(full.invocations, key=lambda i: i.host_name):
                if is_final(inv):
                    printer.add(inv)
        printer.recap()
    return final
