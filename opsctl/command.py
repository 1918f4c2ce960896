"""``opsctl run``: one command on many hosts, and ``opsctl run list|show|watch|output|cancel``.

How output and results are followed lives in :mod:`run_follow`; how a host's output is shown
(text or binary, cut or whole, JSON) in :mod:`run_output`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from fleetops.common import limits, rates
from fleetops.common.durations import format_seconds, parse_duration
from fleetops.common.errors import InvalidInput
from fleetops.opsctl import output
from fleetops.opsctl.client import OperatorClient
from fleetops.opsctl.hosts import add_target_arguments
from fleetops.opsctl.run_follow import (
    finished_line,
    follow_results,
    group_heading,
    result_key,
    stream_lines,
    stream_one,
    waiting_why,
)
from fleetops.opsctl.run_output import (
    FINAL,
    STATE,
    StreamSink,
    invocation_doc,
    is_final,
    print_streams,
    state_name,
)
from fleetops.v1 import operator_pb2

__all__ = [
    "FINAL",
    "STATE",
    "announce",
    "exit_status",
    "invocation_doc",
    "positive_seconds",
    "print_grouped",
    "register",
    "rewrite_argv",
    "summary",
    "wait",
]

SUBCOMMANDS = ("list", "show", "watch", "output", "cancel")
NAMES_SHOWN = 10  # name the hosts when at most this many match


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser(
        "run",
        help="run a command on hosts (also: run list|show ID|watch ID|output ID HOST|cancel ID)",
        description="Run one command on many hosts with rate control. On one host its output streams as it "
        "comes (like ssh); on many, each host's result shows as it finishes, or with --stream every output "
        "line as it comes, prefixed with its host. Manage commands with: opsctl run list | show ID | "
        "watch ID | output ID HOST [--stderr] [--follow] | cancel ID",
    )
    add_target_arguments(run, required=True)
    run.add_argument("--script", type=Path, help="a script file to run with the host's shell instead of a command")
    run.add_argument(
        "--doc",
        metavar="NAME[:VERSION]",
        help="run a document instead of a command (opsctl doc list); its default version unless one is named",
    )
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="K=V",
        help="a document parameter (repeatable); it reaches the script as $FLEETOPS_PARAM_K, never as script text",
    )
    run.add_argument(
        "--max-concurrency",
        default=rates.DEFAULT_MAX_CONCURRENCY,
        help=f"hosts at a time: a count (1-{limits.RATE_COUNT_MAX}) or a percentage (1%%-100%%) "
        f"(default {rates.DEFAULT_MAX_CONCURRENCY})",
    )
    run.add_argument(
        "--max-errors",
        default=rates.DEFAULT_MAX_ERRORS,
        help=f"stop sending after this many errors: a count (0-{limits.RATE_COUNT_MAX}) or 0%%-100%% "
        f"(default {rates.DEFAULT_MAX_ERRORS}: stop at the first error)",
    )
    run.add_argument(
        "--timeout",
        default="1h",
        help=f"execution timeout per host, 1s to {format_seconds(limits.TIMEOUT_SECONDS_MAX)} (default 1h)",
    )
    run.add_argument(
        "--delivery-timeout",
        default="10m",
        help="how long to wait for offline hosts, "
        f"1s to {format_seconds(limits.DELIVERY_TIMEOUT_SECONDS_MAX)} (default 10m)",
    )
    run.add_argument("--cwd", default="", help="working directory on the hosts")
    run.add_argument("--env", action="append", default=[], metavar="K=V", help="environment variable (repeatable)")
    run.add_argument("--as", dest="run_as", default="", metavar="USER", help="run as this user (POSIX hosts)")
    run.add_argument("--comment", default="")
    run.add_argument("--detach", action="store_true", help="print the command id and return; see opsctl run watch")
    add_stream_argument(run)
    output.add_output_argument(run)
    run.add_argument("argv", nargs="*", metavar="-- CMD ARGS")
    run.set_defaults(func=run_command)
    output.add_raw_argument(run)

    cmd = sub.add_parser("command", help="commands that were run (same as opsctl run list|show|...)")
    csub = cmd.add_subparsers(dest="command_command", required=True)
    p = csub.add_parser("list", help="recent commands")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--host", default="", metavar="HOST", help="only the commands sent to this host")
    output.add_output_argument(p)
    p.set_defaults(func=list_commands)
    p = csub.add_parser("show", help="a command and its per-host results (bytes of output so far while running)")
    p.add_argument("id", metavar="ID", help="the command id (opsctl run list)")
    output.add_output_argument(p)
    p.set_defaults(func=show_command)
    output.add_raw_argument(p)
    p = csub.add_parser("watch", help="follow a command to its end: each host's result as it finishes")
    p.add_argument("id", metavar="ID", help="the command id (opsctl run list)")
    add_stream_argument(p)
    output.add_output_argument(p)
    p.set_defaults(func=watch_command)
    output.add_raw_argument(p)
    p = csub.add_parser(
        "output",
        help="the whole output of one host, byte for byte when redirected (--follow: tail a running one)",
    )
    p.add_argument("id", metavar="ID", help="the command id (opsctl run list)")
    p.add_argument("host", metavar="HOST", help="the host's name or id")
    p.add_argument("--stderr", action="store_true", help="the standard error instead of the standard output")
    p.add_argument(
        "--follow", "-f", action="store_true", help="while the host runs it, keep printing output until it ends"
    )
    p.set_defaults(func=invocation_output)
    output.add_raw_argument(p)
    p = csub.add_parser("cancel", help="stop sending and stop running invocations")
    p.add_argument("id", metavar="ID", help="the command id (opsctl run list)")
    p.set_defaults(func=cancel_command)


def add_stream_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stream",
        action="store_true",
        help="print output lines as they come, each prefixed with its host (stderr lines to stderr)",
    )


def rewrite_argv(argv: list[str]) -> list[str]:
    """``opsctl run list`` is ``opsctl command list`` (``opsctl run -- list`` still runs ``list``)."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--profile":
            i += 2  # the global option's value
            continue
        if word == "run":
            if i + 1 < len(argv) and argv[i + 1] in SUBCOMMANDS:
                return [*argv[:i], "command", *argv[i + 1 :]]
            return argv
        if not word.startswith("-"):
            return argv
        i += 1
    return argv


def positive_seconds(text: str, flag: str, maximum: int = limits.TIMEOUT_SECONDS_MAX) -> int:
    """A duration flag's value in whole seconds, from 1s to ``maximum``.

    Raises:
        InvalidInput: not a duration, not positive, or over ``maximum`` (the message gives the bound).
    """
    try:
        seconds = int(parse_duration(text).total_seconds())
    except InvalidInput as exc:
        raise InvalidInput(f"{flag}: {exc.message}", exc.hint) from None
    if seconds <= 0:
        raise InvalidInput(f"{flag} must be positive", f"e.g. {flag} 10m")
    if seconds > maximum:
        raise InvalidInput(
            f"{flag} {text.strip()[:64]} is out of range: it must be from 1s to {format_seconds(maximum)}",
            f"e.g. {flag} 10m",
        )
    return seconds


def check_request(request: operator_pb2.RunCommandRequest) -> None:
    """The limits the controller applies (common/limits.py), checked before anything is sent.

    Raises:
        InvalidInput: a size over its limit or a number out of range, naming the limit and the size.
    """
    limits.check_argv(request.argv)
    limits.check_env(request.env)
    limits.SCRIPT_BYTES.check(len(request.script))
    limits.CWD_BYTES.check_text(request.cwd)
    limits.RUN_AS_BYTES.check_text(request.run_as)
    limits.COMMENT_BYTES.check_text(request.comment)
    limits.SELECTOR_BYTES.check_text(request.target.selector)
    limits.TARGET_HOSTS.check(len(request.target.hosts))
    rates.max_concurrency(request.max_concurrency)
    rates.max_errors(request.max_errors)


def key_values(items: Sequence[str], flag: str) -> dict[str, str]:
    """``K=V`` flags as a mapping (the last of a key wins); :class:`InvalidInput` naming a bad one."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"bad {flag} {item[:64]!r}", f"use {flag} NAME=VALUE")
        out[key] = value
    return out


def run_command(client: OperatorClient, args: argparse.Namespace) -> int:
    if args.doc:
        if args.argv or args.script:
            raise InvalidInput("give --doc or a command, not both", "opsctl run --doc NAME --param K=V --target SEL")
    elif bool(args.argv) == bool(args.script):
        raise InvalidInput("give a command after -- or --script FILE (not both)", "opsctl run --target SEL -- uptime")
    elif args.param:
        raise InvalidInput("--param is for documents", "add --doc NAME, or pass values with --env NAME=VALUE")
    check_follow_flags(args)
    script = None
    if args.script:
        try:
            limits.SCRIPT_BYTES.check(args.script.stat().st_size, f"script {args.script}")
            script = args.script.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read script {args.script}: {exc.strerror}") from exc
    env = key_values(args.env, "--env")
    request = operator_pb2.RunCommandRequest(
        document=args.doc or "",
        parameters=key_values(args.param, "--param"),
        target=operator_pb2.Target(selector=args.target, hosts=args.host, all=args.all),
        argv=args.argv,
        script=script or b"",
        cwd=args.cwd,
        env=env,
        run_as=args.run_as,
        max_concurrency=args.max_concurrency,
        max_errors=args.max_errors,
        timeout_seconds=positive_seconds(args.timeout, "--timeout"),
        delivery_timeout_seconds=positive_seconds(
            args.delivery_timeout, "--delivery-timeout", limits.DELIVERY_TIMEOUT_SECONDS_MAX
        ),
        comment=args.comment,
    )
    check_request(request)
    response = client.run_command(request)
    names = list(response.host_names)
    # One host, as text: its output streams to opsctl's stdout and stderr as ssh's would, so every
    # note of opsctl's own goes to stderr and `opsctl run --host web-1 -- cat f > copy` copies f.
    one_host = names[0] if len(names) == 1 and args.output == "text" and not args.stream else None
    info = announce(response, args.output, to_stderr=one_host is not None)
    if args.detach:
        print(response.command.id)
        return 0
    print(f"command {response.command.id}", file=info, flush=True)
    return follow(client, response.command.id, args.output, stream=args.stream, host=one_host)


def check_follow_flags(args: argparse.Namespace) -> None:
    """--stream prints text as it comes: it goes with neither -o json nor --detach.

    Raises:
        InvalidInput: naming the two flags and what each does.
    """
    if not getattr(args, "stream", False):
        return
    if args.output == "json":
        raise InvalidInput(
            "--stream prints output lines as text; it does not go with -o json",
            "-o json prints each host's result as one JSON document as soon as the host finishes",
        )
    if getattr(args, "detach", False):
        raise InvalidInput("--stream follows the output; --detach returns at once: give one of them")


def announce(response: operator_pb2.RunCommandResponse, fmt: str, *, to_stderr: bool = False) -> TextIO:
    """Print which hosts a new command matched; returns the stream for such notes (stderr under -o json)."""
    names = list(response.host_names)
    shown = f": {output.host_text(', '.join(names))}" if len(names) <= NAMES_SHOWN else ""
    info = sys.stderr if fmt == "json" or to_stderr else sys.stdout
    print(f"{output.plural(len(names), 'host')} matched{shown}", file=info, flush=True)
    return info


def follow(client: OperatorClient, command_id: str, fmt: str, *, stream: bool = False, host: str | None = None) -> int:
    """Follow a command to its end as the operator asked; its exit status (130 after Ctrl-C: it goes on).

    ``host``: the one host's output streams as it comes (like ssh). ``stream``: every host's output
    lines as they come, prefixed with its name. Otherwise each host's result as it finishes.
    """
    if host is not None:
        return follow_one(client, command_id, host)
    if stream:
        finished = stream_lines(client, command_id)
        if finished is None:
            return 130
        detail = client.get_command(command_id, include_output=False)
        seen = {inv.host_id for inv in finished}
        for inv in sorted(detail.invocations, key=lambda i: i.host_name):
            if is_final(inv) and inv.host_id not in seen:
                print(finished_line(inv, inv.host_name, sys.stdout), file=sys.stdout)
        print(summary(detail))
        return exit_status(detail)
    final = follow_results(client, command_id, fmt)
    if final is None:
        return 130
    if fmt == "text":
        print(summary(final))
    return exit_status(final)


def follow_one(client: OperatorClient, command_id: str, host: str) -> int:
    """``opsctl run`` on one host: its output as it comes, then a line on stderr unless it succeeded."""
    start = client.get_command(command_id, include_output=False)
    for inv in start.invocations:
        if inv.HasField("host_offline_since") and not is_final(inv):
            print(
                f"{output.host_text(host)}: {waiting_why(inv)}; the command waits for it up to its delivery "
                f"timeout ({format_seconds(start.command.delivery_timeout_seconds)}); Ctrl-C leaves it waiting",
                file=sys.stderr,
                flush=True,
            )
    if not stream_one(client, command_id, host):
        return 130
    detail = client.get_command(command_id, include_output=False)
    for inv in detail.invocations:
        if state_name(inv) != "success":
            print(finished_line(inv, inv.host_name, sys.stderr).removeprefix("── "), file=sys.stderr)
    return exit_status(detail)


def wait(client: OperatorClient, command_id: str, fmt: str) -> bool:
    """Follow a command's progress (a progress line on a terminal) until it ends, printing no results.

    Returns False when the operator pressed Ctrl-C: the command goes on, and how to follow or stop
    it has been printed.
    """
    return follow_results(client, command_id, fmt, show_results=False) is not None


def report(detail: operator_pb2.CommandDetail, fmt: str, out: TextIO = sys.stdout) -> int:
    """Every host's result at once (grouped by identical result in text), the summary; the exit status."""
    invocations = list(detail.invocations)
    if fmt == "json":
        for inv in invocations:
            print(json.dumps(invocation_doc(inv), sort_keys=True), file=out)
    else:
        print_grouped(invocations, out)
        print(summary(detail), file=out)
    return exit_status(detail)


def exit_status(detail: operator_pb2.CommandDetail) -> int:
    """0 when every host succeeded, else 1 (also when no host ran it)."""
    invocations = list(detail.invocations)
    return 0 if invocations and all(state_name(i) == "success" for i in invocations) else 1


def print_grouped(invocations: list[operator_pb2.Invocation], out: TextIO, *, stdout: bool = True) -> None:
    """Hosts with identical results are printed once: "── 27 hosts (...)" then the output.

    With ``stdout=False`` the standard output is neither shown nor compared (agent tasks write
    their machine-readable report there); the standard error still is.
    """
    groups: dict[tuple[Any, ...], list[operator_pb2.Invocation]] = defaultdict(list)
    for inv in invocations:
        key = result_key(inv)
        if not stdout:
            key = (*key[:4], b"", 0, *key[6:])
        groups[key].append(inv)
    for key, members in sorted(groups.items(), key=lambda g: -len(g[1])):
        print(group_heading(key[0], key[1], [i.host_name for i in members], out, NAMES_SHOWN), file=out)
        print_streams(members[0], members[0].command_id, out, stdout=stdout)


def summary(detail: operator_pb2.CommandDetail) -> str:
    counts: dict[str, int] = defaultdict(int)
    for inv in detail.invocations:
        counts[state_name(inv)] += 1
    parts = [f"{n} {state.replace('_', ' ')}" for state, n in sorted(counts.items(), key=lambda kv: -kv[1])]
    hosts = output.plural(detail.command.total, "host")
    return f"{detail.command.id}: {detail.command.status} on {hosts} ({', '.join(parts)})"


def script_or_argv(c: operator_pb2.Command) -> str:
    if c.document:
        return f"doc {c.document}"
    return output.command_line(c.argv) if c.argv else "(script)"


def list_commands(client: OperatorClient, args: argparse.Namespace) -> int:
    commands = client.list_commands(args.limit, args.host)
    output.emit(args, commands, lambda: print_commands(commands))
    return 0


def print_commands(commands: Sequence[operator_pb2.Command]) -> None:
    """The command table, as listed."""
    rows = [
        [
            c.id,
            output.when(c.created_at),
            c.created_by,
            c.status,
            f"{sum(n for s, n in c.counts.items() if s in FINAL)}/{c.total}",
            shorten(script_or_argv(c), 40),
            shorten(c.target, 30),
        ]
        for c in commands
    ]
    output.table(["ID", "CREATED", "BY", "STATUS", "DONE", "COMMAND", "TARGET"], rows, out=sys.stdout)


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def show_command(client: OperatorClient, args: argparse.Namespace) -> int:
    # The text view shows no output: it need not fetch the tails (up to 128 KiB per host).
    detail = client.get_command(args.id, include_output=args.output == "json")
    output.emit(args, detail, lambda: print_command(detail))
    return 0


def print_command(detail: operator_pb2.CommandDetail) -> None:
    """One command: what it runs, where, its limits, then each host's state (no output)."""
    c = detail.command
    print(f"command   {c.id}  ({c.status})")
    print(f"run       {script_or_argv(c)}{f'  as {c.run_as}' if c.run_as else ''}")
    print(f"target    {c.target}  ({output.plural(c.total, 'host')})")
    if c.parameters:
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(c.parameters.items()))
        print(f"params    {output.neutralize(shown)}")
    print(
        f"limits    max-concurrency {c.max_concurrency} ({c.concurrency_limit}), "
        f"max-errors {c.max_errors} ({c.error_limit}), timeout {format_seconds(c.timeout_seconds)}"
    )
    print(f"by        {c.created_by} at {output.when(c.created_at)}")
    rows = [
        [
            output.host_text(i.host_name),
            state_name(i),
            str(i.exit_code) if i.has_exit_code else "-",
            output.size(i.stdout_bytes),
            output.size(i.stderr_bytes),
            output.host_text(shorten(i.reason or ("" if is_final(i) else waiting_why(i)), 60)) or "-",
        ]
        for i in detail.invocations
    ]
    print()
    output.table(["HOST", "STATE", "EXIT", "STDOUT", "STDERR", "REASON"], rows, out=sys.stdout)
    if any(not is_final(i) for i in detail.invocations):
        print(f"\noutput so far: opsctl run output {c.id} HOST [--stderr] --follow")


def watch_command(client: OperatorClient, args: argparse.Namespace) -> int:
    check_follow_flags(args)
    return follow(client, args.id, args.output, stream=args.stream)


def invocation_output(client: OperatorClient, args: argparse.Namespace) -> int:
    """The host's whole stream: raw bytes when redirected; on a terminal text (escaped), never binary."""
    sink = StreamSink(sys.stdout, args.id, args.host, stderr=args.stderr)
    try:
        for chunk in client.invocation_output(args.id, args.host, stderr=args.stderr, follow=args.follow):
            sink.write(chunk.data, chunk.offset)
            if args.follow:
                sink.flush()
    except KeyboardInterrupt:
        sink.close()
        return 130
    for note in sink.close():
        print(output.host_text(note), file=sys.stderr)
    return 0


def cancel_command(client: OperatorClient, args: argparse.Namespace) -> int:
    c = client.cancel_command(args.id)
    print(f"cancelling {c.id}: nothing more is sent; running invocations are being stopped")
    return 0
