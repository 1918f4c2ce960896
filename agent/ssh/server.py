"""The agent's SSH server on one end of a socket pair, seen from the other end as a ``Terminal``.

Operators reach hosts with stock OpenSSH clients through the controller: the bytes of one SSH
connection travel over a session stream to the agent, whose ``SessionRunner`` drives a
``Terminal``. :class:`SshServerFactory` makes that terminal: ``read`` returns what the SSH server
sends toward the client, ``write`` hands it the client's bytes. Behind it, asyncssh runs an SSH
server on a ``socket.socketpair()``; what its channels run is :mod:`~fleetops.agent.ssh.channels`.

Who may log in (the server runs as root on every host, so each check fails closed):

- only public-key authentication, only with an OpenSSH *user certificate* signed by one of the
  fleet's SSH user CAs (``cert-authority`` entries: asyncssh checks the CA signature, the validity
  period, the certificate's source-address and force-command, and that a principal names the
  operator), no password, keyboard-interactive, host-based, GSS or plain keys;
- the certificate's *key id* must equal :attr:`SshSetup.operator` and the username must be
  :attr:`SshSetup.login`: asyncssh offers no hook that sees the certificate, so the server wraps the
  connection's ``validate_public_key`` (see :meth:`_FleetSshServer.connection_made`), and
  ``auth_completed`` drops a connection that logged in without passing that check.

Forwarding is decided per request by :class:`~fleetops.agent.ssh.setup.GrantedForwarding` (what
the operator's roles allow on this host, as the controller sent it; one method per kind), and
sftp/scp only run when the setup grants file transfer.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import pwd
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from fleetops.agent.sessions.interfaces import TerminalFactory
from fleetops.agent.ssh.activity import ActivityLog, ForwardStats
from fleetops.agent.ssh.certificates import Credentials, login_refusal, parse_credentials
from fleetops.agent.ssh.channels import LoginAccount, SessionChannel, SessionTasks
from fleetops.agent.ssh.setup import ForwardingPolicy, GrantedForwarding, SshSetup
from fleetops.common.errors import InvalidInput, NotFound
from fleetops.common.ssh import asyncssh
from fleetops.v1 import session_pb2

log = logging.getLogger(__name__)

#: Seconds a client has from connecting to logging in.
LOGIN_TIMEOUT = 60.0
#: Bytes of the SSH stream read at most per output frame: SSH bulk data (scp, forwards) in frames of
#: 256 KiB went 25-35 % faster through the relay than in 64 KiB ones (bench/forward.py); more did not help.
SSH_READ_CHUNK = 256 * 1024
#: Seconds a closing connection's channels have to report what they did (see SshTerminal.read).
CLOSING_REPORTS_TIMEOUT = 10.0
#: Exit code of :meth:`SshTerminal.wait` when the server failed rather than the connection ending.
SERVER_FAILURE_EXIT_CODE = 255

_PublicKeyCheck = Callable[[str, bytes, bytes, bytes], Awaitable[bool]]


class SshServerFactory:
    """Starts an SSH server per session; implements ``TerminalFactory``.

    Args:
        setup: certificates, CAs, operator and login of the session.
        host_key: the agent's host key (:func:`~fleetops.agent.ssh.host_key.load_or_create_host_key`).
        terminals: starts pty sessions (the agent's usual ``TerminalFactory``, which switches users).
        forwarding: decides on forwarding requests; the default refuses them all.
        login_timeout: seconds a client has to log in.
    """

    def __init__(
        self,
        setup: SshSetup,
        host_key: asyncssh.SSHKey,
        terminals: TerminalFactory,
        *,
        forwarding: ForwardingPolicy | None = None,
        login_timeout: float = LOGIN_TIMEOUT,
    ) -> None:
        self._setup = setup
        self._host_key = host_key
        self._terminals = terminals
        self._forwarding = forwarding or GrantedForwarding(setup)
        self._login_timeout = login_timeout

    async def spawn(
        self,
        user: str | None,
        command: str | None,
        cols: int,
        rows: int,
        term: str,
        env: Mapping[str, str],
    ) -> SshTerminal:
        """Start an SSH server for one connection; the SSH protocol carries command, size and env.

        Args:
            user: must be :attr:`SshSetup.login` (``None`` counts as ``""``).
            command: ignored.
            cols: ignored.
            rows: ignored.
            term: ignored.
            env: ignored.

        Raises:
            InvalidInput: the host certificate or a CA key does not parse, the certificate is not
                a host certificate of the agent's host key, or ``user`` is not the setup's login.
            NotFound: the login account does not exist on this host.
        """
        if (user or "") != self._setup.login:
            raise InvalidInput(f"SSH session for user {user!r} but the setup allows {self._setup.login!r}")
        credentials = parse_credentials(self._setup, self._host_key)
        account = _login_account(self._setup.login)
        outer, inner = socket.socketpair()
        try:
            reader, writer = await asyncio.open_connection(sock=outer, limit=SSH_READ_CHUNK)
        except BaseException:
            outer.close()
            inner.close()
            raise
        server = _FleetSshServer(
            self._setup.operator, account, self._terminals, self._forwarding, file_transfer=self._setup.file_transfer
        )
        options = _server_options(credentials, server, self._forwarding, self._setup.operator, self._login_timeout)
        log.info("SSH server started for %s logging in as %s", self._setup.operator, account.name)
        return SshTerminal(reader, writer, server, inner, options)


class SshTerminal:
    """An SSH connection's raw bytes, seen as a ``Terminal``. Made by :class:`SshServerFactory`."""

    shell = "ssh"  # what runs on the terminal, for the session record

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        server: _FleetSshServer,
        inner: socket.socket,
        options: asyncssh.SSHServerConnectionOptions,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._server = server
        self._activity = server.activity
        self._closed = False
        self._terminating = False
        self._pending_read: asyncio.Future[bytes] | None = None
        self._ended = False  # the SSH bytes ended: only activity queued before is left to read
        self._serving = asyncio.create_task(self._serve(inner, options))

    @property
    def pid(self) -> int:
        """The agent's own process id: the server runs inside the agent."""
        return os.getpid()

    async def read(self) -> bytes | session_pb2.SessionActivity:
        """The next bytes toward the client (at most ``SSH_READ_CHUNK``) or the next activity item
        (:mod:`~fleetops.agent.ssh.activity`), in the order they happened; ``b""`` once the connection
        is closed and everything its channels reported while closing was read."""
        item = self._activity.take()
        if item is not None:
            return item
        if self._closed or self._ended:
            return b""
        if self._pending_read is None:
            self._pending_read = asyncio.ensure_future(self._reader.read(SSH_READ_CHUNK))
        queued: asyncio.Future[None] = asyncio.ensure_future(self._activity.wait())
        waiting: set[asyncio.Future[Any]] = {self._pending_read, queued}
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            queued.cancel()
        item = self._activity.take()
        if item is not None:
            return item  # the read in flight is kept for the next call: no byte is lost
        pending, self._pending_read = self._pending_read, None
        try:
            data = pending.result()
        except OSError:
            data = b""
        if data and not self._closed:
            return data
        # The connection ended: its channels report what they did as they close (a forward's
        # bytes, a transfer's digest); wait for them, then hand those reports out before the end.
        self._ended = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._serving), CLOSING_REPORTS_TIMEOUT)
        return self._activity.take() or b""

    async def write(self, data: bytes) -> None:
        """Hand the client's bytes to the server; waits while the socket buffer is full.

        Bytes arriving after the connection ended are dropped. No bytes (an empty input frame) is
        the end of the client's input: ``opsctl proxy`` sends it when ssh closed its side, and the
        server sees the end of its socket (docs/ssh.md).
        """
        if self._closed or self._writer.is_closing():
            return
        if not data:
            with contextlib.suppress(OSError):
                self._writer.write_eof()
            return
        try:
            self._writer.write(data)
            await self._writer.drain()
        except OSError:
            return  # the server closed its end: the connection is over

    def resize(self, cols: int, rows: int) -> None:
        """Does nothing: the SSH protocol carries its own window changes."""

    async def wait(self) -> int:
        """0 once the SSH connection has ended and its sessions have cleaned up; 255 if the server failed."""
        return await asyncio.shield(self._serving)

    def terminate(self) -> None:
        """Disconnect the client; the sessions of the connection are hung up. Idempotent."""
        if self._terminating:
            return
        self._terminating = True
        connection = self._server.connection
        if connection is not None:
            connection.disconnect(asyncssh.DISC_BY_APPLICATION, "the session was ended by the fleet")
        elif not self._writer.is_closing():
            with contextlib.suppress(OSError):
                self._writer.write_eof()  # the server has not started yet: it reads the end at once

    def close(self) -> None:
        """Terminate and release the socket; later reads return ``b""``, later writes are dropped."""
        if self._closed:
            return
        self.terminate()
        self._closed = True
        if self._pending_read is not None:
            self._pending_read.cancel()
        self._writer.close()

    async def _serve(self, sock: socket.socket, options: asyncssh.SSHServerConnectionOptions) -> int:
        try:
            connection = await asyncssh.run_server(sock, options=options)
        except (asyncssh.Error, OSError) as exc:
            log.warning("SSH connection of %s ended before login: %s", self._server.operator, exc)
            return 0
        except Exception:
            log.exception("the SSH server failed before login")
            return SERVER_FAILURE_EXIT_CODE
        finally:
            if self._server.connection is None:
                sock.close()  # asyncssh never took it over
        try:
            await connection.wait_closed()
            await self._server.sessions.wait_idle()
        except Exception:
            log.exception("the SSH server failed")
            return SERVER_FAILURE_EXIT_CODE
        log.info("SSH connection of %s ended", self._server.operator)
        return 0


class _FleetSshServer(asyncssh.SSHServer):
    """Policy of one connection: who may log in, which channels open. Protocol stays in asyncssh."""

    def __init__(
        self,
        operator: str,
        account: LoginAccount,
        terminals: TerminalFactory,
        forwarding: ForwardingPolicy,
        *,
        file_transfer: bool = False,
    ) -> None:
        self.operator = operator
        self._file_transfer = file_transfer
        self.account = account
        self.activity = ActivityLog()  # terminals, forwards and transfers, for the controller
        self.sessions = SessionTasks()
        self.connection: asyncssh.SSHServerConnection | None = None
        self._terminals = terminals
        self._forwarding = forwarding
        self._asyncssh_check: _PublicKeyCheck | None = None
        self._logged_in = False

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        """Put the certificate check in front of asyncssh's, before the client can send anything.

        asyncssh's ``SSHServerConnection.validate_public_key(username, key_data, msg, signature)``
        receives the client's certificate as sent; no ``SSHServer`` hook does. If a later asyncssh
        renamed it, ``getattr`` fails here and the connection ends (asyncssh reports the error).
        """
        self.connection = conn
        self._asyncssh_check = getattr(conn, "validate_public_key")  # noqa: B009 -- fail loudly if renamed
        setattr(conn, "validate_public_key", self._check_public_key)  # noqa: B010 -- see the docstring

    def begin_auth(self, username: str) -> bool:
        """Every login needs authentication."""
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        """Plain keys never log in; only certificates do."""
        return False

    def validate_ca_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        """Only the configured user CAs sign certificates (asyncssh asks here for any other CA)."""
        return False

    def auth_completed(self) -> None:
        """Drop a login that did not pass :meth:`_check_public_key` (it should not be possible)."""
        if not self._logged_in and self.connection is not None:
            log.error("SSH login of %s completed without the certificate check: disconnecting", self.operator)
            self.connection.disconnect(asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE, "login refused")

    async def _check_public_key(self, username: str, key_data: bytes, msg: bytes, signature: bytes) -> bool:
        refusal = login_refusal(username, key_data, self.operator, self.account.name)
        if refusal:
            log.warning("SSH login of %s as %s refused: %s", self.operator, username, refusal)
            return False
        assert self._asyncssh_check is not None
        accepted = await self._asyncssh_check(username, key_data, msg, signature)
        if not accepted:
            log.warning(
                "SSH login of %s as %s refused: the certificate is not signed by a fleet SSH user CA, "
                "is not valid now, does not name the user, or the signature is wrong",
                self.operator,
                username,
            )
        elif msg:  # a signed request: the login succeeds with it
            self._logged_in = True
            log.info("SSH login of %s as %s", self.operator, username)
        return accepted

    # -- channels -------------------------------------------------------------------------------
    def session_requested(self) -> SessionChannel | bool:
        if not self._logged_in:
            return False
        return SessionChannel(self.account, self._terminals, self.sessions, self.activity, self._file_transfer)

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> Awaitable[asyncssh.SSHTCPSession[bytes]]:
        if not (self._logged_in and self._forwarding.allow_local_forward(self.operator, dest_host, dest_port)):
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "port forwarding is refused")
        return self._forward(dest_host, dest_port)

    async def _forward(self, dest_host: str, dest_port: int) -> asyncssh.SSHTCPSession[bytes]:
        """Connect to the destination, as asyncssh's own forwarder does, counting the bytes each way."""
        loop = asyncio.get_running_loop()
        try:
            _, peer = await loop.create_connection(asyncssh.forward.SSHForwarder, dest_host, dest_port)
        except OSError as exc:
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, str(exc)) from None
        stats = ForwardStats(f"{dest_host}:{dest_port}")
        login = self.account.name
        forwarder = _CountedForwarder(peer, stats, lambda: self.activity.audit("ssh.forward", stats.details(login)))
        return cast(asyncssh.SSHTCPSession[bytes], forwarder)  # asyncssh's own forwarder is used so too

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        return self._logged_in and self._forwarding.allow_remote_forward(self.operator, listen_host, listen_port)

    def unix_connection_requested(self, dest_path: str) -> bool:
        if not (self._logged_in and self._forwarding.allow_unix_forward(self.operator, dest_path)):
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "socket forwarding is refused")
        return True

    def unix_server_requested(self, listen_path: str) -> bool:
        return self._logged_in and self._forwarding.allow_unix_forward(self.operator, listen_path)

    def tun_requested(self, unit: int | None) -> bool:
        return self._logged_in and self._forwarding.allow_tunnel(self.operator)

    def tap_requested(self, unit: int | None) -> bool:
        return self._logged_in and self._forwarding.allow_tunnel(self.operator)


class _CountedForwarder(asyncssh.forward.SSHForwarder):
    """The channel's side of a forwarded connection: asyncssh's forwarder, counting what passes."""

    def __init__(self, peer: asyncssh.forward.SSHForwarder, stats: ForwardStats, ended: Callable[[], None]) -> None:
        super().__init__(peer)
        self._stats = stats
        self._ended: Callable[[], None] | None = ended

    def data_received(self, data: bytes, datatype: int | None = None) -> None:
        self._stats.to_destination += len(data)
        super().data_received(data, datatype)

    def write(self, data: bytes) -> None:
        self._stats.from_destination += len(data)
        super().write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._ended is not None:
            ended, self._ended = self._ended, None
            ended()
        super().connection_lost(exc)


def _server_options(
    credentials: Credentials,
    server: _FleetSshServer,
    forwarding: ForwardingPolicy,
    operator: str,
    login_timeout: float,
) -> asyncssh.SSHServerConnectionOptions:
    return asyncssh.SSHServerConnectionOptions(
        server_factory=lambda: server,
        server_host_keys=[(credentials.host_key, credentials.host_certificate)],
        authorized_client_keys=credentials.user_cas,
        public_key_auth=True,
        password_auth=False,
        kbdint_auth=False,
        host_based_auth=False,
        gss_host=None,
        allow_pty=True,
        line_editor=False,  # ptys are real ones, with their own line discipline
        encoding=None,
        agent_forwarding=forwarding.allow_agent_forwarding(operator),
        x11_forwarding=forwarding.allow_x11_forwarding(operator),
        login_timeout=login_timeout,
    )


def _login_account(login: str) -> LoginAccount:
    """The account ``login`` names (``""``: the agent's own).

    Raises:
        NotFound: there is no such account.
    """
    euid = os.geteuid()
    if not login:
        try:
            entry = pwd.getpwuid(euid)
        except KeyError:
            return LoginAccount(getpass.getuser(), own=True, home=os.environ.get("HOME") or "/")
        return LoginAccount(entry.pw_name, own=True, home=entry.pw_dir or "/")
    try:
        entry = pwd.getpwnam(login)
    except KeyError:
        raise NotFound(f"no such user on this host: {login}", "check the login name of the SSH session") from None
    return LoginAccount(entry.pw_name, own=entry.pw_uid == euid, home=entry.pw_dir or "/")
