"""Seams of the sessions room."""

from __future__ import annotations

from typing import Protocol

from fleetops.controller.authz.ssh import SshRights
from fleetops.controller.fleet.models import Host
from fleetops.controller.sessions.models import SessionRequest, SshServerSetup


class SessionOpener(Protocol):
    """Asks an agent connected to this replica to start a session (over its control stream)."""

    async def open_session(
        self, host_id: str, session_id: str, request: SessionRequest, ssh: SshServerSetup | None = None
    ) -> bool:
        """False when the host has no live link here (nothing was sent).

        ``ssh`` is set for an SSH session: the agent starts its SSH server with it.
        """
        ...


class SshCertifier(Protocol):
    """Makes what an agent's SSH server needs for one SSH session (``controller.ssh.SshAuthority``)."""

    def server_setup(self, host: Host, operator: str, rights: SshRights) -> SshServerSetup:
        """The host's certificate for this session, the user CAs its server trusts, and ``rights``.

        Raises:
            InvalidInput: the host's SSH host key on record is not a key.
        """
        ...
