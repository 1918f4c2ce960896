"""How a command is started and stopped on this operating system: one interface, two implementations.

``CommandPlatform.build_launch`` turns a RunInvocation into a ``Launch`` (argv, cwd, env and the
OS-specific process options) without side effects, so it is unit-tested on any OS; ``spawn``
writes the script file, starts the process with its output going straight to the spool files,
and explains failures. ``posix.PosixPlatform`` and ``windows.WindowsPlatform`` fill in the rest.
"""

from __future__ import annotations

import abc
import asyncio
import os
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from fleetops.common.errors import InvalidInput
from fleetops.v1 import agent_pb2

# Exit codes by which a script asks for a reboot (SSM's convention: 194 on POSIX; 3010 is
# Windows' ERROR_SUCCESS_REBOOT_REQUIRED).
POSIX_REBOOT_EXIT_CODE = 194
WINDOWS_REBOOT_EXIT_CODE = 3010

# Exit codes for a command that could not be started (the shells' convention).
EXIT_NOT_FOUND = 127
EXIT_CANNOT_EXECUTE = 126
# No process ever ran: refused before the spawn (bad user, bad request).
EXIT_NOT_STARTED = -1


class CommandNotStarted(InvalidInput):
    """The command could not be started; the invocation fails with ``reason`` and ``exit_status``.

    Args:
        reason: what went wrong, for the operator (e.g. "no such user: alice").
        exit_status: the exit code reported: 127 not found, 126 not executable, -1 refused.
    """

    def __init__(self, reason: str, exit_status: int = EXIT_NOT_STARTED) -> None:
        super().__init__(reason)
        self.exit_status = exit_status


@dataclass(frozen=True)
class Launch:
    """Everything needed to start one command process."""

    argv: tuple[str, ...]
    cwd: str | None
    env: dict[str, str]
    # Platform-specific keyword arguments for subprocess.Popen (session, user switch, creation flags).
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Spawned:
    """A started command: its process and the script file to delete once it has exited."""

    process: asyncio.subprocess.Process
    script_path: Path | None


def process_is_alive(pid: int, started: float | None) -> bool:
    """Whether ``pid`` still runs and is the process that started at ``started`` (not a reused pid)."""
    if pid <= 0:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - started) < 0.5
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def process_start_time(pid: int) -> float | None:
    """The OS's start time of ``pid``, or None when it has exited already."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def check_what_to_run(spec: agent_pb2.RunInvocation) -> None:
    """Check the invocation names exactly one thing to run.

    Raises:
        CommandNotStarted: neither an argv nor a script, both, or an empty program name.
    """
    if spec.argv and spec.script:
        raise CommandNotStarted("invalid invocation: it has both an argv and a script; give one")
    if not spec.argv and not spec.script:
        raise CommandNotStarted("invalid invocation: it has neither an argv nor a script")
    if spec.argv and not spec.argv[0]:
        raise CommandNotStarted("invalid invocation: the program name (argv[0]) is empty")


class CommandPlatform(abc.ABC):
    """How commands are spawned, signalled and reaped on one operating system."""

    #: the exit code by which a script asks for a reboot
    reboot_exit_code: int
    #: file name suffix of script files (the interpreter may insist on it)
    script_suffix: str

    def __init__(self, script_dir: Path | None = None) -> None:
        self._script_dir = script_dir

    @abc.abstractmethod
    def build_launch(self, spec: agent_pb2.RunInvocation, script_path: Path | None) -> Launch:
        """The process to start for ``spec``; ``script_path`` holds ``spec.script`` when it is set.

        Raises:
            CommandNotStarted: the invocation cannot run here (unknown user, not allowed, malformed).
        """

    @abc.abstractmethod
    def terminate_group(self, pid: int) -> None:
        """Ask the process group led by ``pid`` to stop (SIGTERM / CTRL_BREAK); ignores a gone group."""

    @abc.abstractmethod
    def kill_group(self, pid: int) -> None:
        """Kill the process group (or tree) led by ``pid`` for good; ignores a gone group."""

    @abc.abstractmethod
    def group_alive(self, pid: int) -> bool:
        """Whether any process of the group led by ``pid`` still runs."""

    @abc.abstractmethod
    def script_owner(self, spec: agent_pb2.RunInvocation) -> tuple[int, int] | None:
        """Who must own the script file so the command's user can read it; None = the agent.

        Raises:
            CommandNotStarted: like ``build_launch``.
        """

    def script_bytes(self, spec: agent_pb2.RunInvocation) -> bytes:
        """The bytes of the script file (as received, unless the interpreter needs a marker)."""
        return bytes(spec.script)

    def write_script(self, spec: agent_pb2.RunInvocation) -> Path:
        """Write ``spec.script`` to a private temporary file (``0600``) the command's user can read.

        A script run as the agent's own user goes to the scripts directory (``0700``, created
        when missing, also when someone deleted it while the agent runs). One run as another user
        goes to the system's temporary directory, owned by that user: the agent's state directory
        is ``0700``, so that user could not reach a file inside it (Salt's ``cmd.script`` with
        ``runas`` does the same).

        Raises:
            CommandNotStarted: the user is unknown, or the directory or file cannot be written.
        """
        owner = self.script_owner(spec)
        directory = None
        if owner is None and self._script_dir is not None:
            directory = self._script_dir
            ensure_private_directory(directory)
        try:
            fd, name = tempfile.mkstemp(prefix="fleetops-script-", suffix=self.script_suffix, dir=directory)
            with os.fdopen(fd, "wb") as file:
                file.write(self.script_bytes(spec))
                if owner is not None:
                    os.fchown(file.fileno(), *owner)
        except OSError as exc:
            raise CommandNotStarted(f"cannot write the script file: {exc.strerror or exc}") from exc
        return Path(name)

    async def spawn(self, spec: agent_pb2.RunInvocation, stdout: Path, stderr: Path) -> Spawned:
        """Start ``spec``'s command with stdin from the null device and output appended to the spool files.

        The child's file descriptors point at the spool files themselves: output never passes
        through the agent's memory, binary data is untouched, and it keeps flowing if the agent dies.

        Raises:
            CommandNotStarted: it could not be started; ``exit_status`` says how (127, 126 or -1).
        """
        check_what_to_run(spec)
        script_path = self.write_script(spec) if spec.script else None
        try:
            launch = self.build_launch(spec, script_path)
            # Opened here, not in the child: a spool problem is the agent's, not "command not found".
            with open(stdout, "ab") as out, open(stderr, "ab") as err:
                try:
                    process = await asyncio.create_subprocess_exec(
                        *launch.argv,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=err,
                        cwd=launch.cwd,
                        env=launch.env,
                        **launch.options,
                    )
                except (OSError, ValueError, subprocess.SubprocessError) as exc:
                    raise explain_spawn_failure(exc, launch.argv[0], launch.cwd) from exc
        except BaseException:
            _remove(script_path)
            raise
        return Spawned(process, script_path)


def ensure_private_directory(directory: Path) -> None:
    """Create ``directory`` (``0700``) when it is missing; check an existing one is private.

    An existing directory with group or other permissions is tightened to ``0700``. On POSIX one
    that is a symbolic link or another user's is refused: scripts must not land where someone
    else can read or swap them.

    Raises:
        CommandNotStarted: it cannot be created, or it is not a private directory of the agent's.
    """
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise CommandNotStarted(
            f"cannot create the scripts directory {directory}: {exc.strerror or exc}; "
            "check that the agent's state directory exists and is writable by the agent"
        ) from exc
    try:
        status = os.lstat(directory)
        if not stat.S_ISDIR(status.st_mode):
            raise CommandNotStarted(
                f"the scripts directory {directory} is not a directory; remove it and the agent creates it"
            )
        if os.name == "nt":
            return  # the state directory's ACL (set by the installer) protects it
        if status.st_uid != os.geteuid():
            raise CommandNotStarted(
                f"the scripts directory {directory} belongs to uid {status.st_uid}, not to the agent's "
                f"(uid {os.geteuid()}); remove it and the agent creates it"
            )
        if stat.S_IMODE(status.st_mode) != 0o700:
            os.chmod(directory, 0o700)
    except OSError as exc:
        raise CommandNotStarted(f"cannot check the scripts directory {directory}: {exc.strerror or exc}") from exc


def explain_spawn_failure(exc: BaseException, program: str, cwd: str | None) -> CommandNotStarted:
    """Turn what Popen raised into a reason an operator understands, with the shell's exit code."""
    filename = getattr(exc, "filename", None)
    about_cwd = cwd is not None and filename == cwd
    if isinstance(exc, FileNotFoundError):
        if about_cwd:
            return CommandNotStarted(f"working directory not found: {cwd}", EXIT_NOT_FOUND)
        return CommandNotStarted(f"command not found: {program}", EXIT_NOT_FOUND)
    if isinstance(exc, NotADirectoryError) and about_cwd:
        return CommandNotStarted(f"working directory is not a directory: {cwd}", EXIT_CANNOT_EXECUTE)
    if isinstance(exc, PermissionError):
        what = f"working directory {cwd}" if about_cwd else program
        return CommandNotStarted(f"permission denied: {what}", EXIT_CANNOT_EXECUTE)
    if isinstance(exc, ValueError):
        return CommandNotStarted(f"invalid command: {exc}", EXIT_NOT_STARTED)
    detail = getattr(exc, "strerror", None) or str(exc)
    return CommandNotStarted(f"cannot start {program}: {detail}", EXIT_CANNOT_EXECUTE)


def _remove(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)
