"""``opsctl forward HOST [LPORT:[DEST:]]PORT``: a local TCP port carried to a port on or behind a host.

Like ``ssh -L`` (and SSM's port forwarding sessions): connections to ``--bind``:LPORT (default
127.0.0.1) travel over one SSH connection (:func:`~fleetops.opsctl.ssh_connection.connect_host`,
one session, authorized and audited like ``ssh``) and the host's agent connects each to DEST:PORT
(default DEST: the host's own 127.0.0.1). Forms::

    opsctl forward web-1 8080              127.0.0.1:8080 -> web-1 -> 127.0.0.1:8080
    opsctl forward web-1 8080:80           127.0.0.1:8080 -> web-1 -> 127.0.0.1:80
    opsctl forward web-1 5433:db-1:5432    127.0.0.1:5433 -> web-1 -> db-1:5432 (a host behind web-1)
    opsctl forward web-1 0:80              a free local port, printed

It prints ``forwarding 127.0.0.1:8080 -> web-1 -> 127.0.0.1:80 (Ctrl-C to stop)`` once the port
listens, and runs until SIGINT or SIGTERM (then exits 0), or until the connection to the host ends
(exit 6).

**Refusals.** The host decides every connection (a ``direct-tcpip`` channel) against the
operator's role (``ssh.forward`` and its destinations, docs/access.md). opsctl checks once at
start: it opens one channel to DEST:PORT and closes it at once. A refusal ends opsctl right away
with the host's reason, instead of a forward that only fails once someone connects; the cost is one
empty TCP connection to the destination (``--no-check`` skips it). If nothing listens there yet,
that is a note, not an error: the service may start later. After start, each refused connection
gets one line on stderr and is closed; the forward keeps running.

The forwarding loop is opsctl's own (``asyncio`` listener + ``conn.open_connection`` per
connection) rather than asyncssh's ``forward_local_port``: that one closes a refused local
connection silently, with no hook to say why.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import sys
from dataclasses import dataclass
from typing import TextIO

from fleetops.common.errors import InvalidInput, PermissionDenied, Unavailable
from fleetops.common.ssh import HOST_DOMAIN, asyncssh
from fleetops.opsctl.client import OperatorClient
from fleetops.opsctl.ssh_connection import connect_host

DEFAULT_LOGIN = "root"
DEFAULT_BIND = "127.0.0.1"
DEFAULT_DEST = "127.0.0.1"
#: Bytes read at a time from either side of a forwarded connection.
READ_CHUNK = 256 * 1024
#: Seconds forwarded connections get to finish after SIGINT/SIGTERM before they are cut.
STOP_GRACE = 2.0

_PORT = r"(\d{1,5})"
_SPEC_FORMS = (
    re.compile(rf"^{_PORT}$"),
    re.compile(rf"^{_PORT}:{_PORT}$"),
    re.compile(rf"^{_PORT}:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):{_PORT}$"),
)
USAGE = "opsctl forward [--bind ADDR] [--as LOGIN] [--no-check] HOST PORT|LPORT:RPORT|LPORT:DEST:RPORT"


@dataclass(frozen=True)
class ForwardSpec:
    """``LPORT:DEST:RPORT``: listen on LPORT here; the host connects to DEST:RPORT."""

    local_port: int
    dest_host: str
    dest_port: int

    @property
    def destination(self) -> str:
        host = f"[{self.dest_host}]" if ":" in self.dest_host else self.dest_host
        return f"{host}:{self.dest_port}"


def _port(text: str, what: str, zero_ok: bool) -> int:
    port = int(text)
    if not (0 if zero_ok else 1) <= port <= 65535:
        allowed = "0 (any free port) to 65535" if zero_ok else "1 to 65535"
        raise InvalidInput(f"{what} {port} is out of range", f"a port is {allowed}")
    return port


def parse_spec(text: str) -> ForwardSpec:
    """``PORT``, ``LPORT:RPORT`` or ``LPORT:DEST:RPORT`` (DEST a name, an IPv4 or a ``[IPv6]`` address).

    Raises:
        InvalidInput: another form, or a port out of range (LPORT may be 0: any free port).
    """
    for form in _SPEC_FORMS:
        m = form.match(text)
        if m is None:
            continue
        groups = m.groups()
        if len(groups) == 1:
            port = _port(groups[0], "port", zero_ok=False)
            return ForwardSpec(port, DEFAULT_DEST, port)
        if len(groups) == 2:
            return ForwardSpec(
                _port(groups[0], "local port", True), DEFAULT_DEST, _port(groups[1], "remote port", False)
            )
        dest = groups[1].removeprefix("[").removesuffix("]")
        return ForwardSpec(_port(groups[0], "local port", True), dest, _port(groups[2], "remote port", False))
    raise InvalidInput(
        f"cannot read the forward {text!r}",
        "give PORT, LPORT:RPORT or LPORT:DEST:RPORT, e.g. 8080, 8080:80 or 5433:db-1:5432",
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "forward",
        help="forward a local TCP port to a port on (or behind) a host, like ssh -L",
        usage=USAGE,
        description="Listen on a local port and carry each connection over one SSH connection to HOST, "
        "whose agent connects it to DEST:RPORT (default DEST: the host's 127.0.0.1). Runs until "
        "Ctrl-C. The role must allow ssh.forward to that destination (docs/access.md).",
    )
    p.add_argument("host", metavar="HOST", help=f"host name or id (a trailing .{HOST_DOMAIN} is dropped)")
    p.add_argument("spec", metavar="PORT|LPORT:RPORT|LPORT:DEST:RPORT", help="what to forward (LPORT 0: any free)")
    p.add_argument("--bind", default=DEFAULT_BIND, metavar="ADDR", help=f"local address (default {DEFAULT_BIND})")
    p.add_argument(
        "--as", dest="login", default=DEFAULT_LOGIN, metavar="LOGIN", help=f"log in as LOGIN (default {DEFAULT_LOGIN})"
    )
    p.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="do not open a test connection to the destination at start",
    )
    p.set_defaults(func=forward_command)


def forward_command(client: OperatorClient, args: argparse.Namespace) -> int:
    spec = parse_spec(args.spec)
    forwarder = Forwarder(client, args.host.removesuffix(f".{HOST_DOMAIN}"), spec, args.login, args.bind)
    return asyncio.run(forwarder.run(check=args.check))


class Forwarder:
    """One ``opsctl forward``: the listener, the SSH connection and the connections between them.

    Args:
        client: the operator's client.
        host: the host whose agent connects onward.
        spec: ports and destination.
        login: the SSH login.
        bind: the local address to listen on.
        out, err: where the ``forwarding ...`` line and the per-connection notes go.
    """

    def __init__(
        self,
        client: OperatorClient,
        host: str,
        spec: ForwardSpec,
        login: str = DEFAULT_LOGIN,
        bind: str = DEFAULT_BIND,
        *,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.client = client
        self.host = host
        self.spec = spec
        self.login = login
        self.bind = bind
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.refused = 0
        self.served = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """End the forward (what SIGINT and SIGTERM do)."""
        self._stop.set()

    async def run(self, check: bool = True) -> int:
        """Forward until :meth:`stop` (or a signal): 0; raises when the connection to the host ends.

        Raises:
            FleetopsError: the connection could not be made (see ``connect_host``), the host refused
                the test connection (``PermissionDenied``), the local port could not be bound
                (``InvalidInput``), or the connection to the host ended (``Unavailable``).
        """
        loop = asyncio.get_running_loop()
        signals = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self.stop)
                signals.append(signum)
        try:
            async with connect_host(self.client, self.host, self.login, notices=self.err) as conn:
                if check:
                    await self._check(conn)
                try:
                    server = await asyncio.start_server(
                        lambda r, w: self._accept(conn, r, w), self.bind, self.spec.local_port
                    )
                except OSError as exc:
                    raise InvalidInput(
                        f"cannot listen on {self.bind}:{self.spec.local_port}: {exc.strerror or exc}",
                        "choose another local port (0: any free port) or --bind address",
                    ) from None
                try:
                    port = server.sockets[0].getsockname()[1]
                    self._say(
                        self.out,
                        f"forwarding {self.bind}:{port} -> {self.host} -> {self.spec.destination} (Ctrl-C to stop)",
                    )
                    lost = await self._wait(conn)
                finally:
                    server.close()
                    await self._finish_connections()
                    await server.wait_closed()
                if lost:
                    raise Unavailable(
                        f"the connection to {self.host} ended; the forward stopped",
                        f"run opsctl forward again; see: opsctl session list --host {self.host}",
                    )
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)
        return 0

    async def _wait(self, conn: asyncssh.SSHClientConnection) -> bool:
        """Until stopped (False) or the SSH connection ends (True)."""
        stopped = asyncio.create_task(self._stop.wait())
        closed = asyncio.create_task(conn.wait_closed())
        try:
            await asyncio.wait({stopped, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            closed.cancel()
            await asyncio.gather(stopped, closed, return_exceptions=True)
        return not self._stop.is_set()

    async def _finish_connections(self) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=STOP_GRACE)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _check(self, conn: asyncssh.SSHClientConnection) -> None:
        """One test connection to the destination: a refusal of the host ends opsctl here."""
        try:
            _, writer = await conn.open_connection(self.spec.dest_host, self.spec.dest_port)
        except asyncssh.ChannelOpenError as exc:
            if exc.code == asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED:
                raise PermissionDenied(
                    f"{self.host} refused to forward to {self.spec.destination}: {exc.reason}",
                    f"your role needs ssh.forward with destination {self.spec.destination} on {self.host} "
                    "(docs/access.md)",
                ) from None
            self._say(
                self.err,
                f"note: nothing answers at {self.spec.destination} on {self.host} yet ({exc.reason}); "
                "forwarding anyway",
            )
            return
        writer.close()

    def _accept(
        self, conn: asyncssh.SSHClientConnection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.create_task(self._carry(conn, reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _carry(
        self, conn: asyncssh.SSHClientConnection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername") or ("", 0)
        orig_host, orig_port = str(peer[0]), int(peer[1])
        try:
            try:
                remote_reader, remote_writer = await conn.open_connection(
                    self.spec.dest_host, self.spec.dest_port, orig_host, orig_port
                )
            except asyncssh.ChannelOpenError as exc:
                self._refused(orig_host, orig_port, exc)
                return
            except (asyncssh.Error, OSError) as exc:
                self._say(self.err, f"connection from {orig_host}:{orig_port} failed: {exc}")
                return
            self.served += 1
            pipes = [
                asyncio.create_task(_pipe(reader, remote_writer)),
                asyncio.create_task(_pipe(remote_reader, writer)),
            ]
            try:
                # Both ends passed on, or one side failed (a reset): the connection ends, the forward goes on.
                await asyncio.wait(pipes, return_when=asyncio.FIRST_EXCEPTION)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
                remote_writer.close()
        finally:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    def _refused(self, orig_host: str, orig_port: int, exc: asyncssh.ChannelOpenError) -> None:
        self.refused += 1
        line = f"{self.host} refused a connection from {orig_host}:{orig_port} to {self.spec.destination}: {exc.reason}"
        self._say(self.err, line)
        if self.refused == 1 and exc.code == asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED:
            self._say(
                self.err,
                f"hint: your role needs ssh.forward with destination {self.spec.destination} on {self.host} "
                "(docs/access.md)",
            )

    @staticmethod
    def _say(stream: TextIO, line: str) -> None:
        stream.write(line + "\n")
        stream.flush()


async def _pipe(
    reader: asyncio.StreamReader | asyncssh.SSHReader[bytes], writer: asyncio.StreamWriter | asyncssh.SSHWriter[bytes]
) -> None:
    """Copy ``reader`` to ``writer`` until its end, then pass the end on (half-close)."""
    while data := await reader.read(READ_CHUNK):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


__all__ = ["ForwardSpec", "Forwarder", "parse_spec", "register"]
