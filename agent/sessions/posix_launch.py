"""What a POSIX session starts: the account's login shell, its environment and working directory.

Building the launch has no side effects, so it is unit-tested with a fake account database on
any OS; :mod:`~fleetops.agent.sessions.posix_pty` then starts it on a pseudo-terminal.

Like sshd, an interactive session runs the login shell from the password database as a *login
shell* (``argv[0]`` is ``-bash``, so ``/etc/profile`` and ``~/.profile`` are read), and a session
with a command runs ``<shell> -c <command>`` (not a login shell, so profiles are not read; the
environment is still the login one: ``HOME``, ``USER``, ``LOGNAME``, ``SHELL``, ``PATH``, ``TERM``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fleetops.agent.commands.platform import CommandNotStarted
from fleetops.agent.commands.posix import DEFAULT_PATH, PosixPlatform, TargetUser, UserDatabase
from fleetops.agent.sessions.validation import check_command, check_environment, check_term
from fleetops.common.errors import NotFound, PermissionDenied

#: Variables the agent sets from the account and the request; a request may not replace them.
RESERVED_VARIABLES = ("TERM", "HOME", "USER", "LOGNAME", "SHELL")
#: Shells that only refuse logins: starting them would end the session at once, without a word.
NO_LOGIN_SHELLS = frozenset({"nologin", "false"})


@dataclass(frozen=True)
class PtyLaunch:
    """Everything needed to start a session's shell on a pseudo-terminal.

    Attributes:
        executable: path of the shell to execute.
        argv: its arguments; ``argv[0]`` is ``-<name>`` for a login shell.
        cwd: the working directory (the account's home, or ``/`` when the home is missing).
        env: the whole environment of the shell.
        user: the account it runs as.
        options: ``subprocess.Popen`` keywords switching to that account (empty when it is the agent's).
    """

    executable: str
    argv: tuple[str, ...]
    cwd: str
    env: dict[str, str]
    user: TargetUser
    options: dict[str, Any] = field(default_factory=dict)


def build_posix_launch(
    user: str | None,
    command: str | None,
    term: str,
    env: Mapping[str, str],
    *,
    users: UserDatabase | None = None,
    agent_environ: Mapping[str, str] | None = None,
    isdir: Callable[[str], bool] = os.path.isdir,
) -> PtyLaunch:
    """Resolve ``user`` and build the launch of their shell.

    Args:
        user: account name; ``None`` or ``""`` is the agent's own account.
        command: run through ``<shell> -c`` instead of an interactive login shell.
        term: the ``TERM`` value.
        env: extra variables (see ``TerminalFactory.spawn``).
        users: account lookups (replaced in tests).
        agent_environ: the agent's environment, where ``LANG`` is taken from when it is set.
        isdir: directory test for the home directory (replaced in tests).

    Raises:
        InvalidInput: malformed ``term``, ``command`` or ``env``.
        NotFound: there is no account named ``user``.
        PermissionDenied: switching to ``user`` needs root and the agent is not, or the account
            has no login shell.
    """
    check_term(term)
    check_command(command)
    check_environment(env, RESERVED_VARIABLES)
    target = _target_user(user or "", users or UserDatabase())
    shell = target.shell
    shell_name = os.path.basename(shell)
    if shell_name in NO_LOGIN_SHELLS:
        raise PermissionDenied(
            f"user {target.name} has no login shell ({shell})",
            "open the session as another user, or give the account a shell",
        )
    argv = (shell_name, "-c", command) if command is not None else (f"-{shell_name}",)
    environ = os.environ if agent_environ is None else agent_environ
    session_env = {
        "TERM": term,
        "HOME": target.home,
        "USER": target.name,
        "LOGNAME": target.name,
        "SHELL": shell,
        "PATH": DEFAULT_PATH,
    }
    if environ.get("LANG"):
        session_env["LANG"] = environ["LANG"]
    session_env.update(env)
    options: dict[str, Any] = {}
    if target.switch:
        # extra_groups always, even empty: without it the child would keep root's supplementary groups.
        options = {"user": target.uid, "group": target.gid, "extra_groups": list(target.groups)}
    cwd = target.home if isdir(target.home) else "/"
    return PtyLaunch(executable=shell, argv=argv, cwd=cwd, env=session_env, user=target, options=options)


def _target_user(name: str, users: UserDatabase) -> TargetUser:
    # The commands platform owns the account rules (lookup, root check, groups); it reports every
    # refusal as CommandNotStarted, so the cause is told apart here by one more lookup.
    try:
        return PosixPlatform(users=users).target_user(name)
    except CommandNotStarted as exc:
        try:
            users.getpwnam(name)
        except KeyError:
            raise NotFound(f"no such user on this host: {name}", "check the user name") from None
        raise PermissionDenied(
            f"cannot open a session as {name}: the agent does not run as root, so it cannot switch users",
            "omit the user to get a session as the agent's own account, or run the agent as root",
        ) from exc
