"""``opsctl ssh-config`` and ``opsctl proxy``: stock ssh, scp and sftp to hosts that run no sshd.

``ssh-config`` makes the operator an SSH key (in the profile, never sent), gets it certified by the
controller's SSH user CA, trusts the fleet's SSH host CA for ``*.fleet``, and prints (or with
``--install`` includes in ~/.ssh/config) a ``Host *.fleet`` block whose ProxyCommand is
``opsctl proxy``. ``proxy`` carries ssh's bytes over the session stream to the host's agent, whose
built-in SSH server answers (docs/ssh.md). Files, in the profile directory::

    ssh/id_ed25519            the operator's SSH private key (0600)
    ssh/id_ed25519.pub        its public key
    ssh/id_ed25519-cert.pub   its certificate (as long as the operator's client certificate)
    ssh/known_hosts           "@cert-authority *.fleet <the fleet's SSH host CA>"
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fleetops.common.errors import InvalidInput
from fleetops.common.files import write_public_file, write_secret_file
from fleetops.common.profile import Profile
from fleetops.common.ssh import HOST_DOMAIN, KEY_ALGORITHM, asyncssh
from fleetops.opsctl.client import OperatorClient, aio_channel
from fleetops.opsctl.terminal_session import DEFAULT_SIZE, SessionClient, Terminal
from fleetops.v1 import operator_pb2, operator_pb2_grpc, session_pb2

KEY_FILE = "id_ed25519"
CERT_FILE = "id_ed25519-cert.pub"
KNOWN_HOSTS_FILE = "known_hosts"
#: ``opsctl proxy`` renews the SSH certificate when it has less than this left (for the next ssh).
RENEW_BEFORE = timedelta(minutes=10)
#: What ``--install`` writes into ~/.ssh and the line that includes it from ~/.ssh/config.
INSTALLED_FILE = "fleetops_config"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ssh-config",
        help="set up stock ssh/scp/sftp for the fleet's hosts (ssh root@HOST.fleet)",
        description="Make this profile an SSH key, get it certified, and print the ssh configuration "
        f"that reaches hosts as NAME.{HOST_DOMAIN} through 'opsctl proxy' (docs/ssh.md).",
    )
    p.add_argument(
        "--install",
        action="store_true",
        help=f"write it to ~/.ssh/{INSTALLED_FILE}, included from ~/.ssh/config",
    )
    p.set_defaults(func=ssh_config)

    p = sub.add_parser(
        "proxy",
        help="carry an SSH connection to HOST's agent over stdin/stdout (ssh's ProxyCommand)",
        description="The ProxyCommand of 'opsctl ssh-config': stdin/stdout become an SSH connection "
        "to the SSH server built into HOST's agent. Authorized as a session on HOST as --login.",
    )
    p.add_argument("host", metavar="HOST", help=f"host name or id (a trailing .{HOST_DOMAIN} is dropped)")
    p.add_argument("--login", default="", metavar="USER", help="the SSH login (ssh's %%r); default: the agent's user")
    p.set_defaults(func=proxy)


# -- the key and its certificate -----------------------------------------------------------------
def ssh_dir(profile: Profile) -> Path:
    return profile.directory / "ssh"


def _key(directory: Path) -> asyncssh.SSHKey:
    """The operator's SSH key in ``directory``, made there the first time."""
    path = directory / KEY_FILE
    if path.is_file():
        return asyncssh.read_private_key(path)
    key = asyncssh.generate_private_key(KEY_ALGORITHM, comment="fleetops operator key")
    write_secret_file(path, key.export_private_key("openssh"))
    write_public_file(directory / f"{KEY_FILE}.pub", key.export_public_key("openssh"))
    return key


def certificate_expiry(directory: Path) -> datetime | None:
    """When the SSH certificate in ``directory`` expires; ``None`` without a readable one."""
    try:
        cert = asyncssh.read_certificate(directory / CERT_FILE)
    except (OSError, ValueError, asyncssh.KeyImportError):
        return None
    # asyncssh keeps the validity private; without it the certificate counts as expired (renewed).
    valid_before = getattr(cert, "_valid_before", None)
    if not isinstance(valid_before, int):
        return None
    return datetime.fromtimestamp(min(valid_before, 2**32), UTC)


def refresh_certificate(client: OperatorClient) -> operator_pb2.IssueSshCertificateResponse:
    """Certify the profile's SSH key (made first if needed); write the certificate and known_hosts."""
    directory = ssh_dir(client.profile)
    key = _key(directory)
    issued = client.issue_ssh_certificate(key.export_public_key("openssh").decode().strip())
    write_public_file(directory / CERT_FILE, (issued.certificate + "\n").encode())
    known = f"@cert-authority *.{issued.host_domain} {issued.host_ca_key}\n"
    write_public_file(directory / KNOWN_HOSTS_FILE, known.encode())
    return issued


def config_block(profile: Profile, opsctl: str) -> str:
    """The ``Host *.fleet`` block for ~/.ssh/config."""
    directory = ssh_dir(profile)
    command = f"{opsctl} --profile {shlex.quote(str(profile.directory))} proxy --login %r %h"
    return "\n".join(
        [
            f"# fleetops: the hosts of {profile.controller} as NAME.{HOST_DOMAIN} (opsctl ssh-config)",
            f"Host *.{HOST_DOMAIN}",
            f"    ProxyCommand {command}",
            f'    IdentityFile "{directory / KEY_FILE}"',
            f'    CertificateFile "{directory / CERT_FILE}"',
            "    IdentitiesOnly yes",
            f'    UserKnownHostsFile "{directory / KNOWN_HOSTS_FILE}"',
            "    StrictHostKeyChecking yes",
            "    ForwardAgent no",
            "    ForwardX11 no",
            "",
        ]
    )


def opsctl_command() -> str:
    """How ssh should start this opsctl: its absolute path, or this Python with ``-m``."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name == "opsctl" and script.is_file():
        return shlex.quote(str(script.resolve()))
    return f"{shlex.quote(sys.executable)} -m fleetops.opsctl"


def install(block: str, home: Path) -> Path:
    """Write ``block`` to ~/.ssh/fleetops_config and include it first in ~/.ssh/config (once)."""
    ssh_home = home / ".ssh"
    ssh_home.mkdir(mode=0o700, exist_ok=True)
    target = ssh_home / INSTALLED_FILE
    write_secret_file(target, block.encode())
    config = ssh_home / "config"
    text = config.read_text() if config.is_file() else ""
    # An absolute path: ssh resolves a relative one against the account's home, not $HOME.
    include = f'Include "{target.resolve()}"'
    if include not in text.splitlines():
        # First in the file: an Include after a Host line would apply only to that host.
        write_secret_file(config, f"{include}\n{text}".encode())
    return target


def ssh_config(client: OperatorClient, args: argparse.Namespace) -> int:
    issued = refresh_certificate(client)
    block = config_block(client.profile, opsctl_command())
    expires = issued.expires_at.ToDatetime(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if args.install:
        target = install(block, Path.home())
        print(f"wrote {target} (included from ~/.ssh/config)")
    else:
        print(block, end="")
    print(
        f"# your SSH certificate expires {expires}; 'opsctl proxy' renews it with your login "
        f"(try: ssh root@HOST.{HOST_DOMAIN} uptime)",
        file=sys.stderr,
    )
    return 0


# -- the ProxyCommand ----------------------------------------------------------------------------
def proxy_host(name: str) -> str:
    """``web-1.fleet`` -> ``web-1``: ssh passes the name it was given."""
    suffix = f".{HOST_DOMAIN}"
    host = name[: -len(suffix)] if name.endswith(suffix) else name
    if not host:
        raise InvalidInput("no host given", f"ssh USER@HOST.{HOST_DOMAIN}, or opsctl proxy HOST")
    return host


def proxy(client: OperatorClient, args: argparse.Namespace) -> int:
    host = proxy_host(args.host)
    directory = ssh_dir(client.profile)
    if (directory / KEY_FILE).is_file():
        expiry = certificate_expiry(directory)
        if expiry is None or expiry - datetime.now(UTC) < RENEW_BEFORE:
            refresh_certificate(client)  # for the next ssh: this one read its certificate already
    request = operator_pb2.StartSessionRequest(host=host, run_as=args.login, kind=session_pb2.SESSION_KIND_SSH)
    # ssh hangs its ProxyCommand up when it exits; by then stdin has ended, which ends the session.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return asyncio.run(_carry(client, request))


async def _carry(client: OperatorClient, request: operator_pb2.StartSessionRequest) -> int:
    channel = aio_channel(client.profile)
    try:
        stub = operator_pb2_grpc.OperatorServiceStub(channel)
        session = SessionClient(
            request,
            lambda: stub.Session(),
            Terminal(raw=False, size=lambda: DEFAULT_SIZE),
            peer=f"the controller at {client.profile.controller}",
            eof_input=True,
        )
        return await session.run()
    finally:
        await channel.close(grace=None)
