"""``opsctl session HOST``: an interactive shell on a host; ``opsctl session list|show|kill|play|export``.

The interactive client itself is :mod:`fleetops.opsctl.terminal_session`; the transcript player's
parsing and timing is :mod:`fleetops.opsctl.asciicast_player`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import secrets
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleetops.common.errors import InternalError, InvalidInput
from fleetops.opsctl import asciicast_player, output
from fleetops.opsctl.client import OperatorClient, aio_channel
from fleetops.opsctl.terminal_session import SessionClient, Terminal, start_request
from fleetops.v1 import operator_pb2, operator_pb2_grpc, session_pb2

CONNECT = "connect"
#: Words taken as a subcommand after ``opsctl session``; any other word is a host.
SUBCOMMANDS = (CONNECT, "list", "show", "kill", "play", "export")

USAGE = """opsctl session HOST [--as USER] [--command CMD] [--record-input]
       opsctl session connect HOST [...]    (the same, for a host named like a subcommand)
       opsctl session list [--active] [--host HOST] [--limit N] [-o text|json]
       opsctl session show ID [-o text|json]
       opsctl session kill ID
       opsctl session play ID [--speed N] [--idle-limit SECONDS]
       opsctl session export ID FILE|-"""

DESCRIPTION = """\
An interactive shell on a host, brokered and recorded by the controller (docs/sessions.md).

The local terminal is in raw mode while the session runs: Ctrl-C, Ctrl-Z and every other key go to
the host. The remote exit code is opsctl's; 255 when the session is lost.

The word after 'session' is a subcommand only when it is one of: connect, list, show, kill, play,
export; any other word is a host. Options go after HOST. To reach a host named like a subcommand,
use 'opsctl session connect HOST' (e.g. opsctl session connect list)."""


class _HostOrSubcommand(argparse._SubParsersAction):  # typeshed's generic is not subscriptable at runtime
    """Subparsers where a word that names no subcommand is a HOST for ``connect``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.choices = None  # type: ignore[assignment]  # None: argparse checks no choices, any word is valid

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        values = list(values)
        if values and values[0] not in self._name_parser_map:
            values = [CONNECT, *values]
        super().__call__(parser, namespace, values, option_string)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    session = sub.add_parser(
        "session",
        help="an interactive shell on a host (also: session list|show ID|kill ID|play ID|export ID)",
        usage=USAGE,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ssub = session.add_subparsers(
        dest="session_command",
        metavar="HOST | SUBCOMMAND",
        action=_HostOrSubcommand,
        required=True,
        prog=session.prog,  # not the multi-line usage: "opsctl session connect", "opsctl session list"...
    )

    p = ssub.add_parser(
        CONNECT,
        help="open a session on HOST (the default: 'opsctl session HOST')",
        description="Open an interactive session on HOST. 'opsctl session HOST' is the same; "
        "use 'opsctl session connect HOST' for a host named like a subcommand.",
    )
    p.add_argument("host", metavar="HOST", help="host name or id")
    p.add_argument("--as", dest="run_as", default="", metavar="USER", help="the login shell of USER (agent as root)")
    p.add_argument(
        "--command", dest="remote_command", default="", metavar="CMD", help="run CMD on the terminal instead of a shell"
    )
    p.add_argument(
        "--record-input", action="store_true", help="also record keystrokes in the transcript (passwords too!)"
    )
    p.set_defaults(func=connect)

    p = ssub.add_parser("list", help="recent sessions, newest first")
    p.add_argument("--active", action="store_true", help="only sessions that have not ended")
    p.add_argument("--host", default="", metavar="HOST", help="only sessions on this host")
    p.add_argument("--limit", type=int, default=50)
    output.add_output_argument(p)
    p.set_defaults(func=list_sessions)

    p = ssub.add_parser("show", help="one session and its transcript")
    p.add_argument("id")
    output.add_output_argument(p)
    p.set_defaults(func=show_session)

    p = ssub.add_parser("kill", help="end a session: its processes on the host are hung up")
    p.add_argument("id")
    p.set_defaults(func=kill_session)

    p = ssub.add_parser("play", help="replay a session's transcript on this terminal")
    p.add_argument("id")
    p.add_argument("--speed", type=float, default=1.0, help="playback speed factor (default 1)")
    p.add_argument(
        "--idle-limit", type=float, default=None, metavar="SECONDS", help="cap every pause at this many seconds"
    )
    p.set_defaults(func=play_session)

    p = ssub.add_parser("export", help="save a session's asciicast v2 transcript (asciinema play FILE)")
    p.add_argument("id")
    # A positional, not -o: -o means the output format (text|json) on every opsctl command.
    p.add_argument("file", metavar="FILE", help="the file to write, or - for stdout")
    p.set_defaults(func=export_session)


# -- the interactive session -------------------------------------------------------------------
def connect(client: OperatorClient, args: argparse.Namespace) -> int:
    terminal = Terminal()
    request = start_request(
        args.host,
        run_as=args.run_as,
        command=args.remote_command,
        record_input=args.record_input,
        size=terminal.window_size(),
    )
    return asyncio.run(_connect(client, request, terminal))


async def _connect(client: OperatorClient, request: operator_pb2.StartSessionRequest, terminal: Terminal) -> int:
    channel = aio_channel(client.profile)
    try:
        stub = operator_pb2_grpc.OperatorServiceStub(channel)
        session = SessionClient(
            request, lambda: stub.Session(), terminal, peer=f"the controller at {client.profile.controller}"
        )
        return await session.run()
    finally:
        await channel.close(grace=None)


# -- records ----------------------------------------------------------------------------------
def list_sessions(client: OperatorClient, args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise InvalidInput("--limit must be at least 1")
    sessions = client.list_sessions(active_only=args.active, host=args.host, limit=args.limit)
    output.emit(args, sessions, lambda: print_sessions(sessions))
    return 0


def print_sessions(sessions: Sequence[operator_pb2.SessionInfo]) -> None:
    """The session table (host names as the hosts reported them, escaped)."""
    rows = [
        [
            s.id,
            output.host_text(s.host_name or s.host_id),  # a name the host chose: escaped
            s.operator,
            s.run_as or "-",
            _kind(s),
            output.when(s.started_at),
            duration(s),
            s.state or "-",
            s.end_reason or "-",
            str(s.exit_code) if s.has_exit_code else "-",
        ]
        for s in sessions
    ]
    output.table(
        ["ID", "HOST", "OPERATOR", "AS", "KIND", "STARTED", "DURATION", "STATE", "REASON", "EXIT"], rows, out=sys.stdout
    )
    if not sessions:
        print("(no sessions)")


def _kind(s: operator_pb2.SessionInfo) -> str:
    """``shell`` (opsctl session, recorded) or ``ssh`` (opsctl proxy: stock ssh, scp, sftp)."""
    return "ssh" if s.kind == session_pb2.SESSION_KIND_SSH else "shell"


def duration(s: operator_pb2.SessionInfo, now: datetime | None = None) -> str:
    """How long the session ran (ended), or has been running so far (``12m+``); ``-`` when not started."""
    if not s.started_at.seconds and not s.started_at.nanos:
        return "-"
    started = s.started_at.ToDatetime(tzinfo=UTC)
    if s.ended_at.seconds or s.ended_at.nanos:
        return span((s.ended_at.ToDatetime(tzinfo=UTC) - started).total_seconds())
    if s.state == "ended":
        return "-"
    return span(((now or datetime.now(UTC)) - started).total_seconds()) + "+"


def span(seconds: float) -> str:
    """``45s``, ``3m12s``, ``2h05m``, ``3d4h``."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def show_session(client: OperatorClient, args: argparse.Namespace) -> int:
    s = client.get_session(args.id)
    output.emit(args, s, lambda: print_session(s))
    return 0


def print_session(s: operator_pb2.SessionInfo) -> None:
    """One session's fields, its transcript's included."""
    lines = [
        ("session", s.id),
        ("state", s.state or "-"),
        ("host", f"{output.host_text(s.host_name)} ({s.host_id})" if s.host_name else s.host_id or "-"),
        ("operator", s.operator or "-"),
        ("as", s.run_as or "(the agent's user)"),
        ("kind", _kind(s)),
        ("command", s.command or "(login shell)"),
        ("terminal", f"{s.cols}x{s.rows} {s.term}".strip()),
        ("started", output.when(s.started_at)),
        ("ended", output.when(s.ended_at)),
        ("duration", duration(s)),
        ("end reason", s.end_reason or "-"),
        ("end message", s.end_message or "-"),
        ("exit code", str(s.exit_code) if s.has_exit_code else "-"),
        ("input recorded", "yes" if s.record_input else "no"),
        ("transcript", s.transcript_key or "-"),
        ("transcript state", s.transcript_state or "-"),
        ("transcript size", output.size(s.transcript_size) if s.transcript_size else "-"),
        ("transcript sha256", s.transcript_sha256 or "-"),
    ]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {value}")


def kill_session(client: OperatorClient, args: argparse.Namespace) -> int:
    s = client.kill_session(args.id)
    where = s.host_name or s.host_id
    if s.state == "ended" and s.end_reason not in ("", "killed"):
        print(f"session {s.id} on {where} had already ended ({s.end_reason})")
    elif s.state == "ended":
        print(f"killed session {s.id} on {where}: its processes were hung up")
    else:
        print(f"killing session {s.id} on {where}: its processes are hung up (SIGHUP, then SIGKILL after 5 s)")
    return 0


# -- transcripts ------------------------------------------------------------------------------
def play_session(client: OperatorClient, args: argparse.Namespace) -> int:
    # Check the options before fetching anything.
    list(asciicast_player.delays((), speed=args.speed, idle_limit=args.idle_limit))
    sink = sys.stdout.buffer

    def write(text: str) -> None:
        sink.write(text.encode("utf-8", errors="replace"))
        sink.flush()

    try:
        header, events = asciicast_player.parse(asciicast_player.split_lines(client.session_transcript(args.id)))
        asciicast_player.play(header, events, write, speed=args.speed, idle_limit=args.idle_limit)
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):
            sink.write(b"\x1b[0m\r\n")  # plain attributes, a fresh line
            sink.flush()
        return 130
    return 0


def export_session(client: OperatorClient, args: argparse.Namespace) -> int:
    info = client.get_session(args.id)
    chunks = client.session_transcript(args.id)
    if args.file == "-":
        digest, size = _copy(chunks, sys.stdout.buffer)
        _verify(info, digest, size, "the bytes written to stdout are not the recorded transcript")
        return 0
    path = Path(args.file)
    size = export_to_file(info, chunks, path)
    print(f"wrote {path} ({output.size(size)}); play it with: asciinema play {path}", file=sys.stderr)
    return 0


def export_to_file(info: operator_pb2.SessionInfo, chunks: Iterable[bytes], path: Path) -> int:
    """Write the transcript to ``path`` atomically (a temporary file, verified, then renamed); its size.

    The file is readable by the owner only: a session's output may hold secrets.

    Raises:
        InvalidInput: ``path`` cannot be written.
        InternalError: what arrived does not match the SHA-256 (or size) recorded for the transcript;
            nothing is left behind.
    """
    directory = path.parent
    tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o600)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}", "check that the directory exists") from exc
    try:
        with os.fdopen(fd, "wb") as sink:
            digest, size = _copy(chunks, sink)
            sink.flush()
            os.fsync(sink.fileno())
        _verify(info, digest, size, f"nothing was written to {path}")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return size


def _copy(chunks: Iterable[bytes], sink: Any) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        sink.write(chunk)
        digest.update(chunk)
        size += len(chunk)
    sink.flush()
    return digest.hexdigest(), size


def _verify(info: operator_pb2.SessionInfo, sha256: str, size: int, outcome: str) -> None:
    """Raise when the bytes received are not the transcript the session record describes."""
    if not info.transcript_sha256:
        return  # not complete yet (recording): nothing to compare with
    if sha256 != info.transcript_sha256.lower() or (info.transcript_size and size != info.transcript_size):
        raise InternalError(
            f"the transcript of session {info.id} does not match its record: received {output.plural(size, 'byte')} "
            f"with SHA-256 {sha256}, recorded {output.plural(info.transcript_size, 'byte')} with SHA-256 "
            f"{info.transcript_sha256}",
            f"{outcome}. The stored copy may be damaged or cut short: retry, then check the object store "
            "and the session.end audit event",
        )
