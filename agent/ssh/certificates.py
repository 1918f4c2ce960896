"""The certificates of the agent's SSH server: the setup's host certificate and CAs, and the login check.

An operator's certificate names the operator, not the logins (key id and one principal: the
operator's name; docs/ssh.md): which login the connection may use is what the controller authorized
for this session (``SshSetup.login``). So the user CAs are trusted as OpenSSH's
``cert-authority,principals="OPERATOR"`` lines: asyncssh then verifies the CA signature, the validity
period and that a principal is the operator, instead of the user name. It keeps the certificate's
*key id* to itself, so :func:`login_refusal` reads it from the certificate's wire form (OpenSSH
PROTOCOL.certkeys) and compares it with the operator the session was opened for.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fleetops.common.errors import InvalidInput
from fleetops.common.ssh import asyncssh

if TYPE_CHECKING:
    from fleetops.agent.ssh.server import SshSetup

#: OpenSSH certificate types (PROTOCOL.certkeys).
_USER_CERTIFICATE, _HOST_CERTIFICATE = 1, 2


@dataclass(frozen=True)
class Credentials:
    """The parsed :class:`SshSetup`: what asyncssh is configured with."""

    host_key: asyncssh.SSHKey
    host_certificate: asyncssh.SSHCertificate
    user_cas: asyncssh.SSHAuthorizedKeys


def parse_credentials(setup: SshSetup, host_key: asyncssh.SSHKey) -> Credentials:
    """Parse and check the setup's certificate and CA keys.

    Raises:
        InvalidInput: something does not parse, or the certificate does not certify ``host_key``.
    """
    try:
        certificate = asyncssh.import_certificate(setup.host_certificate.strip())
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise InvalidInput(
            f"the SSH host certificate does not parse: {exc}",
            "the controller must send an OpenSSH certificate line (ssh-ed25519-cert-v01@openssh.com ...)",
        ) from exc
    fields = _certificate_fields(certificate)
    if fields is None or fields[0] != _HOST_CERTIFICATE:
        raise InvalidInput("the SSH host certificate is not an OpenSSH host certificate")
    if certificate.key.public_data != host_key.public_data:
        raise InvalidInput(
            "the SSH host certificate certifies another key than this agent's host key",
            "have the controller sign the agent's current host key",
        )
    lines = []
    for line in setup.user_ca_keys:
        text = line.strip().removeprefix("cert-authority ").strip()
        try:
            key = asyncssh.import_public_key(text)
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise InvalidInput(f"an SSH user CA key does not parse: {exc}", "send OpenSSH public key lines") from exc
        key.set_comment(None)
        public = key.export_public_key("openssh").decode("ascii").strip()
        lines.append(f'cert-authority,principals="{_principal(setup.operator)}" {public}')
    if not lines:
        raise InvalidInput("no SSH user CA key was given", "the controller must send its SSH user CA public key")
    return Credentials(host_key, certificate, asyncssh.import_authorized_keys("\n".join(lines) + "\n"))


def _principal(operator: str) -> str:
    """``operator`` as a principals= value (no quote, comma or space can change the option).

    Raises:
        InvalidInput: the name cannot be one principal.
    """
    if not operator or any(c in operator for c in '",\\ ') or not operator.isprintable():
        raise InvalidInput(f"the operator name {operator!r} cannot be an SSH principal")
    return operator


def login_refusal(username: str, key_data: bytes, operator: str, login: str) -> str:
    """Why this key may not log in as ``username`` (``""``: it may, if asyncssh's own checks pass)."""
    if username != login:
        return f"only {login} may log in here"
    try:
        algorithm = key_data[4 : 4 + struct.unpack(">I", key_data[:4])[0]].decode("ascii")
        certificate = asyncssh.import_certificate(f"{algorithm} {base64.b64encode(key_data).decode('ascii')}")
    except (asyncssh.KeyImportError, ValueError, struct.error, UnicodeDecodeError):
        return "not an OpenSSH certificate (plain keys are not accepted)"
    fields = _certificate_fields(certificate)
    if (
        not isinstance(certificate, asyncssh.public_key.SSHOpenSSHCertificate)
        or fields is None
        or fields[0] != _USER_CERTIFICATE
    ):
        return "not an OpenSSH user certificate"
    if fields[1] != operator:
        return f"the certificate's key id is {fields[1]!r}, not {operator!r}"
    if operator not in certificate.principals:
        return f"the certificate's principals {list(certificate.principals)} do not include {operator}"
    return ""


def _certificate_fields(certificate: asyncssh.SSHCertificate) -> tuple[int, str] | None:
    """(type, key id) of an OpenSSH certificate, read from its wire form; None when it is not one.

    Layout (OpenSSH PROTOCOL.certkeys): string type-name, string nonce, the public key's own fields,
    uint64 serial, uint32 type, string key id, ... asyncssh keeps the key id private, so it is read
    here; the key's fields are found from the public key's wire form and compared, so a layout
    asyncssh does not share makes this return None.
    """
    blob = certificate.public_data
    key_blob = certificate.key.public_data
    try:
        offset = _skip_string(blob, 0)  # type name
        offset = _skip_string(blob, offset)  # nonce
        key_fields = key_blob[_skip_string(key_blob, 0) :]
        if blob[offset : offset + len(key_fields)] != key_fields:
            return None
        offset += len(key_fields) + 8  # serial
        (cert_type,) = struct.unpack_from(">I", blob, offset)
        end = _skip_string(blob, offset + 4)
        return cert_type, blob[offset + 8 : end].decode("utf-8")
    except (struct.error, ValueError, UnicodeDecodeError):
        return None


def _skip_string(blob: bytes, offset: int) -> int:
    """The offset after the SSH ``string`` at ``offset``.

    Raises:
        ValueError: the string runs past the end of ``blob``.
    """
    (length,) = struct.unpack_from(">I", blob, offset)
    end = offset + 4 + length
    if end > len(blob):
        raise ValueError("truncated certificate")
    return end
