"""The fleet's SSH CAs: keys made once and kept, host and user certificates that stock ssh accepts."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fleetops.common.errors import InvalidInput, NotFound
from fleetops.common.ssh import asyncssh
from fleetops.controller.authz.ssh import SshRights
from fleetops.controller.fleet.models import Host, HostStatus
from fleetops.controller.ssh.authority import HOST_CA_FILE, USER_CA_FILE, SshAuthority

NOW = datetime.now(UTC).replace(microsecond=0)
CERT_TYPE_USER, CERT_TYPE_HOST = 1, 2  # as in the OpenSSH certificate format (PROTOCOL.certkeys)


def host(key: str) -> Host:
    return Host(
        id="h-1234",
        name="web-1",
        status=HostStatus.ONLINE,
        tags={},
        inventory={},
        activation_id="",
        registered_at=NOW,
        last_seen_at=NOW,
        connected_at=NOW,
        certificate_expires_at=None,
        ssh_host_key=key,
    )


def public_line(key: asyncssh.SSHKey) -> str:
    return key.export_public_key("openssh").decode().strip()


def test_the_keys_are_made_at_the_first_start_secret_and_then_kept(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="ssh-host-ca"):
        SshAuthority.load(tmp_path)
    first = SshAuthority.load(tmp_path, create=True)
    for name in (HOST_CA_FILE, USER_CA_FILE):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
        assert (tmp_path / f"{name}.pub").read_text().startswith("ssh-ed25519 ")
    again = SshAuthority.load(tmp_path)
    assert (again.host_ca_key, again.user_ca_key) == (first.host_ca_key, first.user_ca_key)
    assert first.host_ca_key != first.user_ca_key  # a host certificate never passes as a user's


def test_a_host_certificate_names_the_host_and_is_signed_by_the_host_ca(tmp_path: Path) -> None:
    authority = SshAuthority.load(tmp_path, create=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    setup = authority.server_setup(host(public_line(host_key)), "alice", SshRights(file_transfer=True))
    cert = asyncssh.import_certificate(setup.host_certificate)
    for name in ("web-1", "web-1.fleet", "h-1234"):
        cert.validate(CERT_TYPE_HOST, name)  # raises ValueError when not valid for it now
    with pytest.raises(ValueError):
        cert.validate(CERT_TYPE_HOST, "db-1.fleet")
    with pytest.raises(ValueError):
        cert.validate(CERT_TYPE_USER, "web-1.fleet")  # a host certificate is no user certificate
    assert cert.signing_key.public_data == asyncssh.import_public_key(authority.host_ca_key).public_data
    assert setup.user_ca_keys == (authority.user_ca_key,)
    assert setup.operator == "alice"
    assert setup.rights == SshRights(file_transfer=True)  # passed on as decided


def test_a_host_key_that_is_not_a_key_is_refused(tmp_path: Path) -> None:
    authority = SshAuthority.load(tmp_path, create=True)
    for bad in ("", "ssh-ed25519 not-base64!", "x" * 5000, "ssh-ed25519 AAAA\nssh-ed25519 BBBB"):
        with pytest.raises(InvalidInput):
            authority.certify_host("h-1", "web-1", bad)


def test_an_operator_certificate_never_outlives_the_operators_client_certificate(tmp_path: Path) -> None:
    authority = SshAuthority.load(tmp_path, create=True)
    key = asyncssh.generate_private_key("ssh-ed25519")
    soon = NOW + timedelta(minutes=30)
    issued = authority.certify_operator("alice", public_line(key), soon, now=NOW)
    cert = asyncssh.import_certificate(issued.certificate)
    assert cert._key_id == "alice" and list(cert.principals) == ["alice"]  # type: ignore[attr-defined]
    assert cert._valid_before == int(soon.timestamp()) and issued.expires_at == soon  # type: ignore[attr-defined]
    assert cert.signing_key.public_data == asyncssh.import_public_key(authority.user_ca_key).public_data
    assert issued.host_ca_key == authority.host_ca_key
    # Agent forwarding and X11 are not in the certificate's permissions.
    assert "permit-agent-forwarding" not in cert.options and "permit-X11-forwarding" not in cert.options

    with pytest.raises(InvalidInput, match="expired"):
        authority.certify_operator("alice", public_line(key), NOW - timedelta(seconds=1), now=NOW)
    with pytest.raises(InvalidInput, match="not an SSH public key"):
        authority.certify_operator("alice", "ssh-ed25519 garbage", soon, now=NOW)
