"""The fleet's SSH certificate authorities: one certifies hosts' SSH host keys, one operators' keys.

Files in the CA directory (``ca/``, shared by the replicas like the X.509 CA)::

    ssh-host-ca        the host CA's private key (OpenSSH format, 0600); made at the first start
    ssh-host-ca.pub    its public key: operators' known_hosts trust it as @cert-authority *.fleet
    ssh-user-ca        the user CA's private key (0600)
    ssh-user-ca.pub    its public key: the agents' SSH servers accept certificates it signed

Two keys, not one: a host certificate must never pass as a user certificate or the other way,
and each CA can be rotated on its own. Certificates are short: a host's is made for each SSH
session (its key was sent in the agent's Hello; the private key never leaves the host), an
operator's lasts no longer than the operator's own client certificate (docs/ssh.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fleetops.common.errors import InvalidInput, NotFound
from fleetops.common.files import write_public_file, write_secret_file
from fleetops.common.ssh import KEY_ALGORITHM, asyncssh, host_principals
from fleetops.controller.authz.ssh import SshRights
from fleetops.controller.fleet.models import Host
from fleetops.controller.sessions.models import SshServerSetup

log = logging.getLogger(__name__)

HOST_CA_FILE = "ssh-host-ca"
USER_CA_FILE = "ssh-user-ca"
#: A host certificate is checked once, when an SSH connection is set up: an hour is plenty.
HOST_CERTIFICATE_LIFETIME = timedelta(hours=1)
#: Certificates are valid from this long before they are made (clocks of hosts and laptops drift).
CLOCK_SKEW = timedelta(minutes=5)
#: The longest an operator's SSH certificate lasts (never longer than the operator's certificate).
USER_CERTIFICATE_LIFETIME = timedelta(hours=12)
#: Operators' SSH public keys longer than this are refused before parsing.
MAX_PUBLIC_KEY_LENGTH = 4096


@dataclass(frozen=True)
class UserCertificate:
    """An operator's SSH certificate and what their ssh client needs to trust hosts."""

    certificate: str  # OpenSSH "ssh-ed25519-cert-v01@openssh.com AAAA..." line
    expires_at: datetime
    host_ca_key: str  # the host CA's public key line (for "@cert-authority *.fleet ...")


def _public_line(key: asyncssh.SSHKey) -> str:
    return key.export_public_key("openssh").decode().strip()


def _load_or_create(path: Path, create: bool) -> asyncssh.SSHKey:
    if path.is_file():
        try:
            return asyncssh.import_private_key(path.read_bytes())
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise InvalidInput(f"{path} is not an SSH private key: {exc}", "restore it from a backup of ca/") from exc
    if not create:
        raise NotFound(
            f"no SSH CA key {path}",
            "the controller makes it at its first start; on a replica, copy it from another replica's ca/",
        )
    key = asyncssh.generate_private_key(KEY_ALGORITHM, comment=f"fleetops {path.name}")
    write_secret_file(path, key.export_private_key("openssh"))
    log.info("made the SSH CA key %s", path)
    return key


class SshAuthority:
    """Signs SSH certificates for hosts (per session) and operators (per login)."""

    def __init__(self, host_ca: asyncssh.SSHKey, user_ca: asyncssh.SSHKey) -> None:
        self._host_ca = host_ca
        self._user_ca = user_ca
        self.host_ca_key = _public_line(host_ca)
        self.user_ca_key = _public_line(user_ca)

    @classmethod
    def load(cls, directory: Path, *, create: bool = False) -> SshAuthority:
        """The CAs in ``directory``; made there first when ``create``.

        Raises:
            NotFound: a key is missing and ``create`` is false.
            InvalidInput: a key file is not an SSH private key.
            OSError: the files cannot be written.
        """
        directory = Path(directory)
        keys = []
        for name in (HOST_CA_FILE, USER_CA_FILE):
            key = _load_or_create(directory / name, create)
            public = (_public_line(key) + "\n").encode()
            pub_path = directory / f"{name}.pub"
            if not pub_path.is_file() or pub_path.read_bytes() != public:
                write_public_file(pub_path, public)
            keys.append(key)
        return cls(keys[0], keys[1])

    def certify_host(self, host_id: str, host_name: str, host_key: str, *, now: datetime | None = None) -> str:
        """A certificate for the host's SSH host key (an OpenSSH public key line), for one session.

        Raises:
            InvalidInput: ``host_key`` is not an SSH public key.
        """
        key = _import_public(host_key, f"the SSH host key of host {host_name}")
        now = now or datetime.now(UTC)
        cert = self._host_ca.generate_host_certificate(
            key,
            f"host:{host_id}",
            principals=host_principals(host_id, host_name),
            valid_after=int((now - CLOCK_SKEW).timestamp()),
            valid_before=int((now + HOST_CERTIFICATE_LIFETIME).timestamp()),
        )
        return cert.export_certificate("openssh").decode().strip()

    def server_setup(self, host: Host, operator: str, rights: SshRights) -> SshServerSetup:
        """What ``host``'s SSH server needs for one SSH session of ``operator``, who may do ``rights``.

        Raises:
            InvalidInput: the host's SSH host key on record is not a key.
        """
        return SshServerSetup(
            host_certificate=self.certify_host(host.id, host.name, host.ssh_host_key),
            user_ca_keys=(self.user_ca_key,),
            operator=operator,
            rights=rights,
        )

    def certify_operator(
        self, operator: str, public_key: str, not_after: datetime, *, now: datetime | None = None
    ) -> UserCertificate:
        """A certificate for an operator's SSH key, valid until ``not_after`` at the latest.

        The key id and the one principal are the operator's name: which logins they may use on
        which host is decided per connection by their roles (the controller checks the login
        ``opsctl proxy`` names; the agent lets the connection log in only as that login). Agent
        and X11 forwarding are not permitted by the certificate.

        Raises:
            InvalidInput: ``public_key`` is not an SSH public key, or ``not_after`` has passed.
        """
        key = _import_public(public_key, "the SSH public key")
        now = now or datetime.now(UTC)
        expires_at = min(not_after, now + USER_CERTIFICATE_LIFETIME)
        if expires_at <= now:
            raise InvalidInput("your client certificate has expired", "log in again: opsctl login")
        cert = self._user_ca.generate_user_certificate(
            key,
            operator,
            principals=[operator],
            valid_after=int((now - CLOCK_SKEW).timestamp()),
            valid_before=int(expires_at.timestamp()),
            permit_x11_forwarding=False,
            permit_agent_forwarding=False,
            permit_user_rc=False,
        )
        return UserCertificate(
            certificate=cert.export_certificate("openssh").decode().strip(),
            expires_at=datetime.fromtimestamp(int(expires_at.timestamp()), UTC),
            host_ca_key=self.host_ca_key,
        )


def _import_public(line: str, what: str) -> asyncssh.SSHKey:
    hint = "give a line such as 'ssh-ed25519 AAAA...'"
    if not line or len(line) > MAX_PUBLIC_KEY_LENGTH or "\n" in line.strip():
        raise InvalidInput(f"{what} is not one OpenSSH public key line", hint)
    try:
        return asyncssh.import_public_key(line.strip())
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise InvalidInput(
            f"{what} is not an SSH public key: {exc}", "give a line such as 'ssh-ed25519 AAAA...'"
        ) from exc
