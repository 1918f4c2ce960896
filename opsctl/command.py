"""``opsctl run``: one command on many hosts, and ``opsctl run list|show|watch|output|cancel``."""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, TextIO

from fleetops.common import limits
from fleetops.common.durations import format_seconds, parse_duration
from fleetops.common.errors import InvalidInput
from fleetops.opsctl import output
from fleetops.opsctl.client import OperatorClient
from fleetops.opsctl.hosts import add_target_arguments
from fleetops.v1 import operator_pb2

SUBCOMMANDS = ("list", "show", "watch", "output", "cancel")
STATE = {v: k.removeprefix("INVOCATION_STATE_").lower() for k, v in operator_pb2.InvocationState.items()}
FINAL = {"success", "failed", "timed_out", "cancelled", "undeliverable", "not_started"}
NAMES_SHOWN = 10  # name the hosts when at most this many match


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = sub.add_parser(
        "run",
        help="run a command on hosts (also: run list|show ID|watch ID|output ID HOST|cancel ID)",
        description="Run one command on many hosts with rate control. "
        "Manage commands with: opsctl run list | show ID | watch ID | output ID HOST [--stderr] | cancel ID",
    )
    add_target_arguments(run, required=True)
    run.add_argument("--script", type=Path, help="a script file to run with the host's shell instead of a command")
    run.add_argument(
        "--max-concurrency",
        default="50",
        help=f"hosts at a time: a count (1-{limits.RATE_COUNT_MAX}) or a percentage (1%%-100%%) (default 50)",
    )
    run.add_argument(
        "--max-errors",
        default="0",
        help=f"stop sending after this many errors: a count (0-{limits.RATE_COUNT_MAX}) or 0%%-100%% (default 0)",
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
    run.add_argument("-o", "--output", choices=("text", "json"), default="text")
    run.add_argument("argv", nargs="*", metavar="-- CMD ARGS")
    run.set_defaults(func=run_command)
    output.add_raw_argument(run)

    cmd = sub.add_parser("command", help="commands that were run (same as opsctl run list|show|...)")
    csub = cmd.add_subparsers(dest="command_command", required=True)
    p = csub.add_parser("list", help="recent commands")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.set_defaults(func=list_commands)
    p = csub.add_parser("show", help="a command and its per-host results")
    p.add_argument("id")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=show_command)
    output.add_raw_argument(p)
    p = csub.add_parser("watch", help="follow a running command to its end")
    p.add_argument("id")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=watch_command)
    output.add_raw_argument(p)
    p = csub.add_parser("output", help="the full output of one host (from the object store)")
    p.add_argument("id")
    p.add_argument("host")
    p.add_argument("--stderr", action="store_true")
    p.set_defaults(func=invocation_output)
    output.add_raw_argument(p)
    p = csub.add_parser("cancel", help="stop sending and stop running invocations")
    p.add_argument("id")
    p.set_defaults(func=cancel_command)


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
    limits.parse_rate(request.max_concurrency, "--max-concurrency", minimum=1)
    limits.parse_rate(request.max_errors, "--max-errors", minimum=0)


def run_command(client: OperatorClient, args: argparse.Namespace) -> int:
    if bool(args.argv) == bool(args.script):
        raise InvalidInput("give a command after -- or --script FILE (not both)", "opsctl run --target SEL -- uptime")
    script = None
    if args.script:
        try:
            limits.SCRIPT_BYTES.check(args.script.stat().st_size, f"script {args.script}")
            script = args.script.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read script {args.script}: {exc.strerror}") from exc
    env: dict[str, str] = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"bad --env {item[:64]!r}", "use --env NAME=VALUE")
        env[key] = value
    request = operator_pb2.RunCommandRequest(
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
    info = announce(response, args.output)
    if args.detach:
        print(response.command.id)
        return 0
    print(f"command {response.command.id}", file=info, flush=True)
    return follow(client, response.command.id, args.output)


def announce(response: operator_pb2.RunCommandResponse, fmt: str) -> TextIO:
    """Print which hosts a new command matched; returns the stream for such notes (stderr under -o json)."""
    names = list(response.host_names)
    shown = f": {output.host_text(', '.join(names))}" if len(names) <= NAMES_SHOWN else ""
    info = sys.stderr if fmt == "json" else sys.stdout
    print(f"{len(names)} host{'s' if len(names) != 1 else ''} matched{shown}", file=info, flush=True)
    return info


def follow(client: OperatorClient, command_id: str, fmt: str) -> int:
    if not wait(client, command_id, fmt):
        return 130
    return report(client.get_command(command_id, include_output=True), fmt)


def wait(client: OperatorClient, command_id: str, fmt: str) -> bool:
    """Follow a command's progress (a progress bar on a terminal) until it ends.

    Returns False when the operator pressed Ctrl-C: the command goes on, and how to follow or stop
    it has been printed.
    """
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() and fmt == "text" else None
    try:
        for detail in client.watch_command(command_id):
            if bar:
                bar.draw(dict(detail.command.counts), detail.command.total)
            if detail.done:
                break
    except KeyboardInterrupt:
        if bar:
            bar.clear()
        print(
            f"\ndetached; the command goes on. Follow it: opsctl run watch {command_id}; "
            f"stop it: opsctl run cancel {command_id}",
            file=sys.stderr,
        )
        return False
    if bar:
        bar.clear()
    return True


def report(detail: operator_pb2.CommandDetail, fmt: str, out: TextIO = sys.stdout) -> int:
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
    return 0 if invocations and all(STATE.get(i.state) == "success" for i in invocations) else 1


def invocation_doc(inv: operator_pb2.Invocation) -> dict[str, Any]:
    return {
        "host": inv.host_name,
        "host_id": inv.host_id,
        "state": STATE.get(inv.state, "unknown"),
        "exit_code": inv.exit_code if inv.has_exit_code else None,
        "reason": inv.reason,
        "stdout": inv.stdout_tail.decode(errors="replace"),
        "stderr": inv.stderr_tail.decode(errors="replace"),
        "stdout_bytes": inv.stdout_bytes,
        "stderr_bytes": inv.stderr_bytes,
        "truncated": inv.stdout_bytes > len(inv.stdout_tail) or inv.stderr_bytes > len(inv.stderr_tail),
        "rebooted": inv.rebooted,
    }


def print_grouped(invocations: list[operator_pb2.Invocation], out: TextIO, *, stdout: bool = True) -> None:
    """Hosts with identical results are printed once: "27 hosts: <output>".

    With ``stdout=False`` the standard output is neither shown nor compared (agent tasks write
    their machine-readable report there); the standard error still is.
    """
    groups: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    for inv in invocations:
        state = STATE.get(inv.state, "unknown")
        out_tail = inv.stdout_tail if stdout else b""
        key = (state, inv.exit_code if inv.has_exit_code else None, inv.reason, out_tail, inv.stderr_tail)
        groups[key].append(inv.host_name)
    for (state, exit_code, reason, stdout, stderr), hosts in sorted(groups.items(), key=lambda g: -len(g[1])):
        what = f"{len(hosts)} host{'s' if len(hosts) != 1 else ''}"
        if state != "success":
            what += f" {state}" if exit_code in (None, 0) or state != "failed" else f" exit {exit_code}"
        names = ", ".join(sorted(hosts)) if len(hosts) <= NAMES_SHOWN else f"{', '.join(sorted(hosts)[:3])}, ..."
        print(f"── {what} ({output.host_text(names, out=out)})", file=out)
        if reason:
            print(f"   {output.host_text(reason, out=out)}", file=out)
        for label, data in (("", stdout), ("stderr: ", stderr)):
            if data:
                text = data.decode(errors="replace").rstrip("\n")
                for line in text.splitlines() or [""]:
                    print(f"   {label}{output.host_text(line, out=out, keep_layout=True)}", file=out)


def summary(detail: operator_pb2.CommandDetail) -> str:
    counts: dict[str, int] = defaultdict(int)
    for inv in detail.invocations:
        counts[STATE.get(inv.state, "unknown")] += 1
    parts = [f"{n} {state.replace('_', ' ')}" for state, n in sorted(counts.items(), key=lambda kv: -kv[1])]
    total = detail.command.total
    hosts = f"{total} host{'s' if total != 1 else ''}"
    return f"{detail.command.id}: {detail.command.status} on {hosts} ({', '.join(parts)})"


class ProgressBar:
    """One redrawn line on a terminal: done / failed / running / pending."""

    WIDTH = 30

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def draw(self, counts: dict[str, int], total: int) -> None:
        done = counts.get("success", 0)
        failed = sum(n for state, n in counts.items() if state in FINAL and state != "success")
        running = counts.get("delivered", 0) + counts.get("running", 0)
        pending = max(0, total - done - failed - running)
        filled = int(self.WIDTH * (done + failed) / total) if total else 0
        bar = "#" * filled + "." * (self.WIDTH - filled)
        line = f"[{bar}] {done} done  {failed} failed  {running} running  {pending} pending"
        self._stream.write("\r" + line + "\x1b[K")
        self._stream.flush()

    def clear(self) -> None:
        self._stream.write("\r\x1b[K")
        self._stream.flush()


def list_commands(client: OperatorClient, args: argparse.Namespace) -> int:
    commands = client.list_commands(args.limit)
    if args.output == "json":
        output.as_json(commands)
        return 0
    rows = [
        [
            c.id,
            output.when(c.created_at),
            c.created_by,
            c.status,
            f"{sum(n for s, n in c.counts.items() if s in FINAL)}/{c.total}",
            (" ".join(c.argv) or "(script)")[:40],
            c.target[:30],
        ]
        for c in commands
    ]
    output.table(["ID", "CREATED", "BY", "STATUS", "DONE", "COMMAND", "TARGET"], rows)
    return 0


def show_command(client: OperatorClient, args: argparse.Namespace) -> int:
    # The text view shows no output: it need not fetch the tails (up to 128 KiB per host).
    detail = client.get_command(args.id, include_output=args.output == "json")
    if args.output == "json":
        output.as_json(detail)
        return 0
    c = detail.command
    print(f"command   {c.id}  ({c.status})")
    print(f"run       {' '.join(c.argv) or '(script)'}{f'  as {c.run_as}' if c.run_as else ''}")
    print(f"target    {c.target}  ({c.total} hosts)")
    print(
        f"limits    max-concurrency {c.max_concurrency} ({c.concurrency_limit}), "
        f"max-errors {c.max_errors} ({c.error_limit}), timeout {c.timeout_seconds}s"
    )
    print(f"by        {c.created_by} at {output.when(c.created_at)}")
    rows = [
        [
            output.host_text(i.host_name),
            STATE.get(i.state, "?"),
            str(i.exit_code) if i.has_exit_code else "-",
            output.size(i.stdout_bytes),
            output.host_text(i.reason[:60]) or "-",
        ]
        for i in detail.invocations
    ]
    print()
    output.table(["HOST", "STATE", "EXIT", "STDOUT", "REASON"], rows)
    return 0


def watch_command(client: OperatorClient, args: argparse.Namespace) -> int:
    return follow(client, args.id, args.output)


def invocation_output(client: OperatorClient, args: argparse.Namespace) -> int:
    sink = output.HostOutput()
    for chunk in client.invocation_output(args.id, args.host, stderr=args.stderr):
        sink.write(chunk)
    sink.flush()
    return 0


def cancel_command(client: OperatorClient, args: argparse.Namespace) -> int:
    c = client.cancel_command(args.id)
    print(f"cancelling {c.id}: nothing more is sent; running invocations are being stopped")
    return 0
