"""An SSH connection to a host's built-in SSH server, made inside opsctl (for ``opsctl cp`` and ``forward``).

It is what ``ssh -F <opsctl ssh-config> USER@HOST.fleet`` does, without an ssh process: the
session stream of ``opsctl proxy`` (``StartSessionRequest(kind=SESSION_KIND_SSH)``) carried by a
:class:`~fleetops.opsctl.terminal_session.SessionClient`, and asyncssh's client on the other end of
a socket pair::

    asyncssh client <-> [s2 | s1] <-> SessionClient <-> controller <-> agent's SSH server

Trust is the same as stock ssh's with the ``opsctl ssh-config`` block (docs/ssh.md): the
operator's certified key from the profile (renewed when missing or near expiry, as ``opsctl
proxy`` does), and the host must present a certificate of the fleet's SSH host CA naming
``HOST.fleet`` (asyncssh checks the principal against ``host_key_alias``). Nothing of the user's
~/.ssh (config, known_hosts, agent) is read.

Errors come out as the fleetops tree: the controller's refusal (no such host, host offline,
permission denied) as it sent it; an SSH login or host-key failure as ``PermissionDenied`` /
``Unauthenticated``; anything else on the way as ``Unavailable``.

Closing ends the session the clean way, as ssh's exit ends ``opsctl proxy``'s: the SSH connection
is closed, then the end of input goes to the agent (an empty data frame), and the session's
``ended`` is awaited. asyncssh is handed a duplicate of its socket end, so that end stays open for
that last step: the agent's final bytes land in it (drained) instead of failing the session
client's writes, which would cancel the stream and leave the session to the resume window.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from fleetops.common.errors import FleetopsError, PermissionDenied, Unauthenticated, Unavailable
from fleetops.common.ssh import HOST_DOMAIN, asyncssh
from fleetops.opsctl.client import OperatorClient, aio_channel
from fleetops.opsctl.ssh import (
    CERT_FILE,
    KEY_FILE,
    KNOWN_HOSTS_FILE,
    RENEW_BEFORE,
    certificate_expiry,
    proxy_host,
    refresh_certificate,
    ssh_dir,
)
from fleetops.opsctl.terminal_session import DEFAULT_SIZE, SessionClient, Terminal
from fleetops.v1 import operator_pb2, operator_pb2_grpc, session_pb2

#: Seconds for the SSH handshake and login, once the session has started.
CONNECT_TIMEOUT = 60.0
#: Seconds closing waits for the session to end after the end of input was sent.
CLOSE_TIMEOUT = 15.0
#: Bytes read at a time when draining the agent's last output at close.
DRAIN_CHUNK = 64 * 1024


@dataclass(frozen=True)
class SshCredentials:
    """What the SSH client needs from the profile: the certified key, and the host CA(s) to trust."""

    key: asyncssh.SSHKey
    certificate: asyncssh.SSHCertificate
    host_ca_keys: list[asyncssh.SSHKey]


def host_ca_keys(known_hosts: Path) -> list[asyncssh.SSHKey]:
    """The keys of the ``@cert-authority`` lines of ``known_hosts`` (as ``opsctl ssh-config`` writes it)."""
    keys = []
    try:
        text = known_hosts.read_text()
    except OSError:
        return []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "@cert-authority":
            with contextlib.suppress(asyncssh.KeyImportError, ValueError):
                keys.append(asyncssh.import_public_key(" ".join(parts[2:4])))
    return keys


def load_credentials(client: OperatorClient, now: datetime | None = None) -> SshCredentials:
    """The profile's SSH key, its certificate and the host CA; certified anew when missing or near expiry.

    Raises:
        FleetopsError: the controller refused to certify the key (as sent).
        Unauthenticated: the files cannot be read after a refresh.
    """
    directory = ssh_dir(client.profile)
    now = now or datetime.now(UTC)
    expiry = certificate_expiry(directory) if (directory / KEY_FILE).is_file() else None
    if expiry is None or expiry - now < RENEW_BEFORE or not host_ca_keys(directory / KNOWN_HOSTS_FILE):
        refresh_certificate(client)
    try:
        key = asyncssh.read_private_key(directory / KEY_FILE)
        certificate = asyncssh.read_certificate(directory / CERT_FILE)
    except (OSError, ValueError, asyncssh.KeyImportError) as exc:
        raise Unauthenticated(
            f"cannot read this profile's SSH key or certificate in {directory}: {exc}", "run: opsctl ssh-config"
        ) from None
    cas = host_ca_keys(directory / KNOWN_HOSTS_FILE)
    if not cas:
        raise Unauthenticated(f"no fleet SSH host CA in {directory / KNOWN_HOSTS_FILE}", "run: opsctl ssh-config")
    return SshCredentials(key, certificate, cas)


class _Notices(io.StringIO):
    """The session client's notices (reconnecting..., why a session ended): kept, and passed on."""

    def __init__(self, target: TextIO | None) -> None:
        super().__init__()
        self._target = target

    def write(self, text: str) -> int:
        if self._target is not None:
            self._target.write(text)
        return super().write(text)

    def flush(self) -> None:
        if self._target is not None:
            self._target.flush()

    def text(self) -> str:
        return " ".join(line.removeprefix("fleetops: ") for line in self.getvalue().splitlines() if line.strip())


def _client_options(credentials: SshCredentials, host: str, login: str) -> asyncssh.SSHClientConnectionOptions:
    name = f"{host}.{HOST_DOMAIN}"
    return asyncssh.SSHClientConnectionOptions(
        host=name,
        host_key_alias=name,  # the principal the host certificate must name
        username=login,
        client_keys=[(credentials.key, credentials.certificate)],
        known_hosts=([], credentials.host_ca_keys, []),  # (trusted host keys, trusted CAs, revoked)
        agent_path=None,
        agent_forwarding=False,
        x11_forwarding=False,
        preferred_auth="publickey",
        password=None,
        kbdint_auth=False,
        ignore_encrypted=True,
        compression_algs=None,  # the bytes are often compressed already; CPU is the scarce thing here
        connect_timeout=CONNECT_TIMEOUT,
        login_timeout=CONNECT_TIMEOUT,
    )


def _ssh_error(exc: BaseException, host: str, login: str) -> FleetopsError:
    """An asyncssh (or socket) failure of the handshake, as a fleetops error."""
    who = f"as {login}" if login else "as the agent's user"
    reason = getattr(exc, "reason", "") or str(exc) or type(exc).__name__
    if isinstance(exc, asyncssh.PermissionDenied):
        return PermissionDenied(
            f"{host} refused the SSH login {who}: {reason}",
            "renew the SSH certificate (opsctl ssh-config) and check that the login exists on the host",
        )
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return Unauthenticated(
            f"{host}.{HOST_DOMAIN} did not prove to be {host}: {reason}",
            "run opsctl ssh-config to refresh the fleet's host CA; if it persists, report it",
        )
    return Unavailable(f"the SSH connection to {host} failed: {reason}", "retry; see the agent's log")


@contextlib.asynccontextmanager
async def connect_host(
    client: OperatorClient, host: str, login: str = "", *, notices: TextIO | None = None
) -> AsyncIterator[asyncssh.SSHClientConnection]:
    """An SSH connection to ``host``'s agent as ``login``, for the body of the ``async with``.

    Args:
        client: the operator's client (profile, and the certificate refresh).
        host: host name or id; a trailing ``.fleet`` is dropped.
        login: the account to log in as; ``""``: the agent's own user.
        notices: where the session's notices go as they happen (default: stderr).

    Raises:
        FleetopsError: the controller refused the session (as sent: ``NotFound``, ``Unavailable``,
            ``PermissionDenied``...), the host refused the login (``PermissionDenied``), the host
            key was not certified for ``host`` (``Unauthenticated``), or the connection failed
            (``Unavailable``).
    """
    host = proxy_host(host)
    credentials = await asyncio.to_thread(load_credentials, client)
    request = operator_pb2.StartSessionRequest(host=host, run_as=login, kind=session_pb2.SESSION_KIND_SSH)
    loop = asyncio.get_running_loop()
    said = _Notices(sys.stderr if notices is None else notices)
    channel = aio_channel(client.profile)
    ours, theirs = socket.socketpair()  # ours: the session client's end; theirs: asyncssh's
    handed = theirs.dup()
    session_task: asyncio.Task[int] | None = None
    conn: asyncssh.SSHClientConnection | None = None
    try:
        stub = operator_pb2_grpc.OperatorServiceStub(channel)
        terminal = Terminal(
            stdin_fd=ours.fileno(), stdout_fd=ours.fileno(), stderr=said, raw=False, size=lambda: DEFAULT_SIZE
        )
        peer = f"the controller at {client.profile.controller}"
        session = SessionClient(request, lambda: stub.Session(), terminal, peer=peer, eof_input=True)
        session_task = asyncio.create_task(session.run(), name=f"ssh-session-{host}")
        # The session over: asyncssh sees the end of its connection instead of waiting on it.
        session_task.add_done_callback(lambda _: _shutdown(ours))
        connecting = asyncio.create_task(_connect(handed, host, _client_options(credentials, host, login)))
        await asyncio.wait({session_task, connecting}, return_when=asyncio.FIRST_COMPLETED)
        if not connecting.done():
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
            _raise_session_end(session_task, host, said)
        failure = connecting.exception()
        if failure is not None:
            if session_task.done():
                _raise_session_end(session_task, host, said)
            if isinstance(failure, asyncssh.Error | OSError | TimeoutError):
                raise _ssh_error(failure, host, login) from None
            raise failure
        conn = connecting.result()
        yield conn
    finally:
        with contextlib.suppress(Exception):
            await _close(conn, session_task, theirs, loop)
        handed.close()
        theirs.close()
        ours.close()
        await channel.close(grace=None)


async def _connect(
    sock: socket.socket, host: str, options: asyncssh.SSHClientConnectionOptions
) -> asyncssh.SSHClientConnection:
    # The name goes to connect() too: over a socket pair there is no peer address to fall back on.
    # config=None: nothing of ~/.ssh/config (its *.fleet block would proxy through another opsctl).
    return await asyncssh.connect(f"{host}.{HOST_DOMAIN}", sock=sock, config=None, options=options)


def _raise_session_end(session_task: asyncio.Task[int], host: str, said: _Notices) -> None:
    """The session ended (or failed) before SSH connected: raise why."""
    failure = session_task.exception()
    if failure is not None:
        raise failure
    why = said.text() or f"exit status {session_task.result()}"
    raise Unavailable(f"the session to {host} ended before SSH connected: {why}", "retry; see the agent's log")


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


async def _close(
    conn: asyncssh.SSHClientConnection | None,
    session_task: asyncio.Task[int] | None,
    theirs: socket.socket,
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Close the SSH connection, send the end of input, and wait for the session to end."""
    if conn is not None:
        conn.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(conn.wait_closed(), CLOSE_TIMEOUT)
    if session_task is None:
        return
    with contextlib.suppress(OSError):
        theirs.shutdown(socket.SHUT_WR)  # the session client reads the end: an empty data frame goes out
    drain = asyncio.create_task(_drain(theirs, loop))
    try:
        await asyncio.wait({session_task}, timeout=CLOSE_TIMEOUT)
    finally:
        drain.cancel()
        if not session_task.done():
            session_task.cancel()
        await asyncio.gather(drain, session_task, return_exceptions=True)


async def _drain(sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
    """Read and drop what still comes from the agent, until the session client's end closes."""
    sock.setblocking(False)
    while await loop.sock_recv(sock, DRAIN_CHUNK):
        pass


__all__ = ["SshCredentials", "connect_host", "host_ca_keys", "load_credentials"]
