"""SSH access to hosts through the agents' built-in SSH servers (docs/ssh.md): the fleet's SSH CAs."""

from fleetops.controller.ssh.authority import SshAuthority, UserCertificate

__all__ = ["SshAuthority", "UserCertificate"]
