"""Drive a program on a real pseudo-terminal, as a person at a terminal would.

The program gets the pty's slave as its controlling terminal (so resizing the window sends it
SIGWINCH, as a terminal emulator's does). Reads wait for a pattern with a deadline: no fixed sleeps.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Sequence
from pathlib import Path


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _take_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyProcess:
    def __init__(
        self, argv: Sequence[str], env: dict[str, str], cols: int = 80, rows: int = 24, stderr: Path | None = None
    ) -> None:
        """Start ``argv`` on a new pty of ``cols`` x ``rows``; ``stderr`` elsewhere than the pty if given."""
        master, slave = os.openpty()
        _set_size(slave, cols, rows)
        err = os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) if stderr else slave
        self.master = master
        self.process = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=err,
            env=env,
            start_new_session=True,
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        if err != slave:
            os.close(err)
        self.output = b""
        self._seen = 0
        self.closed = False

    def send(self, data: bytes | str) -> None:
        os.write(self.master, data.encode() if isinstance(data, str) else data)

    def resize(self, cols: int, rows: int) -> None:
        _set_size(self.master, cols, rows)  # the kernel signals the foreground group (SIGWINCH)

    def expect(self, pattern: bytes | str, timeout: float = 30.0) -> re.Match[bytes]:
        """Read until ``pattern`` (a regex) matches output after the previous match."""
        regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.output, self._seen)
            if match:
                self._seen = match.end()
                return match
            if self.closed:
                raise AssertionError(f"the terminal closed without {regex.pattern!r}; got {self.output[-3000:]!r}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {regex.pattern!r} within {timeout}s; got {self.output[-3000:]!r}")
            self._read(remaining)

    def read_to_end(self, timeout: float = 60.0) -> bytes:
        """Everything until the program closes the terminal."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"the terminal stayed open for {timeout}s; got {self.output[-3000:]!r}")
            self._read(remaining)
        return self.output

    def wait(self, timeout: float = 60.0) -> int:
        self.read_to_end(timeout)
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.master], [], [], min(timeout, 1.0))
        if not ready:
            return
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every process holding the slave has closed it
            data = b""
        if not data:
            self.closed = True
        self.output += data
