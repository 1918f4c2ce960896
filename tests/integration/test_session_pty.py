"""Real pseudo-terminals on this (Linux) host: login shells, Ctrl-C, job control, resizes, users, hang-ups.

No fixed sleeps: every step reads until a pattern appears, with a deadline. Patterns are built so
that the typed command's echo cannot match them (``echo $((6*7))x`` prints ``42x``, its echo does not).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import psutil
import pytest

from fleetops.agent.sessions import READ_CHUNK_SIZE
from fleetops.agent.sessions.posix_pty import PosixTerminal, PosixTerminalFactory
from fleetops.common.errors import InvalidInput, NotFound

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pseudo-terminals")

TEST_USER = "fleetops-session-test"
MARKER_TAG = "# fleetops session test marker"
DEADLINE = 15.0
TERM = "xterm-256color"


class Screen:
    """Everything a terminal printed, read on demand until a pattern shows up."""

    def __init__(self, terminal: PosixTerminal) -> None:
        self.terminal = terminal
        self.output = b""
        self.chunks: list[bytes] = []
        self._seen = 0
        self.closed = False

    async def expect(self, pattern: bytes | str, timeout: float = DEADLINE) -> re.Match[bytes]:
        """Read until ``pattern`` (a regex) matches output not matched before; fail at the deadline."""
        regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.output, self._seen)
            if match:
                self._seen = match.end()
                return match
            if self.closed:
                pytest.fail(f"output ended without {regex.pattern!r}; got {self.output[-2000:]!r}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no {regex.pattern!r} within {timeout}s; got {self.output[-2000:]!r}")
            try:
                chunk = await asyncio.wait_for(self.terminal.read(), remaining)
            except TimeoutError:
                continue
            if not chunk:
                self.closed = True
            self.chunks.append(chunk)
            self.output += chunk

    async def drain(self, timeout: float = DEADLINE) -> bytes:
        """Read to the end of the output."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            chunk = await asyncio.wait_for(self.terminal.read(), max(0.1, deadline - time.monotonic()))
            if not chunk:
                self.closed = True
            self.chunks.append(chunk)
            self.output += chunk
        return self.output

    async def run(self, line: str, pattern: bytes | str, timeout: float = DEADLINE) -> re.Match[bytes]:
        await self.terminal.write(line.encode() + b"\r")
        return await self.expect(pattern, timeout)


Spawn = Callable[..., Awaitable[Screen]]


@pytest.fixture
async def spawn() -> AsyncIterator[Spawn]:
    terminals: list[PosixTerminal] = []

    async def start(
        user: str | None = None,
        command: str | None = None,
        cols: int = 80,
        rows: int = 24,
        env: dict[str, str] | None = None,
        hangup_grace: float = 2.0,
    ) -> Screen:
        factory = PosixTerminalFactory(hangup_grace=hangup_grace)
        terminal = await factory.spawn(user, command, cols, rows, TERM, env or {})
        terminals.append(terminal)
        return Screen(terminal)

    yield start
    for terminal in terminals:
        terminal.close()
        await asyncio.wait_for(terminal.wait(), DEADLINE)


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        await asyncio.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# -- the shell ------------------------------------------------------------------------------------


async def test_command_runs_through_the_shell_and_ends_with_its_exit_code(spawn: Spawn) -> None:
    screen = await spawn(command="echo hi; exit 3")
    output = await screen.drain()
    assert b"hi\r\n" in output  # the terminal's output processing turns \n into \r\n
    assert await asyncio.wait_for(screen.terminal.wait(), DEADLINE) == 3


async def test_interactive_session_is_a_login_shell_on_a_terminal(spawn: Spawn) -> None:
    screen = await spawn()
    await screen.run("echo h''i", rb"\bhi\r\n")
    match = await screen.run('echo "zero=$0"', rb"zero=([^$\s]+)\r\n")
    assert match.group(1).startswith(b"-")  # argv[0] "-bash": profiles are read
    await screen.run('echo "term=$TERM"', rb"term=xterm-256color\r\n")
    await screen.run("tty", rb"/dev/pts/\d+\r\n")
    home = pwd.getpwuid(os.geteuid()).pw_dir
    await screen.run('echo "cwd=$PWD"', re.escape(f"cwd={home}\r\n".encode()))
    await screen.run("exit 7", rb"exit")
    assert await asyncio.wait_for(screen.terminal.wait(), DEADLINE) == 7
    assert (await screen.drain()).endswith(b"\n")  # then the output ends (EIO -> b"")


async def test_environment_of_the_request_reaches_the_shell(spawn: Spawn) -> None:
    screen = await spawn(command='echo "lc=$LC_TIME user=$USER"', env={"LC_TIME": "C.UTF-8"})
    output = await screen.drain()
    assert f"lc=C.UTF-8 user={pwd.getpwuid(os.geteuid()).pw_name}".encode() in output


# -- terminal features ------------------------------------------------------------------------------


async def test_resize_changes_what_stty_reports(spawn: Spawn) -> None:
    screen = await spawn(cols=80, rows=24)
    await screen.run("stty size", rb"\b24 80\r\n")
    screen.terminal.resize(132, 40)
    await screen.run("stty size", rb"\b40 132\r\n")
    await screen.run("tput cols", rb"\b132\r\n")  # what full-screen programs ask terminfo for


async def test_resize_signals_the_foreground_program(spawn: Spawn) -> None:
    screen = await spawn()
    # The program reports each SIGWINCH with the new size; "RE""ADY" so the echo cannot match. The
    # INT trap: bash alone would go on looping when Ctrl-C lands just as a sleep has exited by itself.
    await screen.run(
        'bash -c \'trap "stty size" WINCH; trap "exit 130" INT; echo RE""ADY; while :; do sleep 0.05; done\'',
        rb"READY\r\n",
    )
    screen.terminal.resize(100, 30)
    await screen.expect(rb"\b30 100\r\n")
    await screen.terminal.write(b"\x03")
    await screen.run('echo "rc=$?"', rb"rc=130\r\n")


async def test_ctrl_c_interrupts_the_foreground_program_and_the_shell_stays(spawn: Spawn) -> None:
    screen = await spawn()
    # exec: the process that printed READY is the foreground job that Ctrl-C must interrupt.
    await screen.run("bash -c 'echo RE\"\"ADY; exec sleep 30'", rb"READY\r\n")
    started = time.monotonic()
    await screen.terminal.write(b"\x03")
    await screen.run('echo "rc=$?"', rb"rc=130\r\n")  # killed by SIGINT: 128 + 2
    assert time.monotonic() - started < 10  # not the 30 s of the sleep
    await screen.run("echo alive-$((1+1))", rb"alive-2\r\n")
    await screen.terminal.write(b"exit 7\r")
    assert await asyncio.wait_for(screen.terminal.wait(), DEADLINE) == 7


async def test_ctrl_z_stops_the_job_and_job_control_works(spawn: Spawn) -> None:
    screen = await spawn()
    # The job says when it runs again (SIGCONT comes after the shell gave it the terminal back).
    await screen.run(
        'bash -c \'trap "echo CO\\"\\"NT" CONT; trap "exit 130" INT; echo RE""ADY; while :; do sleep 0.05; done\'',
        rb"READY\r\n",
    )
    await screen.terminal.write(b"\x1a")
    await screen.run('echo "rc=$?"', rb"rc=148\r\n")  # stopped by SIGTSTP: 128 + 20
    await screen.run("jobs", rb"Stopped")
    await screen.run("fg", rb"CONT\r\n")
    await screen.terminal.write(b"\x03")
    await screen.run('echo "rc=$? jobs=$(jobs | wc -l)"', rb"rc=130 jobs=0\r\n")


async def test_large_input_is_written_in_full_despite_a_full_terminal_buffer(spawn: Spawn) -> None:
    size = 300_000  # far more than a pty's input buffer (4 KiB): writes hit EAGAIN and wait
    screen = await spawn(command=f"stty raw -echo; echo RE''ADY; head -c {size} | wc -c")
    await screen.expect(rb"READY")
    await asyncio.wait_for(screen.terminal.write(b"x" * size), DEADLINE)
    await screen.expect(rf"\b{size}\b".encode())
    assert await asyncio.wait_for(screen.terminal.wait(), DEADLINE) == 0


async def test_large_output_arrives_whole_in_bounded_chunks(spawn: Spawn) -> None:
    screen = await spawn(command="head -c 1000000 /dev/zero | tr '\\0' x; echo; echo E''ND")
    output = await screen.drain(timeout=30)
    assert output.count(b"x") == 1_000_000
    assert b"END" in output
    assert max(len(chunk) for chunk in screen.chunks) <= READ_CHUNK_SIZE


# -- ending sessions ---------------------------------------------------------------------------------


async def test_terminate_hangs_up_the_session_and_kills_what_ignores_it(spawn: Spawn) -> None:
    screen = await spawn(hangup_grace=0.5)
    # A job that dies of the hang-up, and one that ignores SIGHUP and needs the SIGKILL.
    pids = [
        int((await screen.run("sleep 300 & echo pid=$!", rb"pid=(\d+)\r\n")).group(1)),
        int((await screen.run("(trap '' HUP; exec sleep 301) & echo pid=$!", rb"pid=(\d+)\r\n")).group(1)),
    ]
    leader = screen.terminal.pid
    assert all(os.getsid(pid) == leader for pid in pids)
    screen.terminal.terminate()
    assert await asyncio.wait_for(screen.terminal.wait(), DEADLINE) == 129  # 128 + SIGHUP
    await wait_until(lambda: not any(alive(pid) for pid in pids), "every process of the session ended")
    await screen.drain()  # and the output ends


async def test_close_of_a_running_session_ends_it(spawn: Spawn) -> None:
    screen = await spawn()
    await screen.run("echo $((6*7))x", rb"42x")
    screen.terminal.close()
    assert await screen.terminal.read() == b""
    await screen.terminal.write(b"ignored\r")  # dropped: nothing could read it
    assert await asyncio.wait_for(screen.terminal.wait(), DEADLINE) in (129, 137)


# -- users -----------------------------------------------------------------------------------------


async def test_unknown_user_is_refused_clearly(spawn: Spawn) -> None:
    with pytest.raises(NotFound, match="no such user on this host: fleetops-no-such-user"):
        await spawn(user="fleetops-no-such-user")


async def test_malformed_request_is_refused(spawn: Spawn) -> None:
    with pytest.raises(InvalidInput, match=r"window size 0x24 is out of range"):
        await spawn(cols=0)
    with pytest.raises(InvalidInput, match="HOME"):
        await spawn(env={"HOME": "/tmp"})


@pytest.fixture
def session_user() -> str:
    """The test account, created when missing, with a fresh marker exported by its ~/.profile."""
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    if shutil.which("useradd") is None:
        pytest.skip("useradd is not installed")
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", TEST_USER], check=True, capture_output=True, timeout=60)
    return TEST_USER


def set_profile_marker(user: str) -> str:
    entry = pwd.getpwnam(user)
    profile = Path(entry.pw_dir) / ".profile"
    marker = secrets.token_hex(8)
    lines = profile.read_text().splitlines() if profile.exists() else []
    lines = [line for line in lines if MARKER_TAG not in line]
    lines.append(f"export FLEETOPS_MARKER={marker}  {MARKER_TAG}")
    profile.write_text("\n".join(lines) + "\n")
    os.chown(profile, entry.pw_uid, entry.pw_gid)
    return marker


async def test_session_as_another_user_runs_their_login_shell(spawn: Spawn, session_user: str) -> None:
    marker = set_profile_marker(session_user)
    entry = pwd.getpwnam(session_user)
    screen = await spawn(user=session_user)
    await screen.run('echo "who=$(id -un)"', re.escape(f"who={session_user}\r\n".encode()))
    await screen.run('echo "marker=$FLEETOPS_MARKER"', re.escape(f"marker={marker}\r\n".encode()))
    await screen.run('echo "cwd=$PWD home=$HOME"', re.escape(f"cwd={entry.pw_dir} home={entry.pw_dir}\r\n".encode()))
    # The user's own groups, not the agent's (root's) supplementary groups.
    match = await screen.run('echo "groups=$(id -G)"', rb"groups=([\d ]+)\r\n")
    assert sorted(int(gid) for gid in match.group(1).split()) == sorted(
        set(os.getgrouplist(session_user, entry.pw_gid))
    )
    # Job control works for an unprivileged user too (the pty is their controlling terminal).
    await screen.run("bash -c 'echo RE\"\"ADY; exec sleep 30'", rb"READY\r\n")
    await screen.terminal.write(b"\x03")
    await screen.run('echo "rc=$?"', rb"rc=130\r\n")
    await screen.terminal.write(b"exit\r")
    assert await asyncio.wait_for(screen.terminal.wait(), DEADLINE) == 0  # exit: status of the last echo


async def test_command_as_another_user(spawn: Spawn, session_user: str) -> None:
    screen = await spawn(user=session_user, command='echo "who=$(id -un) tty=$(tty)"')
    output = await screen.drain()
    assert re.search(re.escape(f"who={session_user} tty=/dev/pts/").encode(), output)
    assert await asyncio.wait_for(screen.terminal.wait(), DEADLINE) == 0
