"""What one SSH session channel runs: a shell or command (on a pty or on pipes), or SFTP.

A channel asks for one of these, and this module decides how it runs, like sshd would:

- **pty + shell / pty + exec**: the ``TerminalFactory`` the agent already uses for sessions (it
  switches to the login account); the channel and the ``Terminal`` are bridged both ways, window
  changes become ``Terminal.resize`` and the exit code comes from ``Terminal.wait``.
- **exec / shell without a pty**: a process of the login account with stdin, stdout and stderr on
  separate pipes (``ssh host cmd``, ansible); its exit status or signal goes back to the client.
- **subsystem sftp**: asyncssh's SFTP server inside the agent when the login is the agent's own
  account; for any other account the host's ``sftp-server`` runs *as that account* on pipes, since
  serving another account's files with the agent's (root's) rights would bypass the file
  permissions. Legacy ``scp -O`` is served by asyncssh in the own-account case only.

Failures are reported to the client on the channel (stderr and exit status 1); they never leave
the channel's task, so one bad session cannot end the others or the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import posixpath
import re
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import cast

from fleetops.agent.sessions.interfaces import DEFAULT_HANGUP_GRACE, READ_CHUNK_SIZE, Terminal, TerminalFactory
from fleetops.agent.sessions.posix_launch import PtyLaunch, build_posix_launch
from fleetops.agent.ssh.activity import ActivityLog, FileTransfer
from fleetops.common.errors import FleetopsError, NotFound, PermissionDenied, Unavailable
from fleetops.common.ssh import asyncssh

log = logging.getLogger(__name__)

#: Where OpenSSH installs its SFTP server on Debian/Ubuntu, RHEL/Fedora/SUSE, and others.
SFTP_SERVER_PATHS = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/libexec/sftp-server")
#: Client variables passed to the session (sshd's usual ``AcceptEnv LANG LC_*``, plus LANGUAGE and TZ).
PASSED_VARIABLES = re.compile(r"LANG|LANGUAGE|TZ|LC_[A-Z_]+")
#: Longest value of a passed variable.
MAX_VARIABLE_LENGTH = 256
#: Window size used when a pty request carries none (as a VT100 has).
DEFAULT_COLUMNS, DEFAULT_ROWS = 80, 24
#: Exit status reported when the session could not start, as sshd reports its own failures.
START_FAILURE_STATUS = 1
#: SFTP protocol version asyncssh offers (OpenSSH's sftp speaks version 3).
SFTP_VERSION = 3

SessionProcess = asyncssh.SSHServerProcess[bytes]


@dataclass(frozen=True)
class LoginAccount:
    """The one account SSH sessions of a connection run as.

    Attributes:
        name: the account name (the SSH username).
        own: True when it is the agent's own account (then no user switch happens).
        home: its home directory (the SFTP server's starting directory).
    """

    name: str
    own: bool
    home: str


class SessionTasks:
    """The tasks serving channels of one connection, so the end of the connection can wait for them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()

    def add_current(self) -> None:
        """Count the running task until it finishes."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def start(self, coro: Awaitable[object]) -> None:
        """Run ``coro`` as a counted task."""
        task: asyncio.Task[object] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self) -> None:
        """Return once no counted task is left (each cleans up its processes before it ends)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))


class OwnAccountSftpServer(asyncssh.SFTPServer):
    """asyncssh's SFTP server, for the agent's own account only, starting in its home directory.

    Every file read or written is reported once closed (path, direction, size, and its SHA-256 when
    the whole file passed in order: ``activity.FileTransfer``).

    Args:
        chan: the channel it serves.
        account: the login (its home: relative paths start there, as sftp-server's do).
        activity: where file transfers are reported.
    """

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], account: LoginAccount, activity: ActivityLog) -> None:
        super().__init__(chan)
        self._home = os.fsencode(account.home)
        self._login = account.name
        self._activity = activity
        self._transfers: dict[int, FileTransfer] = {}

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        file_obj = super().open(path, pflags, attrs)
        self._transfers[id(file_obj)] = FileTransfer(os.fsdecode(path))
        return file_obj

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        data = cast(bytes, super().read(file_obj, offset, size))
        if (transfer := self._transfers.get(id(file_obj))) is not None:
            transfer.passed("download", offset, data)
        return data

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        written = cast(int, super().write(file_obj, offset, data))
        if (transfer := self._transfers.get(id(file_obj))) is not None:
            transfer.passed("upload", offset, data)
        return written

    def close(self, file_obj: object) -> None:
        transfer = self._transfers.pop(id(file_obj), None)
        size = None
        with contextlib.suppress(OSError, AttributeError, ValueError):
            size = os.fstat(file_obj.fileno()).st_size  # type: ignore[attr-defined]  # asyncssh file objects: an open file
        super().close(file_obj)
        if transfer is not None and transfer.direction:
            self._activity.audit("file.transfer", {"protocol": "sftp", **transfer.details(size, self._login)})

    def map_path(self, path: bytes) -> bytes:
        """Relative paths start at the home directory, not at the agent's working directory."""
        return path if path.startswith(b"/") else posixpath.join(self._home, path)

    def exit(self) -> None:
        """Report exit status 0 as the session ends.

        OpenSSH 9's ``scp`` speaks SFTP and exits 1 when the server closes the channel without an
        exit status, which asyncssh's default ``exit`` does.
        """
        with contextlib.suppress(OSError):
            self.channel.exit(0)


class SessionChannel(SessionProcess):
    """One session channel; hands each kind of request to the matching runner of this module.

    Args:
        account: the login account.
        terminals: starts sessions on a pty (the agent's ``TerminalFactory``).
        tasks: where the channel's task is counted.
        activity: where the channel reports its terminal (recorded) and its file transfers.
        file_transfer: sftp and scp are served (the operator's roles grant ``file.transfer``).
    """

    def __init__(
        self,
        account: LoginAccount,
        terminals: TerminalFactory,
        tasks: SessionTasks,
        activity: ActivityLog,
        file_transfer: bool = False,
    ) -> None:
        own_sftp: Callable[[asyncssh.channel.SSHChannel[bytes]], asyncssh.SFTPServer] | None = None
        if account.own:

            def own_sftp(chan: asyncssh.channel.SSHChannel[bytes]) -> asyncssh.SFTPServer:
                return OwnAccountSftpServer(cast(asyncssh.SSHServerChannel[bytes], chan), account, activity)

        super().__init__(self._serve, own_sftp, SFTP_VERSION, account.own and file_transfer)
        self._account = account
        self._activity = activity
        self._file_transfer = file_transfer
        self._terminals = terminals
        self._tasks = tasks

    def subsystem_requested(self, subsystem: str) -> bool:
        """Accept ``sftp``, the one subsystem there is."""
        if subsystem != "sftp":
            log.warning("SSH subsystem %r refused: only sftp is served", subsystem)
            return False
        if not self._file_transfer:
            log.warning("SSH sftp as %s refused: the operator's roles do not grant file.transfer", self._account.name)
            return False
        return True

    def session_started(self) -> None:
        """Start serving the request; SFTP of another account goes to the host's ``sftp-server``.

        asyncssh serves the ``sftp`` subsystem in-process whenever it is asked for, so the case of
        another account is taken here, before asyncssh would.
        """
        if self.channel.get_subsystem() == "sftp" and not self._account.own:
            stdin = asyncssh.SSHReader[bytes](self, self.channel)
            stdout = asyncssh.SSHWriter[bytes](self, self.channel)
            stderr = asyncssh.SSHWriter[bytes](self, self.channel, asyncssh.EXTENDED_DATA_STDERR)
            self._tasks.start(self._guarded(self._run_sftp_server_binary(stdin, stdout, stderr)))
            return
        super().session_started()

    async def _serve(self, process: SessionProcess) -> None:
        self._tasks.add_current()
        if process.term_type is not None:
            await self._guarded(self._run_on_terminal(process))
        else:
            await self._guarded(self._run_on_pipes(process.command, process.stdin, process.stdout, process.stderr))

    async def _guarded(self, run: Awaitable[int]) -> None:
        """Run one request and report its end (exit status or signal) or failure to the client."""
        try:
            returncode = await run
        except FleetopsError as exc:
            log.warning("SSH session as %s failed to start: %s", self._account.name, exc.message)
            self._fail(f"{exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
        except (asyncssh.Error, ConnectionError):
            pass  # the channel or connection is gone: nobody is left to tell
        except Exception:
            log.exception("SSH session as %s failed", self._account.name)
            self._fail("internal error of the fleetops agent (see its log)")
        else:
            self._report_end(returncode)

    def _fail(self, message: str) -> None:
        newline = "\r\n" if self.term_type is not None else "\n"
        with contextlib.suppress(OSError, asyncssh.Error):
            self.channel.write_stderr(f"fleetops-agent: {message}{newline}".encode())
            self.channel.exit(START_FAILURE_STATUS)

    def _report_end(self, returncode: int) -> None:
        with contextlib.suppress(OSError, asyncssh.Error):
            if returncode >= 0:
                self.channel.exit(returncode)
                return
            try:
                name = signal.Signals(-returncode).name.removeprefix("SIG")
            except ValueError:
                self.channel.exit(128 - returncode)
                return
            self.channel.exit_with_signal(name)

    # -- pty ------------------------------------------------------------------------------------
    async def _run_on_terminal(self, process: SessionProcess) -> int:
        """Bridge the channel to a new ``Terminal``; its exit code (shell-style, 128+N for signals)."""
        cols, rows = process.term_size[0] or DEFAULT_COLUMNS, process.term_size[1] or DEFAULT_ROWS
        term = process.term_type or "dumb"
        terminal = await self._terminals.spawn(
            self._account.name, process.command, cols, rows, term, passed_environment(process.env)
        )
        self._activity.terminal_opened(term, cols, rows, process.command)
        feeding = asyncio.create_task(_feed_terminal(process, terminal, self._activity))
        try:
            while data := await terminal.read():
                if not isinstance(data, bytes):
                    continue  # a pty reports no activity of its own
                await self._activity.terminal_output(data)  # recorded as opsctl session output is
                try:
                    process.stdout.write(data)
                    await process.stdout.drain()
                except (OSError, asyncssh.Error):
                    terminal.terminate()  # the client is gone: hang up, then read on to the end
            return await terminal.wait()
        finally:
            feeding.cancel()
            terminal.close()
            await asyncio.gather(feeding, return_exceptions=True)

    # -- pipes ----------------------------------------------------------------------------------
    async def _run_sftp_server_binary(
        self, stdin: asyncssh.SSHReader[bytes], stdout: asyncssh.SSHWriter[bytes], stderr: asyncssh.SSHWriter[bytes]
    ) -> int:
        program = next((path for path in SFTP_SERVER_PATHS if os.access(path, os.X_OK)), None)
        if program is None:
            raise NotFound(
                f"this host has no sftp-server, so SFTP as {self._account.name} is not available",
                "install the OpenSSH server package (openssh-server / openssh-sftp-server) on the host",
            )
        # The host's sftp-server speaks SFTP itself: the agent sees the bytes, not the files.
        self._activity.audit(
            "file.transfer", {"protocol": "sftp", "login": self._account.name, "server": program, "files": "not seen"}
        )
        return await self._run_on_pipes(program, stdin, stdout, stderr)

    async def _run_on_pipes(
        self,
        command: str | None,
        stdin: asyncssh.SSHReader[bytes],
        stdout: asyncssh.SSHWriter[bytes],
        stderr: asyncssh.SSHWriter[bytes],
    ) -> int:
        """Run ``command`` (the login shell when None) as the account on pipes; its ``returncode``."""
        launch = _pipe_launch(self._account.name, command, passed_environment(self.env))
        child = await _start_on_pipes(launch)
        log.info("SSH session process %s started as %s (pid %d)", launch.argv[0], self._account.name, child.pid)
        assert child.stdin is not None and child.stdout is not None and child.stderr is not None
        feeding = asyncio.create_task(_feed_pipe(stdin, child.stdin, child.pid, self.channel))
        try:
            await asyncio.gather(_drain_pipe(child.stdout, stdout), _drain_pipe(child.stderr, stderr))
            return await child.wait()
        finally:
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)
            if child.returncode is None:
                await _end_group(child)


def passed_environment(requested: Mapping[str, str]) -> dict[str, str]:
    """The client's variables a session gets: locale and time zone only (see :data:`PASSED_VARIABLES`)."""
    passed = {}
    for name, value in requested.items():
        if not isinstance(name, str) or not isinstance(value, str) or not PASSED_VARIABLES.fullmatch(name):
            continue
        if "\0" in value or len(value) > MAX_VARIABLE_LENGTH:
            continue
        passed[name] = value
    return passed


def _pipe_launch(account: str, command: str | None, env: Mapping[str, str]) -> PtyLaunch:
    """The launch of a session without a terminal: the pty launch without ``TERM`` (sshd sets none)."""
    launch = build_posix_launch(account, command, "dumb", env)
    environment = {name: value for name, value in launch.env.items() if name != "TERM"}
    return PtyLaunch(launch.executable, launch.argv, launch.cwd, environment, launch.user, launch.options)


async def _start_on_pipes(launch: PtyLaunch) -> asyncio.subprocess.Process:
    """Start ``launch`` with its stdio on pipes, in a process group of its own.

    Raises:
        NotFound: the shell or the home directory does not exist.
        PermissionDenied: the account may not use them.
        Unavailable: no process could be created.
    """
    try:
        return await asyncio.create_subprocess_exec(
            *launch.argv,
            executable=launch.executable,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=launch.cwd,
            env=launch.env,
            start_new_session=True,  # a group of its own: a hang-up reaches its children too
            **launch.options,
        )
    except FileNotFoundError as exc:
        raise NotFound(
            f"cannot start {launch.executable} as {launch.user.name}: {exc.filename} does not exist",
            "fix the account's shell or home directory in the password database",
        ) from exc
    except PermissionError as exc:
        raise PermissionDenied(f"cannot start {launch.executable} as {launch.user.name}: {exc.strerror}") from exc
    except OSError as exc:
        raise Unavailable(
            f"cannot start {launch.executable}: {exc.strerror or exc}",
            "the host may be out of processes or memory; retry later",
        ) from exc


async def _feed_terminal(process: SessionProcess, terminal: Terminal, activity: ActivityLog) -> None:
    """Client input to the terminal, window changes to ``resize``; hang up once the channel closes."""
    while True:
        try:
            data = await process.stdin.read(READ_CHUNK_SIZE)
        except asyncssh.TerminalSizeChanged as change:
            with contextlib.suppress(FleetopsError):
                terminal.resize(change.width, change.height)
                activity.terminal_resized(change.width, change.height)
            continue
        except (asyncssh.BreakReceived, asyncssh.SignalReceived):
            continue  # a terminal session gets Ctrl-C as a byte; signal requests are not needed
        except (OSError, asyncssh.Error):
            break
        if not data:
            break
        try:
            await terminal.write(data)
        except FleetopsError:
            break
    await process.channel.wait_closed()
    terminal.terminate()


async def _feed_pipe(
    source: asyncssh.SSHReader[bytes], pipe: asyncio.StreamWriter, pgid: int, channel: asyncssh.SSHServerChannel[bytes]
) -> None:
    """Client input to the process; its end closes the pipe; a closed channel hangs the process up."""
    while True:
        try:
            data = await source.read(READ_CHUNK_SIZE)
        except asyncssh.SignalReceived as received:
            _signal_group(pgid, received.signal)
            continue
        except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged):
            continue
        except (OSError, asyncssh.Error):
            break
        if not data:
            break
        try:
            pipe.write(data)
            await pipe.drain()
        except (BrokenPipeError, ConnectionResetError):
            break  # the process closed its input: later input has no reader
    with contextlib.suppress(OSError):
        pipe.close()
    await channel.wait_closed()
    # The client is gone: hang up, as sshd's closed connection does; this task is cancelled as
    # soon as the process has exited, so the kill never reaches a reused process group id.
    _signal_group(pgid, "HUP")
    _signal_group(pgid, "CONT")
    await asyncio.sleep(DEFAULT_HANGUP_GRACE)
    _signal_group(pgid, "KILL")


async def _drain_pipe(pipe: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
    """Copy a process's output to the channel until its end; keep reading if the client is gone."""
    client_gone = False
    while data := await pipe.read(READ_CHUNK_SIZE):
        if client_gone:
            continue  # read on, so the process never blocks on a full pipe while it is hung up
        try:
            sink.write(data)
            await sink.drain()
        except (OSError, asyncssh.Error):
            client_gone = True
    # No EOF here: stdout and stderr share the channel's one EOF, which the exit status brings.


async def _end_group(child: asyncio.subprocess.Process) -> None:
    """Hang up the process group of ``child`` and kill it after the grace; reap ``child``."""
    _signal_group(child.pid, "HUP")
    _signal_group(child.pid, "CONT")
    try:
        await asyncio.wait_for(asyncio.shield(child.wait()), DEFAULT_HANGUP_GRACE)
    except TimeoutError:
        _signal_group(child.pid, "KILL")
        await child.wait()


def _signal_group(pgid: int, name: str) -> None:
    """Send ``SIG<name>`` (as SSH names signals: ``INT``, ``HUP``...) to a process group, if it is there."""
    signum = getattr(signal, f"SIG{name}", None)
    if not isinstance(signum, signal.Signals):
        log.info("SSH signal request %r ignored: not a signal", name)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
