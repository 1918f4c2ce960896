"""What an SSH session may do besides logging in: forwards, agent forwarding, file transfer (docs/ssh.md).

Logging in is ``session.start`` as the SSH login, decided like any session. The rest happens inside
the SSH connection, where only the host's SSH server sees it (a forward names its destination when
it opens, long after the session started). So the controller decides here, once per session, what
the operator's roles allow on that host, and the agent's SSH server applies it to each request:

* ``ssh.forward``: the ``HOST:PORT`` patterns forwards may reach (``ssh -L``, ``-W``, ``opsctl
  forward``), less those a deny rule names; a deny rule without destinations refuses every forward;
* ``ssh.forward_remote``: ``ssh -R`` (a listener on the host);
* ``ssh.agent``: agent forwarding (``ssh -A``);
* ``file.transfer``: sftp and scp.

Nothing of it is allowed unless an allow rule says so, and deny rules win, as everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fleetops.common.roles import ANY, FORWARD_ACTION, Role
from fleetops.controller.authz.decision import HostLike, authorize


@dataclass(frozen=True)
class SshRights:
    """What one SSH session may do on its host besides logging in."""

    #: Destination patterns a forward may reach (``common.roles.destination_matches``); none: no forward.
    forward_to: tuple[str, ...] = ()
    #: Destination patterns refused whatever ``forward_to`` says.
    forward_denied: tuple[str, ...] = ()
    forward_remote: bool = False
    agent_forwarding: bool = False
    file_transfer: bool = False


def ssh_rights(roles: Sequence[Role], host: HostLike) -> SshRights:
    """What ``roles`` allow an SSH session on ``host`` to do (decided on the host's operator-set tags)."""
    allowed: list[str] = []
    denied: list[str] = []
    for role in roles:
        for rule in role.deny:
            if rule.covers_action(FORWARD_ACTION) and rule.covers_host(host.tags):
                denied += rule.destinations or [ANY]
        for rule in role.allow:
            if rule.covers_action(FORWARD_ACTION) and rule.covers_host(host.tags):
                allowed += rule.destinations
    if ANY in denied:
        allowed, denied = [], [ANY]

    def allows(action: str) -> bool:
        return authorize(roles, action, hosts=[host]).allowed

    return SshRights(
        forward_to=tuple(dict.fromkeys(allowed)),
        forward_denied=tuple(dict.fromkeys(denied)),
        forward_remote=allows("ssh.forward_remote"),
        agent_forwarding=allows("ssh.agent"),
        file_transfer=allows("file.transfer"),
    )
