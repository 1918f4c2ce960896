"""What the controller says about one SSH session, and how its forwarding requests are decided.

:class:`SshSetup` is the ``OpenSession.ssh`` the controller sent: the host certificate, the user
CAs, the operator and login, and what the operator's roles allow inside the connection, decided by
the controller for this host (``controller/authz/ssh.py``; docs/ssh.md). :class:`ForwardingPolicy`
has one method per kind of forwarding request and refuses them all; :class:`GrantedForwarding`
allows what the setup grants.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fleetops.common.roles import destination_matches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SshSetup:
    """What the controller tells the agent for one SSH session.

    Attributes:
        host_certificate: OpenSSH certificate line certifying the agent's host key (by the fleet's
            SSH host CA).
        user_ca_keys: OpenSSH public key lines of the SSH user CA(s).
        operator: the user certificate's key id must equal this.
        login: the only username the client may log in as (``""``: the agent's own account).
        forward_to, forward_denied, forward_remote, agent_forwarding, file_transfer: what the
            operator's roles allow inside the connection (:class:`GrantedForwarding`; sftp/scp).
    """

    host_certificate: str
    user_ca_keys: tuple[str, ...]
    operator: str
    login: str
    forward_to: tuple[str, ...] = ()
    forward_denied: tuple[str, ...] = ()
    forward_remote: bool = False
    agent_forwarding: bool = False
    file_transfer: bool = False


class ForwardingPolicy:
    """Whether a connection may forward; one method per kind. This default refuses every kind.

    Agent and X11 forwarding are decided once per connection, as it starts (asyncssh takes them as
    connection options); the others per request.
    """

    def allow_local_forward(self, operator: str, dest_host: str, dest_port: int) -> bool:
        """``ssh -L`` / ``-W`` (direct-tcpip) to ``dest_host:dest_port``. Default: refused."""
        log.warning("SSH local port forwarding to %s:%d refused for %s", dest_host, dest_port, operator)
        return False

    def allow_remote_forward(self, operator: str, listen_host: str, listen_port: int) -> bool:
        """``ssh -R`` (tcpip-forward) listening on ``listen_host:listen_port``. Default: refused."""
        log.warning("SSH remote port forwarding on %s:%d refused for %s", listen_host, listen_port, operator)
        return False

    def allow_unix_forward(self, operator: str, path: str) -> bool:
        """Forwarding to or from the UNIX socket ``path`` (either direction). Default: refused."""
        log.warning("SSH UNIX socket forwarding of %s refused for %s", path, operator)
        return False

    def allow_tunnel(self, operator: str) -> bool:
        """``ssh -w`` (tun/tap devices). Default: refused."""
        log.warning("SSH tunnel device forwarding refused for %s", operator)
        return False

    def allow_agent_forwarding(self, operator: str) -> bool:
        """``ssh -A``. Default: refused."""
        return False

    def allow_x11_forwarding(self, operator: str) -> bool:
        """``ssh -X``. Default: refused."""
        return False


class GrantedForwarding(ForwardingPolicy):
    """Forwarding as the operator's roles allow it on this host (``SshSetup``); the rest refused."""

    def __init__(self, setup: SshSetup) -> None:
        self._setup = setup

    def allow_local_forward(self, operator: str, dest_host: str, dest_port: int) -> bool:
        setup = self._setup
        if any(destination_matches(p, dest_host, dest_port) for p in setup.forward_denied):
            log.warning("SSH forward to %s:%d refused for %s: a deny rule names it", dest_host, dest_port, operator)
            return False
        if any(destination_matches(p, dest_host, dest_port) for p in setup.forward_to):
            log.info("SSH forward to %s:%d opened for %s", dest_host, dest_port, operator)
            return True
        return super().allow_local_forward(operator, dest_host, dest_port)

    def allow_remote_forward(self, operator: str, listen_host: str, listen_port: int) -> bool:
        if self._setup.forward_remote:
            log.info("SSH remote forward listening on %s:%d for %s", listen_host, listen_port, operator)
            return True
        return super().allow_remote_forward(operator, listen_host, listen_port)

    def allow_agent_forwarding(self, operator: str) -> bool:
        return self._setup.agent_forwarding
