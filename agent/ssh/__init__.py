"""The agent's built-in SSH server: stock ``ssh``, ``scp`` and ``sftp`` reach hosts that run no sshd.

Modules, from the bottom up:

``host_key``      the agent's ed25519 host key, made at first use
``certificates``  the setup's host certificate and CA keys parsed; the certificate check of a login
``channels``      what a session channel runs: a pty session, a process on pipes, or SFTP
``setup``         ``SshSetup`` (what the controller sent) and the forwarding policy it grants
``server``        ``SshServerFactory``: an asyncssh server per connection on a socket pair, seen as a
                  ``Terminal`` whose bytes the session runner carries; login policy; forwarding policy

Every module imports asyncssh through :mod:`fleetops.common.ssh`, which silences cryptography's
deprecation warning about DSA (a key type fleetops never uses).
"""

from __future__ import annotations

from fleetops.agent.ssh.host_key import HOST_KEY_FILE_NAME, host_public_key_line, load_or_create_host_key
from fleetops.agent.ssh.server import SshServerFactory, SshTerminal
from fleetops.agent.ssh.setup import ForwardingPolicy, GrantedForwarding, SshSetup

__all__ = [
    "HOST_KEY_FILE_NAME",
    "ForwardingPolicy",
    "GrantedForwarding",
    "SshServerFactory",
    "SshSetup",
    "SshTerminal",
    "host_public_key_line",
    "load_or_create_host_key",
]
