"""asyncssh for every part that speaks SSH, and what the parts agree on (docs/ssh.md).

Import asyncssh from here, never directly: asyncssh 2.x still loads DSA support, which makes
``cryptography`` warn at import time (CryptographyDeprecationWarning, shown to every user of
opsctl and failing a test run that treats warnings as errors). The warning is about DSA, which
fleetops never uses (its keys and CAs are Ed25519), so it is silenced for that one import.
"""

from __future__ import annotations

import warnings

from cryptography.utils import CryptographyDeprecationWarning

with warnings.catch_warnings():
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    import asyncssh

__all__ = ["HOST_DOMAIN", "KEY_ALGORITHM", "asyncssh", "host_principals"]

#: Hosts are reached by stock ssh as NAME.fleet (``Host *.fleet`` in the ssh configuration).
HOST_DOMAIN = "fleet"
#: The algorithm of every SSH key fleetops makes (host keys, CA keys, operators' keys).
KEY_ALGORITHM = "ssh-ed25519"


def host_principals(host_id: str, host_name: str) -> list[str]:
    """The names a host's SSH certificate is valid for: ``web-1``, ``web-1.fleet`` and its id."""
    return [host_name, f"{host_name}.{HOST_DOMAIN}", host_id]
