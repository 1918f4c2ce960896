"""Sessions on Linux and macOS: the login shell on a real pseudo-terminal, driven by the event loop.

The shell gets the pty's slave side as stdin, stdout, stderr *and controlling terminal*, in a
session of its own. That is what makes it a terminal session rather than a pipe: Ctrl-C (``\\x03``
written to the master) makes the kernel send SIGINT to the foreground process group, Ctrl-Z stops
it and the shell's job control takes over, and a resize reaches the foreground program as SIGWINCH.

The master side stays in the agent, non-blocking, read and written through the event loop
(``add_reader``/``add_writer``): no thread per session.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import signal
import struct
import subprocess
import termios
from collections.abc import Callable, Mapping

import psutil

from fleetops.agent.commands.posix import UserDatabase
from fleetops.agent.sessions.interfaces import DEFAULT_HANGUP_GRACE, READ_CHUNK_SIZE
from fleetops.agent.sessions.posix_launch import PtyLaunch, build_posix_launch
from fleetops.agent.sessions.validation import exit_code_from_returncode
from fleetops.common.errors import InternalError, NotFound, PermissionDenied, Unavailable
from fleetops.common.terminal import check_size

log = logging.getLogger(__name__)


def _acquire_controlling_terminal() -> None:
    # Runs in the child between fork and exec, after subprocess has called setsid() (so the child
    # leads a new session without a controlling terminal), dup2'ed the slave onto 0/1/2 and switched
    # user. Why it is needed: Popen only dup2()s the inherited slave fd, and a session leader gets a
    # controlling terminal by open()ing a tty, never by dup2 -- without this ioctl the shell would
    # have no controlling terminal: no Ctrl-C, no job control ("no job control in this shell").
    # Why a preexec_fn rather than a helper program doing the ioctl: a helper must be executable by
    # the target user, and the agent's interpreter may live where that user cannot read it. The
    # function is one ioctl on a module imported long before the fork: it takes no lock that
    # another agent thread could hold at fork time, which is what makes preexec_fn unsafe in general.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PosixTerminalFactory:
    """Starts login shells on pseudo-terminals; implements ``TerminalFactory``.

    Args:
        users: account lookups (replaced in tests).
        environ: the agent's environment (``LANG`` is passed on from it); default ``os.environ``.
        hangup_grace: seconds :meth:`PosixTerminal.terminate` waits before killing what is left.
    """

    def __init__(
        self,
        *,
        users: UserDatabase | None = None,
        environ: Mapping[str, str] | None = None,
        hangup_grace: float = DEFAULT_HANGUP_GRACE,
    ) -> None:
        self._users = users
        self._environ = environ
        self._hangup_grace = hangup_grace

    async def spawn(
        self,
        user: str | None,
        command: str | None,
        cols: int,
        rows: int,
        term: str,
        env: Mapping[str, str],
    ) -> PosixTerminal:
        """Start ``user``'s shell on a new pty. See ``TerminalFactory.spawn``.

        Raises:
            InvalidInput: a malformed size, terminal type, command or environment.
            NotFound: no such user, or their shell is missing.
            PermissionDenied: switching users needs root; the account has no login shell; the shell
                or home directory may not be used.
            Unavailable: no pty or process could be created (the host is out of them).
        """
        check_size(cols, rows)
        launch = build_posix_launch(user, command, term, env, users=self._users, agent_environ=self._environ)
        master, slave = _open_pty(cols, rows)
        try:
            process = await _start(launch, slave)
        except BaseException:
            os.close(master)
            raise
        finally:
            # The child has its own copies now. Keeping ours open would hide the end of the session:
            # the master reports EOF (EIO) only once no slave fd is left open anywhere.
            os.close(slave)
        os.set_blocking(master, False)
        log.info("session shell %s started as %s on a pty (pid %d)", launch.executable, launch.user.name, process.pid)
        return PosixTerminal(process, master, hangup_grace=self._hangup_grace, shell=launch.executable)


class PosixTerminal:
    """A shell on a pseudo-terminal; implements ``Terminal``. Made by :class:`PosixTerminalFactory`."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        master: int,
        *,
        hangup_grace: float = DEFAULT_HANGUP_GRACE,
        session_members: Callable[[int], list[int]] | None = None,
        kill: Callable[[int, int], None] = os.kill,
        shell: str = "",
    ) -> None:
        self._process = process
        self.shell = shell  # the program started on the terminal (path), for the session record
        self._master = master
        self._hangup_grace = hangup_grace
        self._session_members = session_members or _session_members
        self._kill = kill
        self._loop = asyncio.get_running_loop()
        self._eof = False
        self._terminating = False
        self._kill_timer: asyncio.TimerHandle | None = None
        # Futures of reads and writes waiting for the fd; close() resolves them so nobody hangs.
        self._waiters: set[asyncio.Future[None]] = set()

    @property
    def pid(self) -> int:
        return self._process.pid

    async def read(self) -> bytes:
        """Up to 64 KiB of output; ``b""`` at the end. See ``Terminal.read``.

        Once output is there, whatever else the pty has ready at that moment is gathered into the
        same chunk (a pty hands out at most a few KiB per ``read(2)``): a fast program such as
        ``yes`` or ``cat`` of a big file makes few large chunks rather than many small ones.

        Raises:
            Unavailable: reading the pty failed other than by the session ending.
        """
        while not self._eof and self._master >= 0:
            fd = self._master
            try:
                data = os.read(fd, READ_CHUNK_SIZE)
            except BlockingIOError:
                await self._until_ready(fd, writing=False)
                continue
            except OSError as exc:
                if exc.errno == errno.EIO:
                    # Linux: every slave fd is closed, the session is over.
                    self._eof = True
                    break
                raise Unavailable(f"reading the session's terminal failed: {exc.strerror or exc}") from exc
            if not data:  # macOS and the BSDs report the end as a 0-byte read
                self._eof = True
                break
            return self._gather(fd, data)
        return b""

    async def write(self, data: bytes) -> None:
        """Send ``data`` to the shell, waiting while the terminal's input buffer is full. See ``Terminal.write``.

        Raises:
            Unavailable: writing to the pty failed other than by the session ending.
        """
        view = memoryview(data)
        while view and not self._eof and self._master >= 0:
            fd = self._master
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                # The program is not reading its input: wait until it does (backpressure), the
                # session ends (a hang-up wakes writers too) or the terminal is closed.
                await self._until_ready(fd, writing=True)
                continue
            except OSError as exc:
                if exc.errno == errno.EIO:
                    return  # the session is over: the rest of the input has no reader
                raise Unavailable(f"writing to the session's terminal failed: {exc.strerror or exc}") from exc
            view = view[written:]

    def resize(self, cols: int, rows: int) -> None:
        """Set the window size; the kernel sends SIGWINCH to the foreground process group.

        Raises:
            InvalidInput: a dimension is out of range.
        """
        check_size(cols, rows)
        if self._master >= 0:
            _set_window_size(self._master, cols, rows)

    async def wait(self) -> int:
        """Wait for the shell to exit: its exit code, or ``128 + signal``. See ``Terminal.wait``."""
        return exit_code_from_returncode(await self._process.wait())

    def terminate(self) -> None:
        """Hang up: SIGHUP (and SIGCONT) to every process of the session, SIGKILL after the grace.

        Every member of the session is signalled, not only the shell's process group: an
        interactive shell puts each job in a process group of its own. Processes that left the
        session (``setsid``, daemons) are not touched, as with a closed SSH connection.
        """
        if self._terminating:
            return
        self._terminating = True
        self._signal_session(signal.SIGHUP)
        # A stopped job (Ctrl-Z) cannot act on the hang-up until it runs again.
        self._signal_session(signal.SIGCONT)
        self._kill_timer = self._loop.call_later(self._hangup_grace, self._signal_session, signal.SIGKILL)

    def close(self) -> None:
        """Terminate a running session and close the master. See ``Terminal.close``."""
        if self._master < 0:
            return
        if self._process.returncode is None:
            self.terminate()
        fd, self._master = self._master, -1
        self._loop.remove_reader(fd)
        self._loop.remove_writer(fd)
        os.close(fd)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- internals ----------------------------------------------------------------------------
    def _gather(self, fd: int, first: bytes) -> bytes:
        """``first`` and the output ready right now (without waiting), up to READ_CHUNK_SIZE in all."""
        chunks = [first]
        size = len(first)
        while size < READ_CHUNK_SIZE:
            try:
                more = os.read(fd, READ_CHUNK_SIZE - size)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EIO:
                    self._eof = True  # the next read reports the end
                # Another error: hand out what was read; the next read reports the error.
                break
            if not more:
                self._eof = True
                break
            chunks.append(more)
            size += len(more)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _until_ready(self, fd: int, *, writing: bool) -> None:
        waiter: asyncio.Future[None] = self._loop.create_future()
        add = self._loop.add_writer if writing else self._loop.add_reader
        remove = self._loop.remove_writer if writing else self._loop.remove_reader
        add(fd, _resolve, waiter)
        self._waiters.add(waiter)
        try:
            await waiter
        finally:
            self._waiters.discard(waiter)
            if self._master == fd:  # after close() the number may already belong to another file
                remove(fd)

    def _signal_session(self, signum: int) -> None:
        for pid in self._session_members(self._process.pid):
            if pid == self._process.pid and self._process.returncode is not None:
                continue  # reaped already: the number may be someone else's now
            with contextlib.suppress(ProcessLookupError, PermissionError):
                self._kill(pid, signum)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _session_members(sid: int) -> list[int]:
    """Pids of the processes in session ``sid`` (its leader included while it exists)."""
    if sid <= 1:
        return []
    members = []
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == sid:
                members.append(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return members


def _open_pty(cols: int, rows: int) -> tuple[int, int]:
    """A new pty pair (master, slave) of the given size, in UTF-8 input mode.

    Raises:
        Unavailable: no pty is free (``/dev/ptmx`` exhausted, fd limit reached).
    """
    try:
        master, slave = os.openpty()  # both close-on-exec; the slave opened with O_NOCTTY
    except OSError as exc:
        raise Unavailable(
            f"cannot open a pseudo-terminal for the session: {exc.strerror or exc}",
            "the host is out of pseudo-terminals or file descriptors; retry later",
        ) from exc
    try:
        _set_window_size(master, cols, rows)
        attributes = termios.tcgetattr(slave)
        # The controller speaks UTF-8: with IUTF8 the line editor erases a whole multi-byte
        # character on backspace instead of one byte of it.
        attributes[0] |= getattr(termios, "IUTF8", 0)
        termios.tcsetattr(slave, termios.TCSANOW, attributes)
    except BaseException:
        os.close(master)
        os.close(slave)
        raise
    return master, slave


def _set_window_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


async def _start(launch: PtyLaunch, slave: int) -> asyncio.subprocess.Process:
    """Start the shell with the slave as its stdio and controlling terminal, in a new session.

    Raises:
        NotFound: the shell or the home directory does not exist.
        PermissionDenied: the shell or home directory may not be used by the account.
        Unavailable: the process could not be created (process limit, memory).
        InternalError: making the pty the controlling terminal failed.
    """
    try:
        return await asyncio.create_subprocess_exec(
            *launch.argv,
            executable=launch.executable,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=launch.cwd,
            env=launch.env,
            start_new_session=True,
            preexec_fn=_acquire_controlling_terminal,
            **launch.options,
        )
    except FileNotFoundError as exc:
        missing = launch.cwd if exc.filename == launch.cwd else launch.executable
        raise NotFound(
            f"cannot start the session shell of {launch.user.name}: {missing} does not exist",
            "fix the account's shell or home directory in the password database",
        ) from exc
    except PermissionError as exc:
        raise PermissionDenied(
            f"cannot start the session shell {launch.executable} as {launch.user.name}: {exc.strerror or exc}",
        ) from exc
    except subprocess.SubprocessError as exc:
        raise InternalError(f"cannot give the session its controlling terminal: {exc}") from exc
    except OSError as exc:
        raise Unavailable(
            f"cannot start the session shell {launch.executable}: {exc.strerror or exc}",
            "the host may be out of processes or memory; retry later",
        ) from exc
