"""Sessions on Windows: a shell on a ConPTY pseudo-console, through pywinpty's ``winpty.PTY``.

Written for real but only unit-tested here, against a fake ``winpty`` module that records calls:
CI has no Windows. pywinpty is imported on the first spawn, so this module imports anywhere.

How it maps onto ``Terminal``:

- pywinpty's calls block (a read waits for output), so each terminal has one thread for reads and
  one for writes; short status calls go to the default executor. The binding speaks ``str``:
  output is encoded to UTF-8 here (ConPTY emits UTF-8 VT sequences) and input decoded from UTF-8
  incrementally, so a character split across two writes arrives whole.
- Windows has no hang-up signal that reaches every console program of a session (a pseudo-console
  only sends CTRL_CLOSE_EVENT when it is destroyed, which pywinpty does only when the PTY object is
  garbage collected), so ``terminate`` kills the process tree at once with ``taskkill /T /F``.
- Sessions as another user are refused for now: that needs a logon token (LogonUser or S4U) and
  CreateProcessAsUser, which pywinpty does not offer.
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import importlib
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from fleetops.agent.commands.windows import BASE_ENVIRONMENT, kill_tree_argv
from fleetops.agent.sessions.interfaces import READ_CHUNK_SIZE, SIGNAL_EXIT_BASE
from fleetops.agent.sessions.validation import (
    check_command,
    check_environment,
    check_term,
)
from fleetops.common.errors import InternalError, NotFound, PermissionDenied, Unavailable
from fleetops.common.terminal import check_size

log = logging.getLogger(__name__)

T = TypeVar("T")

POWERSHELL = "powershell.exe"
#: ``winpty.Backend.ConPTY``: the native pseudo-console (Windows 10 1809 / Server 2019 and later).
CONPTY_BACKEND = 0
#: NTSTATUS a console program exits with when Ctrl-C ends it; reported like a shell's SIGINT (130).
STATUS_CONTROL_C_EXIT = 0xC000013A
SIGINT = 2
SIGHUP = 1
#: ``TERM`` is set from the request; Windows programs mostly ignore it, ports of Unix tools read it.
RESERVED_VARIABLES = ("TERM",)
#: Seconds between two looks at whether the shell has exited (the binding has no wait call).
DEFAULT_POLL_INTERVAL = 0.1


@dataclass(frozen=True)
class ConptyLaunch:
    """What ``winpty.PTY.spawn`` is given.

    Attributes:
        appname: the program, quoted when its path has spaces: the binding puts it first on the
            command line it passes to CreateProcess.
        cmdline: the rest of the command line, or ``None``.
        cwd: the working directory.
        env: the whole environment.
    """

    appname: str
    cmdline: str | None
    cwd: str
    env: dict[str, str]

    def environment_block(self) -> str:
        """The environment as CreateProcess wants it: ``NAME=value`` entries, each ended by NUL."""
        return "".join(f"{name}={value}\0" for name, value in self.env.items())


def shell_arguments(shell: str, command: str | None) -> str | None:
    """The command line after the shell's name, by the kind of shell.

    - PowerShell (``powershell``, ``pwsh``): ``-NoLogo`` (profiles load, as at a login), and
      ``-Command <command>`` quoted so that it reaches PowerShell as one argument.
    - ``cmd``: nothing, or ``/s /c "<command>"``: with ``/s`` cmd strips exactly the outer quotes and
      runs the rest verbatim, whatever quotes the command has.
    - any other shell (e.g. Git's ``bash.exe``): nothing, or ``-c <command>``.
    """
    name = os.path.splitext(os.path.basename(shell.replace("\\", "/")))[0].lower()
    if name in ("powershell", "pwsh"):
        return subprocess.list2cmdline(["-NoLogo", *(["-Command", command] if command is not None else [])])
    if name == "cmd":
        return None if command is None else f'/s /c "{command}"'
    return None if command is None else subprocess.list2cmdline(["-c", command])


def build_conpty_launch(
    shell: str,
    command: str | None,
    term: str,
    env: Mapping[str, str],
    environ: Mapping[str, str],
    which: Callable[..., str | None] = shutil.which,
) -> ConptyLaunch:
    """The shell's launch: base environment of the agent, ``TERM``, then the request's variables.

    Raises:
        InvalidInput: malformed ``term``, ``command`` or ``env``.
        NotFound: ``shell`` is not found on the agent's ``PATH``.
    """
    check_term(term)
    check_command(command)
    check_environment(env, RESERVED_VARIABLES)
    # os.environ is case-insensitive on Windows; a plain mapping in tests is not.
    lowered = {key.lower(): value for key, value in environ.items()}
    session_env = {name: lowered[name.lower()] for name in BASE_ENVIRONMENT if name.lower() in lowered}
    session_env["TERM"] = term
    session_env.update(env)
    program = which(shell, path=lowered.get("path"))
    if program is None:
        raise NotFound(f"session shell {shell} not found on this host", "configure the agent's session shell")
    appname = subprocess.list2cmdline([program])
    cwd = lowered.get("userprofile") or (lowered.get("systemdrive", "C:") + "\\")
    return ConptyLaunch(appname=appname, cmdline=shell_arguments(shell, command), cwd=cwd, env=session_env)


def exit_code_from_status(status: int | None, *, terminated: bool = False) -> int:
    """The session's exit code from the process' exit status.

    Ctrl-C's ``STATUS_CONTROL_C_EXIT`` becomes 130 and a session ended by ``terminate`` 129, the
    codes a POSIX shell reports for SIGINT and SIGHUP, so session records read alike on every OS.
    An unknown status (the binding could not tell) is -1.
    """
    if terminated:
        return SIGNAL_EXIT_BASE + SIGHUP
    if status is None:
        return -1
    if status == STATUS_CONTROL_C_EXIT:
        return SIGNAL_EXIT_BASE + SIGINT
    return status


class ConptyTerminalFactory:
    """Starts shells on ConPTY pseudo-consoles; implements ``TerminalFactory``.

    Args:
        shell: the program to run (default Windows PowerShell; ``cmd.exe`` and ``pwsh.exe`` work).
        environ: the agent's environment; default ``os.environ``.
        pty_module: the ``winpty`` module (a fake in tests); imported on first use when ``None``.
        runner: runs ``taskkill`` (replaced in tests).
        which: finds the shell on ``PATH`` (replaced in tests).
        poll_interval: seconds between checks whether the shell has exited.
    """

    def __init__(
        self,
        *,
        shell: str = POWERSHELL,
        environ: Mapping[str, str] | None = None,
        pty_module: ModuleType | Any | None = None,
        runner: Callable[..., Any] = subprocess.run,
        which: Callable[..., str | None] = shutil.which,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        self._shell = shell
        self._environ = environ
        self._module = pty_module
        self._runner = runner
        self._which = which
        self._poll_interval = poll_interval

    async def spawn(
        self,
        user: str | None,
        command: str | None,
        cols: int,
        rows: int,
        term: str,
        env: Mapping[str, str],
    ) -> ConptyTerminal:
        """Start the configured shell on a new pseudo-console. See ``TerminalFactory.spawn``.

        Raises:
            InvalidInput: a malformed size, terminal type, command or environment.
            PermissionDenied: ``user`` is given: sessions as another user are not supported on Windows.
            NotFound: the shell is not found.
            Unavailable: the pseudo-console or the process could not be created.
            InternalError: pywinpty is not installed.
        """
        if user:
            raise PermissionDenied(
                f"cannot open a session as {user}: sessions as another user are not supported on Windows yet",
                "omit the user: the session then runs as the agent's own account",
            )
        check_size(cols, rows)
        environ = os.environ if self._environ is None else self._environ
        launch = build_conpty_launch(self._shell, command, term, env, environ, self._which)
        module = self._module if self._module is not None else _import_winpty()
        backend = getattr(getattr(module, "Backend", None), "ConPTY", CONPTY_BACKEND)
        error_type: type[BaseException] = getattr(module, "WinptyError", Exception)
        try:
            # Creating a pseudo-console starts conhost and can take a moment: not on the event loop.
            pty = await asyncio.to_thread(_create_and_spawn, module, backend, cols, rows, launch)
        except error_type as exc:
            raise Unavailable(
                f"cannot start {self._shell} on a pseudo-console: {exc}",
                "ConPTY needs Windows 10 1809 / Server 2019 or later",
            ) from exc
        log.info("session shell %s started on a pseudo-console (pid %s)", self._shell, pty.pid)
        return ConptyTerminal(pty, error_type=error_type, runner=self._runner, poll_interval=self._poll_interval)


class ConptyTerminal:
    """A shell on a ConPTY pseudo-console; implements ``Terminal``. Made by :class:`ConptyTerminalFactory`."""

    def __init__(
        self,
        pty: Any,
        *,
        error_type: type[BaseException] = Exception,
        runner: Callable[..., Any] = subprocess.run,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        self._pty = pty
        self._pid = int(pty.pid or 0)
        self._error_type = error_type
        self._runner = runner
        self._poll_interval = poll_interval
        # One thread each: a read blocks until output comes, a write while the console's input is full.
        self._reader = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fleetops-conpty-read")
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fleetops-conpty-write")
        self._input = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = b""
        self._eof = False
        self._exited = False
        self._terminated = False
        self._closed = asyncio.Event()
        self._kill: asyncio.Future[None] | None = None

    @property
    def pid(self) -> int:
        return self._pid

    async def read(self) -> bytes:
        """Up to 64 KiB of output as UTF-8; ``b""`` at the end. See ``Terminal.read``.

        Raises:
            Unavailable: the pseudo-console failed while the shell still runs.
        """
        while not self._pending and not self._eof and not self._closed.is_set():
            try:
                done, text = await self._until_closed(self._reader, self._pty.read, READ_CHUNK_SIZE, True)
            except self._error_type as exc:
                # The binding reports the end of output as an error ("Standard out reached EOF").
                if await self._output_ended():
                    self._eof = True
                    break
                raise Unavailable(f"reading the session's pseudo-console failed: {exc}") from exc
            if not done:
                break
            if text:
                self._pending = text.encode("utf-8", errors="replace")
            elif await self._output_ended():
                self._eof = True
            else:
                await asyncio.sleep(self._poll_interval)  # the binding's read gave up waiting; look again
        chunk, self._pending = self._pending[:READ_CHUNK_SIZE], self._pending[READ_CHUNK_SIZE:]
        return chunk

    async def write(self, data: bytes) -> None:
        """Send ``data`` (UTF-8) to the shell. See ``Terminal.write``.

        Raises:
            Unavailable: the pseudo-console failed while the shell still runs.
        """
        text = self._input.decode(data)
        if not text or self._eof or self._closed.is_set():
            return
        try:
            await self._until_closed(self._writer, self._pty.write, text)
        except self._error_type as exc:
            if await self._output_ended():
                return  # the shell is gone: its input has no reader
            raise Unavailable(f"writing to the session's pseudo-console failed: {exc}") from exc

    def resize(self, cols: int, rows: int) -> None:
        """Resize the pseudo-console; console programs see a window-size event.

        Raises:
            InvalidInput: a dimension is out of range.
        """
        check_size(cols, rows)
        if not self._closed.is_set():
            self._pty.set_size(cols, rows)

    async def wait(self) -> int:
        """Wait for the shell to exit. See ``Terminal.wait`` and :func:`exit_code_from_status`."""
        pty = self._pty
        # isalive() itself waits up to 100 ms for the process; the sleep keeps idle sessions cheap.
        while await asyncio.to_thread(pty.isalive):
            await asyncio.sleep(self._poll_interval)
        self._exited = True
        status = await asyncio.to_thread(pty.get_exitstatus)
        return exit_code_from_status(status, terminated=self._terminated)

    def terminate(self) -> None:
        """Kill the shell and every process it started (``taskkill /T /F``), at once. See module docs."""
        if self._terminated or self._pid <= 0:
            return
        self._terminated = True
        self._kill = asyncio.get_running_loop().run_in_executor(None, self._kill_tree)

    def close(self) -> None:
        """Terminate a running shell and release the threads. See ``Terminal.close``."""
        if self._closed.is_set():
            return
        if not self._exited:
            self.terminate()
        self._closed.set()
        # A read blocked in the binding returns once the killed shell's output ends; the PTY (and
        # with it the pseudo-console) is released when that last reference is gone.
        self._reader.shutdown(wait=False, cancel_futures=True)
        self._writer.shutdown(wait=False, cancel_futures=True)

    # -- internals ----------------------------------------------------------------------------
    async def _until_closed(
        self, executor: concurrent.futures.Executor, function: Callable[..., T], *args: Any
    ) -> tuple[bool, T | None]:
        """Run ``function`` in ``executor``; ``(False, None)`` if the terminal is closed first."""
        call = asyncio.get_running_loop().run_in_executor(executor, function, *args)
        closed: asyncio.Future[Any] = asyncio.ensure_future(self._closed.wait())
        waiting: set[asyncio.Future[Any]] = {call, closed}
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
        if not call.done():
            # Leave the call to finish in its thread; its outcome no longer matters.
            call.add_done_callback(_discard_outcome)
            return False, None
        return True, call.result()

    async def _output_ended(self) -> bool:
        try:
            return bool(await asyncio.to_thread(self._pty.iseof))
        except self._error_type:
            return True  # the binding cannot even look: the console is gone

    def _kill_tree(self) -> None:
        argv = kill_tree_argv(self._pid)
        try:
            result = self._runner(argv, capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("could not end session process tree %d: %s", self._pid, exc)
            return
        if getattr(result, "returncode", 0) not in (0, 128):  # 128: the process was gone already
            log.warning("taskkill of session process tree %d exited %s", self._pid, result.returncode)


def _discard_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not log "exception was never retrieved"


def _create_and_spawn(module: Any, backend: int, cols: int, rows: int, launch: ConptyLaunch) -> Any:
    pty = module.PTY(cols, rows, backend=backend)
    started = pty.spawn(launch.appname, cmdline=launch.cmdline, cwd=launch.cwd, env=launch.environment_block())
    if not started:
        raise Unavailable(f"the pseudo-console did not start {launch.appname}")
    return pty


def _import_winpty() -> ModuleType:
    """pywinpty's ``winpty`` module.

    Raises:
        InternalError: pywinpty is not installed (it is a Windows-only dependency of the agent).
    """
    try:
        return importlib.import_module("winpty")
    except ImportError as exc:
        raise InternalError(
            "interactive sessions on Windows need pywinpty, which is not installed",
            "reinstall the agent with its Windows dependencies (pip install pywinpty)",
        ) from exc
