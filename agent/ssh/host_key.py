"""The agent's SSH host key: one ed25519 key per host, made at first use as ``ssh-keygen -A`` does.

The key is the identity the fleet's SSH host CA certifies (:class:`~fleetops.agent.ssh.server.SshSetup`
carries that certificate); operators' ``ssh`` trusts the CA, never the bare key. It lives in the
agent's state directory, in OpenSSH's private key format with mode 0600, so ``ssh-keygen -l -f``
can read it like any sshd host key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

from fleetops.common.errors import InternalError
from fleetops.common.ssh import asyncssh

log = logging.getLogger(__name__)

#: File name of the host key inside the agent's state directory (sshd's name for the same key).
HOST_KEY_FILE_NAME = "ssh_host_ed25519_key"


def load_or_create_host_key(state_dir: Path) -> asyncssh.SSHKey:
    """The host key in ``state_dir``, created (ed25519) when there is none yet.

    The new key is written to a temporary file in the same directory and renamed into place, so
    a crash never leaves a half-written key behind.

    Args:
        state_dir: the agent's state directory; it must exist.

    Returns:
        The private key.

    Raises:
        InternalError: the key file exists but is not a private key asyncssh can read, or it
            cannot be written.
    """
    path = state_dir / HOST_KEY_FILE_NAME
    if path.exists():
        try:
            return asyncssh.read_private_key(path)
        except (asyncssh.KeyImportError, OSError) as exc:
            raise InternalError(
                f"the SSH host key {path} cannot be read: {exc}",
                f"restore the key from a backup, or delete {path} to make a new one (operators' ssh "
                "trusts the host CA's certificate, so a new key needs a new host certificate)",
            ) from exc
    key = asyncssh.generate_private_key("ssh-ed25519", comment=f"fleetops-agent host key {HOST_KEY_FILE_NAME}")
    _write_private_atomically(path, key.export_private_key("openssh"))
    log.info("made the SSH host key %s", path)
    return key


def host_public_key_line(key: asyncssh.SSHKey) -> str:
    """The key's public half as one OpenSSH line, e.g. ``ssh-ed25519 AAAA...`` (no comment, no newline)."""
    exported = key.convert_to_public()
    exported.set_comment(None)
    return exported.export_public_key("openssh").decode("ascii").strip()


def _write_private_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 through a temporary file and ``os.replace``.

    Raises:
        InternalError: the directory is not writable or the disk is full.
    """
    try:
        # mkstemp creates the file with mode 0600 already: the key is never readable by others.
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise InternalError(
            f"cannot write the SSH host key into {path.parent}: {exc.strerror or exc}",
            "check that the agent's state directory exists and is writable by the agent",
        ) from exc
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp_name, 0o600)
        os.replace(temp_name, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise InternalError(
            f"cannot write the SSH host key {path}: {exc.strerror or exc}",
            "check free space and permissions of the agent's state directory",
        ) from exc
