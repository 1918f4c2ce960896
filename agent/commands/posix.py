"""Commands on Linux and macOS: no shell unless asked, a fresh session per command, optional user switch."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from fleetops.agent.commands.platform import (
    POSIX_REBOOT_EXIT_CODE,
    CommandNotStarted,
    CommandPlatform,
    Launch,
    check_what_to_run,
)
from fleetops.v1 import agent_pb2

# Commands get a known PATH, not whatever the agent was started with (systemd's is minimal).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = "/bin/sh"


def _getpwnam(name: str) -> Any:
    import pwd

    return pwd.getpwnam(name)


def _getpwuid(uid: int) -> Any:
    import pwd

    return pwd.getpwuid(uid)


@dataclass(frozen=True)
class UserDatabase:
    """The account lookups the platform needs (replaced in tests)."""

    getpwnam: Callable[[str], Any] = _getpwnam
    getpwuid: Callable[[int], Any] = _getpwuid
    geteuid: Callable[[], int] = field(default=lambda: os.geteuid())
    getegid: Callable[[], int] = field(default=lambda: os.getegid())
    getgrouplist: Callable[[str, int], list[int]] = field(default=lambda name, gid: os.getgrouplist(name, gid))


@dataclass(frozen=True)
class TargetUser:
    """The account a command runs as; ``switch`` is True when that is not the agent's own."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str
    switch: bool
    groups: tuple[int, ...] = ()


class PosixPlatform(CommandPlatform):
    reboot_exit_code = POSIX_REBOOT_EXIT_CODE
    script_suffix = ".sh"

    def __init__(
        self,
        *,
        script_dir: Path | None = None,
        shell: str = DEFAULT_SHELL,
        users: UserDatabase | None = None,
        lang: str | None = None,
    ) -> None:
        super().__init__(script_dir)
        self._shell = shell
        self._users = users or UserDatabase()
        self._lang = lang or os.environ.get("LANG") or "C.UTF-8"

    def target_user(self, run_as: str) -> TargetUser:
        """The account ``run_as`` names (empty: the agent's own).

        Raises:
            CommandNotStarted: no such user, or switching users needs root and the agent is not.
        """
        euid = self._users.geteuid()
        if not run_as:
            try:
                entry = self._users.getpwuid(euid)
            except KeyError:  # a uid without a passwd entry (containers): still run, as ourselves
                name = os.environ.get("USER") or str(euid)
                home = os.environ.get("HOME") or "/"
                return TargetUser(name, euid, self._users.getegid(), home, DEFAULT_SHELL, switch=False)
        else:
            try:
                entry = self._users.getpwnam(run_as)
            except KeyError:
                raise CommandNotStarted(f"no such user: {run_as}") from None
        switch = entry.pw_uid != euid
        if switch and euid != 0:
            raise CommandNotStarted(
                f"cannot run as {run_as}: the agent does not run as root (uid {euid}), so it cannot switch users"
            )
        groups = tuple(self._users.getgrouplist(entry.pw_name, entry.pw_gid)) if switch else ()
        return TargetUser(
            name=entry.pw_name,
            uid=entry.pw_uid,
            gid=entry.pw_gid,
            home=entry.pw_dir or "/",
            shell=entry.pw_shell or DEFAULT_SHELL,
            switch=switch,
            groups=groups,
        )

    def script_owner(self, spec: agent_pb2.RunInvocation) -> tuple[int, int] | None:
        user = self.target_user(spec.run_as)
        return (user.uid, user.gid) if user.switch else None

    def build_launch(self, spec: agent_pb2.RunInvocation, script_path: Path | None) -> Launch:
        check_what_to_run(spec)
        user = self.target_user(spec.run_as)
        if spec.argv:
            argv = tuple(spec.argv)
        else:
            assert script_path is not None, "a script invocation needs its script file"
            argv = (self._shell, str(script_path))
        env = {
            "PATH": DEFAULT_PATH,
            "LANG": self._lang,
            "HOME": user.home,
            "USER": user.name,
            "LOGNAME": user.name,
            "SHELL": user.shell,
        }
        env.update(spec.env)
        # A new session makes the command a process group leader: timeouts and cancels signal the
        # whole group, so background children die with it.
        options: dict[str, Any] = {"start_new_session": True}
        if user.switch:
            options.update(user=user.uid, group=user.gid, extra_groups=list(user.groups))
        cwd = spec.cwd or (user.home if os.path.isdir(user.home) else "/")
        return Launch(argv=argv, cwd=cwd, env=env, options=options)

    def terminate_group(self, pid: int) -> None:
        _signal_group(pid, signal.SIGTERM)

    def kill_group(self, pid: int) -> None:
        _signal_group(pid, signal.SIGKILL)

    def group_alive(self, pid: int) -> bool:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # killpg also counts zombies nobody reaps (orphans where PID 1 is no real init): look closer.
        for process in psutil.process_iter(["status"]):
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            try:
                if os.getpgid(process.pid) == pid:
                    return True
            except (ProcessLookupError, PermissionError):
                continue
        return False


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass  # the group is gone already
