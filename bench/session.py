"""Session benchmark: `opsctl session` against OpenSSH to localhost, measured in one run.

Run from the repository root (as root, like the agent it starts; needs openssh-server)::

    .venv/bin/python bench/session.py [--keystrokes 1000] [--size-mb 200] [--cat-rounds 2]
                                      [--skip-ssh] [--skip-local] [--skip-fleetops] [--skip-floor]
                                      [--keep-tmp]

The clients are the real CLIs, each on a pseudo-terminal the bench owns (the bench is the operator's
terminal emulator: it writes keystrokes to the master side and reads the screen back):

0. local pty, a floor (information only): the user's login shell straight on the bench's terminal, no
   transport at all; what the terminal itself (kernel pty + the bench reading it) allows.
1. OpenSSH, the baseline: a throwaway ``/usr/sbin/sshd -D -e -f CONFIG`` on 127.0.0.1:<free port>
   with a fresh host key, a fresh client key in its own authorized_keys file and no password or PAM,
   and ``ssh -tt`` to it (no user ssh config, no known_hosts).
2. fleetops: a controller and one local agent started as the integration tests start them
   (tests/support/harness.py: real processes, the default local object store; sessions are always
   recorded), and ``opsctl --profile ADMIN session HOST``.
3. the gRPC relay floor, after the sessions (information, --skip-floor skips it): bench/relay_floor.py,
   keystrokes through bare grpc.aio streams with mutual TLS in fleetops' topology (client -> relay
   <- echo process that dialled out), no pty: what two gRPC round trips through one more process
   cost in Python, the least fleetops' echo can be.

All sessions are open at once and their measurements interleave, so that load from elsewhere on the
machine hits them alike. In the login shell of the target user (root):

* echo latency: the remote terminal is set ``-icanon -echo`` and ``dd bs=1 count=N`` writes every
  byte back; 50 warm-up keystrokes each, then --keystrokes single keystrokes in blocks of 50 taking
  turns between the sessions, each timed from the write on the master until its echo is read back;
  p50, p99, mean, max.
* throughput: ``cat`` of a --size-mb file of printable text (base64 lines, made once in the temp
  dir), read from the master as fast as it comes until a marker the shell prints after it; file
  size / elapsed, best of --cat-rounds (the sessions take turns). The RSS of the controller, the
  agent and opsctl is sampled from before the first cat to after the last (the flow-control window
  should keep it flat), and the controller must have stored a transcript holding every cat.

Goals (PASS/FAIL, with recording on): echo p50 at most 3x and p99 at most 2x OpenSSH's; throughput
at least 0.8x OpenSSH's. Exit code: 0 when every session was measured (whatever the verdicts), 1 when
one could not be, 2 when sshd is not installed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from session_support import (
    PYTHON,
    SSHD,
    Agent,
    BenchError,
    Controller,
    Result,
    Session,
    Sshd,
    make_data,
    say,
)

MiB = 1024 * 1024
HOST = "bench-session"
GOAL_ECHO_P50_RATIO, GOAL_ECHO_P99_RATIO, GOAL_THROUGHPUT_RATIO = 3.0, 2.0, 0.8
WARMUP, BLOCK = 50, 50


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL  <<<"


# --- the servers -------------------------------------------------------------------------------


def start_ssh(tmp: Path) -> tuple[Session, Sshd]:
    sshd = Sshd(tmp / "sshd")
    session = Session("ssh", [])
    try:
        sshd.start()
        session.argv = sshd.client_argv()
        say(f"ssh: sshd listening on 127.0.0.1:{sshd.port}")
    except (BenchError, OSError) as exc:
        session.result.error = f"ssh: could not start sshd: {exc}"
    return session, sshd


def start_fleetops(tmp: Path, controller: Controller, agents: dict[str, Agent]) -> Session:
    """The controller and one agent (added to ``agents`` before it starts, so that it is always stopped)."""
    session = Session("fleetops", [])
    try:
        controller.start(heartbeat="10s")
        # The tags are the activation's: a host cannot choose its own.
        activation_id, code = controller.create_activation("--limit", "1", tags={"bench": "session"})
        agent = agents[HOST] = Agent(tmp / "fleet", HOST)
        agent.register(controller, activation_id, code)
        agent.start()
        assert controller.process is not None and agent.process is not None
        session.argv = [PYTHON, "-m", "fleetops.opsctl", "--profile", str(controller.profile), "session", HOST]
        session.watch = {"controller": controller.process.pid, "agent": agent.process.pid}
        say(f"fleetops: controller on {controller.address}, agent {HOST} connected")
    except (AssertionError, OSError, subprocess.SubprocessError) as exc:  # AssertionError: the harness failing
        session.result.error = f"fleetops: could not start the controller and agent: {exc}"
    return session


def explain_fleetops_failure(result: Result, controller: Controller, agents: dict[str, Agent]) -> None:
    """Add what tells why: the CLI lacking the command, the controller's and the agent's last log lines."""
    if "invalid choice: 'session'" in result.error:
        result.error = (
            "opsctl has no `session` command in this checkout (the feature is not finished):\n" + result.error
        )
    for who, proc in (("controller", controller.process), ("agent", agents[HOST].process if HOST in agents else None)):
        if proc is not None:
            lines = proc.output().splitlines()[-8:]
            result.error += f"\n{who}'s last log lines:\n    " + "\n    ".join(lines or ["(none)"])


def check_transcript(controller: Controller, want: int) -> str:
    """The session's transcript, once stored (the session has ended), must hold at least ``want`` bytes."""
    state = controller.state_dir
    objects = state / "objects"
    deadline = time.monotonic() + 30
    while True:
        found = [(p, p.stat().st_size) for p in sorted(state.rglob("*.cast")) if p.is_file()]
        ok = any(size >= want and p.is_relative_to(objects) for p, size in found)
        if ok or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    files = ", ".join(f"{p.relative_to(state)} {size / MiB:.1f} MiB" for p, size in found)
    return f"transcript (stored copy >= {want / MiB:.0f} MiB catted: {verdict(ok)}): {files or 'no *.cast file'}"


# --- the measurements --------------------------------------------------------------------------


def rotate(items: list[Session], n: int) -> list[Session]:
    n %= max(1, len(items))
    return items[n:] + items[:n]


def measure_all(sessions: list[Session], data: Path, args: argparse.Namespace) -> None:
    """Every step for every session that still works, taking turns; a failing session drops out."""

    def live() -> list[Session]:
        return [s for s in sessions if s.ok]

    for s in live():
        s.step(s.open)
        if s.ok:
            say(f"{s.name}: first output after {s.result.ready_s:.2f} s, shell ready")
    say(f"echo: {WARMUP} warm-up + {args.keystrokes} keystrokes each, in turns of {BLOCK}...")
    for s in live():
        s.step(functools.partial(s.start_echo, WARMUP + args.keystrokes))
    for s in live():
        s.step(functools.partial(s.keystrokes, WARMUP, timed=False))
    for turn, done in enumerate(range(0, args.keystrokes, BLOCK)):
        for s in rotate(live(), turn):
            s.step(functools.partial(s.keystrokes, min(BLOCK, args.keystrokes - done)))
    for s in live():
        s.step(s.end_echo)
        if s.ok:
            say(f"{s.name}: echo p50 {s.result.quantile(0.5):.3f} ms, p99 {s.result.quantile(0.99):.3f} ms")
    size = data.stat().st_size
    for round_ in range(args.cat_rounds):
        for s in rotate(live(), round_):
            s.step(functools.partial(s.cat, data, args.cat_timeout))
            if s.ok:
                cat, which = s.result.cats[-1], f"{round_ + 1}/{args.cat_rounds}"
                say(f"{s.name}: cat {which}: {cat.mib_per_s(size):.1f} MiB/s ({cat.seconds:.2f} s)")
    for s in live():
        s.step(s.stop_sampling)
    for s in live():
        s.step(s.close)


# --- report ------------------------------------------------------------------------------------


def row(label: str, values: list[float], unit: str, fmt: str, goal: str = "") -> str:
    def cell(v: float) -> str:
        return f"{v:{fmt}} {unit}" if v == v else "-"

    ssh, fleet = values[1], values[2]
    ratio = f"{fleet / ssh:.2f}x" if ssh == ssh and fleet == fleet and ssh > 0 else "-"
    return f"  {label:26s} " + " ".join(f"{cell(v):>13s}" for v in values) + f" {ratio:>7s}   {goal}"


def report(args: argparse.Namespace, runs: dict[str, Result | None], recorded: str, size: int) -> None:
    nan = float("nan")
    local, ssh, fleet = runs["local"], runs["ssh"], runs["fleetops"]
    both = ssh is not None and fleet is not None and not ssh.error and not fleet.error
    results = [r or Result() for r in (local, ssh, fleet)]
    s, f = results[1], results[2]

    def goal(text: str, ok: bool) -> str:
        if both:
            return f"{text}: {verdict(ok)}"
        return f"{text}: - (" + ("no baseline: --skip-ssh" if ssh is None else "not measured") + ")"

    def line(label: str, value: Callable[[Result], float], unit: str, fmt: str, goal: str = "") -> None:
        print(row(label, [value(r) for r in results], unit, fmt, goal))

    def mib_s(r: Result) -> float:
        best = r.best_cat()
        return best.mib_per_s(size) if best else nan

    def best(attr: str) -> Callable[[Result], float]:
        return lambda r: getattr(r.best_cat(), attr) if r.best_cat() else nan

    print(
        f"\nsessions vs OpenSSH, 127.0.0.1, {os.cpu_count()} cores: {args.keystrokes} keystrokes each (after "
        f"{WARMUP} warm-up), cat of {size / MiB:.0f} MiB x {args.cat_rounds}; fleetops records every session"
    )
    print(f"  {'':26s} {'local pty':>13s} {'OpenSSH':>13s} {'fleetops':>13s} {'ratio':>7s}   goal (fleetops/OpenSSH)")
    line("first output (prompt)", lambda r: r.ready_s, "s", ".2f")
    p50_ok = f.quantile(0.5) <= GOAL_ECHO_P50_RATIO * s.quantile(0.5)
    line("echo p50", lambda r: r.quantile(0.5), "ms", ".3f", goal(f"<= {GOAL_ECHO_P50_RATIO:.0f}x", p50_ok))
    p99_ok = f.quantile(0.99) <= GOAL_ECHO_P99_RATIO * s.quantile(0.99)
    line("echo p99", lambda r: r.quantile(0.99), "ms", ".3f", goal(f"<= {GOAL_ECHO_P99_RATIO:.0f}x", p99_ok))
    line("echo mean", lambda r: r.mean_ms, "ms", ".3f")
    line("echo max", lambda r: max(r.echo_ms, default=nan), "ms", ".3f")
    tp_ok = mib_s(f) >= GOAL_THROUGHPUT_RATIO * mib_s(s)
    line(f"cat {size / MiB:.0f} MiB (best)", mib_s, "MiB/s", ".1f", goal(f">= {GOAL_THROUGHPUT_RATIO}x", tp_ok))
    line("cat elapsed (best)", best("seconds"), "s", ".2f")
    line("bench CPU in that cat", best("bench_cpu_s"), "s", ".2f")
    print(
        "  (local pty: the login shell straight on the bench's terminal, no transport: what the terminal itself\n"
        "   allows; the bench reading the screen plays the operator's terminal emulator)"
    )
    for name, r in runs.items():
        if r is None:
            continue
        if len(r.cats) > 1:
            print(f"  {name}: every cat: " + ", ".join(f"{c.mib_per_s(size):.1f}" for c in r.cats) + " MiB/s")
        if r.stray_bytes:
            print(f"  {name}: {r.stray_bytes} bytes arrived during the keystrokes that were not their echo")
    if f.rss is not None and f.rss.after:
        rss = f.rss
        parts = [
            f"{label} {rss.before[k] / MiB:.0f} -> {rss.peak[k] / MiB:.0f} -> {rss.after[k] / MiB:.0f} MiB"
            for k, label in (("controller", "controller"), ("agent", "agent"), ("client", "opsctl"))
        ]
        print("  fleetops RSS before -> peak during -> after the cats: " + "; ".join(parts))
    if s.rss is not None and s.rss.after:
        rss = s.rss
        print(
            f"  ssh client RSS before -> peak during -> after the cats: {rss.before['client'] / MiB:.0f} -> "
            f"{rss.peak['client'] / MiB:.0f} -> {rss.after['client'] / MiB:.0f} MiB"
        )
    if recorded:
        print(f"  fleetops {recorded}")
    for name, r in runs.items():
        if r is not None and r.error:
            print(f"\n  {name} FAILED  <<<\n    " + "\n    ".join(r.error.splitlines()))


def measure_relay_floor(keystrokes: int) -> Result:
    """Keystroke round trips through bare grpc.aio streams in fleetops' topology (bench/relay_floor.py)."""
    say(f"floor: {keystrokes} keystrokes through a bare gRPC relay (bench/relay_floor.py)...")
    result = Result()
    script = Path(__file__).resolve().parent / "relay_floor.py"
    try:
        done = subprocess.run(
            [PYTHON, str(script), "measure", str(keystrokes)], capture_output=True, text=True, timeout=300
        )
    except subprocess.TimeoutExpired:
        result.error = "the gRPC relay floor did not finish within 300 s"
        return result
    last = (done.stdout.strip().splitlines() or [""])[-1]
    if done.returncode != 0 or not last.startswith("{"):
        result.error = last or f"relay_floor.py exited ({done.returncode}): {done.stderr.strip()[-500:]}"
        return result
    result.echo_ms = json.loads(last)["echo_ms"]
    return result


def report_floor(floor: Result, runs: dict[str, Result | None]) -> None:
    if floor.error:
        print(f"\n  gRPC relay floor FAILED  <<<\n    {floor.error}")
        return
    p50, p99 = floor.quantile(0.5), floor.quantile(0.99)
    print(
        f"  gRPC relay floor (opsctl -> relay -> echo as bare grpc.aio streams with mTLS, no pty): "
        f"echo p50 {p50:.3f} ms, p99 {p99:.3f} ms"
    )
    fleet, local = runs.get("fleetops"), runs.get("local")
    if fleet is not None and fleet.echo_ms:
        pty = f" + the local pty's {local.quantile(0.5):.3f} ms" if local is not None and local.echo_ms else ""
        print(
            f"  fleetops/floor: p50 {fleet.quantile(0.5) / p50:.2f}x, p99 {fleet.quantile(0.99) / p99:.2f}x "
            f"(the floor{pty} is the least a keystroke costs through a relay in Python)"
        )


# --- main --------------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> int:
    if not args.skip_ssh and not (Path(SSHD).exists() and shutil.which("ssh") and shutil.which("ssh-keygen")):
        print(
            f"{SSHD}, ssh or ssh-keygen is missing: the OpenSSH baseline needs them.\n"
            "  install: apt-get install openssh-server openssh-client   (or run with --skip-ssh)",
            file=sys.stderr,
        )
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="fleetops-session-bench-", dir="/tmp"))
    t = time.monotonic()
    sessions: dict[str, Session] = {}
    sshd: Sshd | None = None
    controller: Controller | None = None
    agents: dict[str, Agent] = {}
    try:
        data = tmp / "data.txt"
        size = make_data(data, args.size_mb * MiB)
        say(f"made {data} ({size / MiB:.0f} MiB of base64 lines)")
        if not args.skip_local:
            sessions["local"] = Session("local", [pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh", "-l"])
        if not args.skip_ssh:
            sessions["ssh"], sshd = start_ssh(tmp)
        if not args.skip_fleetops:
            controller = Controller(tmp / "fleet", name="controller")
            sessions["fleetops"] = start_fleetops(tmp, controller, agents)
        measure_all(list(sessions.values()), data, args)
        floor = None if args.skip_floor else measure_relay_floor(args.keystrokes)

        recorded = ""
        fleet = sessions.get("fleetops")
        if fleet is not None and controller is not None:
            if fleet.result.cats:
                recorded = check_transcript(controller, size * len(fleet.result.cats))
            if fleet.result.error:
                explain_fleetops_failure(fleet.result, controller, agents)
        runs = {name: (sessions[name].result if name in sessions else None) for name in ("local", "ssh", "fleetops")}
        report(args, runs, recorded, size)
        if floor is not None:
            report_floor(floor, runs)
        print(f"\n(bench took {time.monotonic() - t:.0f} s)")
    finally:
        for session in sessions.values():
            session.abort()
        for agent in agents.values():
            agent.stop()
        if controller is not None:
            controller.stop()
        if sshd is not None:
            sshd.stop()
        if args.keep_tmp:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(s.ok for s in sessions.values()) else 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keystrokes", type=int, default=1000, help="timed keystrokes per session (after 50 warm-up)")
    p.add_argument("--size-mb", type=int, default=200, help="size of the file to cat, MiB")
    p.add_argument("--cat-rounds", type=int, default=2, help="cats per session (the best counts)")
    p.add_argument("--cat-timeout", type=float, default=600.0, help="give up on a cat after this many seconds")
    p.add_argument("--skip-ssh", action="store_true", help="no OpenSSH baseline (no ratios, no verdicts)")
    p.add_argument("--skip-local", action="store_true", help="no local-pty floor")
    p.add_argument("--skip-fleetops", action="store_true", help="only the baselines")
    p.add_argument("--skip-floor", action="store_true", help="no bare-gRPC relay floor (bench/relay_floor.py)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (sshd config and log, controller state)")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main(parse_args(sys.argv[1:])))
