"""Unit tests of the POSIX terminal's I/O and hang-up on an in-process pty pair (no child process)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import select
import signal
import struct
import sys
import termios
import time
import tty
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from fleetops.agent.sessions.interfaces import READ_CHUNK_SIZE
from fleetops.agent.sessions.posix_pty import PosixTerminal
from fleetops.common.errors import InvalidInput

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pseudo-terminals")

WAIT = 10.0


@dataclass
class FakeProcess:
    pid: int = 4242
    returncode: int | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self) -> int:
        await self.exited.wait()
        assert self.returncode is not None
        return self.returncode


@dataclass
class Pair:
    terminal: PosixTerminal
    slave: int
    process: FakeProcess
    signals: list[tuple[int, int]]

    def close_slave(self) -> None:
        if self.slave >= 0:
            os.close(self.slave)
            self.slave = -1


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no line editing: bytes pass unchanged both ways
    os.set_blocking(master, False)
    process = FakeProcess()
    signals: list[tuple[int, int]] = []
    terminal = PosixTerminal(
        process,  # type: ignore[arg-type]
        master,
        hangup_grace=0.05,
        session_members=lambda sid: [sid, sid + 1],
        kill=lambda pid, signum: signals.append((pid, signum)),
    )
    result = Pair(terminal, slave, process, signals)
    yield result
    process.returncode = 0  # so close() does not hang up again
    terminal.close()
    result.close_slave()


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


async def settle() -> None:
    """Let every ready task run until it waits (a few loop steps; no time passes, nothing is waited for)."""
    for _ in range(5):
        await asyncio.sleep(0)


def readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def read_all(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += os.read(fd, size - len(data))
    return data


def test_pid_is_the_shells(pair: Pair) -> None:
    assert pair.terminal.pid == 4242


async def test_read_returns_the_programs_output(pair: Pair) -> None:
    os.write(pair.slave, "héllo".encode())
    assert await asyncio.wait_for(pair.terminal.read(), WAIT) == "héllo".encode()


async def test_read_gathers_the_output_that_is_ready_into_one_chunk(pair: Pair) -> None:
    # A pty hands out at most ~4 KiB per read(2) (Linux); what is already waiting joins the chunk.
    data = bytes(range(256)) * 48  # 12 KiB, written in pieces as a program would
    for start in range(0, len(data), 1000):
        os.write(pair.slave, data[start : start + 1000])
    assert await asyncio.wait_for(pair.terminal.read(), WAIT) == data


@pytest.mark.skipif(not hasattr(fcntl, "F_SETPIPE_SZ"), reason="needs a pipe larger than 64 KiB (Linux)")
async def test_a_chunk_is_at_most_64_kib() -> None:
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 1024 * 1024)
    os.set_blocking(read_end, False)
    data = os.urandom(200 * 1024)
    assert os.write(write_end, data) == len(data)
    os.close(write_end)
    terminal = PosixTerminal(FakeProcess(returncode=0), read_end)  # type: ignore[arg-type]
    try:
        chunks = []
        while chunk := await asyncio.wait_for(terminal.read(), WAIT):
            chunks.append(chunk)
    finally:
        terminal.close()
    assert b"".join(chunks) == data
    assert max(len(chunk) for chunk in chunks) == READ_CHUNK_SIZE


async def test_read_waits_for_output(pair: Pair) -> None:
    read = asyncio.ensure_future(pair.terminal.read())
    await settle()  # the read has found nothing and waits on the pty
    assert not read.done()
    os.write(pair.slave, b"late")
    assert await asyncio.wait_for(read, WAIT) == b"late"


async def test_read_ends_when_the_last_slave_fd_closes(pair: Pair) -> None:
    os.write(pair.slave, b"last words")
    pair.close_slave()
    data = b""
    while chunk := await asyncio.wait_for(pair.terminal.read(), WAIT):
        data += chunk
    assert data == b"last words"
    assert await pair.terminal.read() == b""  # and stays ended


async def test_write_reaches_the_program(pair: Pair) -> None:
    await asyncio.wait_for(pair.terminal.write(b"ls\r"), WAIT)
    assert read_all(pair.slave, 3) == b"ls\r"


async def test_write_waits_while_the_program_does_not_read_then_completes(pair: Pair) -> None:
    data = os.urandom(256 * 1024)  # far beyond the pty's input buffer
    write = asyncio.ensure_future(pair.terminal.write(data))
    await until(lambda: readable(pair.slave), "the first bytes reach the program's side")
    await settle()
    assert not write.done()  # backpressure: the kernel took what fits, the rest waits
    received = await asyncio.to_thread(read_all, pair.slave, len(data))
    await asyncio.wait_for(write, WAIT)
    assert received == data


async def test_close_wakes_a_pending_read_and_a_pending_write(pair: Pair) -> None:
    read = asyncio.ensure_future(pair.terminal.read())
    write = asyncio.ensure_future(pair.terminal.write(os.urandom(256 * 1024)))
    await settle()  # both wait on the pty
    assert not read.done() and not write.done()
    pair.terminal.close()
    assert await asyncio.wait_for(read, WAIT) == b""
    await asyncio.wait_for(write, WAIT)  # its data is dropped
    assert await pair.terminal.read() == b""
    await pair.terminal.write(b"more")  # dropped, no error


async def test_resize_sets_the_window_size_of_the_terminal(pair: Pair) -> None:
    pair.terminal.resize(132, 43)
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(pair.slave, termios.TIOCGWINSZ, b"\0" * 8))
    assert (cols, rows) == (132, 43)


@pytest.mark.parametrize("size", [(0, 24), (80, 0), (1001, 24), (80, 1001), (80, -1)])
async def test_resize_refuses_impossible_sizes(pair: Pair, size: tuple[int, int]) -> None:
    with pytest.raises(InvalidInput, match="window size .* is out of range"):
        pair.terminal.resize(*size)


async def test_terminate_hangs_up_every_session_member_then_kills_them(pair: Pair) -> None:
    pair.terminal.terminate()
    assert pair.signals == [
        (4242, signal.SIGHUP),
        (4243, signal.SIGHUP),
        (4242, signal.SIGCONT),
        (4243, signal.SIGCONT),
    ]
    await until(lambda: len(pair.signals) >= 6, "the grace (0.05 s) is over")
    assert pair.signals[4:] == [(4242, signal.SIGKILL), (4243, signal.SIGKILL)]
    pair.terminal.terminate()  # a second call does nothing
    assert len(pair.signals) == 6


async def test_a_reaped_leader_is_not_signalled_again(pair: Pair) -> None:
    pair.process.returncode = -1  # its pid may belong to another process by now
    pair.terminal.terminate()
    assert pair.signals == [(4243, signal.SIGHUP), (4243, signal.SIGCONT)]


async def test_close_of_a_running_session_terminates_it(pair: Pair) -> None:
    pair.terminal.close()
    assert (4242, signal.SIGHUP) in pair.signals


@pytest.mark.parametrize(("returncode", "exit_code"), [(0, 0), (7, 7), (-signal.SIGHUP, 129), (-signal.SIGKILL, 137)])
async def test_wait_reports_signals_like_a_shell(pair: Pair, returncode: int, exit_code: int) -> None:
    pair.process.returncode = returncode
    pair.process.exited.set()
    assert await pair.terminal.wait() == exit_code
