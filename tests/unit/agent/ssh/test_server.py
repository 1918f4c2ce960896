"""The SSH server behind a Terminal, driven by a real asyncssh client over a bridged socket pair."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import pwd
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fleetops.agent.sessions.posix_pty import PosixTerminalFactory
from fleetops.agent.ssh import SshServerFactory, SshSetup, SshTerminal
from fleetops.agent.ssh.channels import SFTP_SERVER_PATHS
from fleetops.common.errors import InvalidInput
from fleetops.common.ssh import asyncssh
from fleetops.v1 import session_pb2

pytestmark = pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="runs as root on POSIX")


HOST_NAME = "host-1"
OPERATOR = "alice@example.com"


@dataclass
class Fleet:
    """A fleet's SSH CA and a host key it certified."""

    ca: asyncssh.SSHKey
    host_key: asyncssh.SSHKey
    host_certificate: str

    def ca_line(self) -> str:
        return self.ca.export_public_key("openssh").decode().strip()

    def setup(self, login: str = "", operator: str = OPERATOR, **rights: Any) -> SshSetup:
        """The setup of a session; file transfer granted unless ``rights`` say otherwise."""
        return SshSetup(self.host_certificate, (self.ca_line(),), operator, login, **{"file_transfer": True, **rights})

    def user_credentials(
        self,
        login: str,
        key_id: str = OPERATOR,
        valid_before: int | None = None,
        valid_after: int = 0,
        ca: asyncssh.SSHKey | None = None,
        principals: list[str] | None = None,
    ) -> tuple[asyncssh.SSHKey, asyncssh.SSHCertificate]:
        """A user key and a certificate of it, used to log in as ``login`` (by this CA unless ``ca``
        is given). As the controller makes them, its one principal is the operator (``key_id``)."""
        key = asyncssh.generate_private_key("ssh-ed25519")
        certificate = (ca or self.ca).generate_user_certificate(
            key,
            key_id,
            principals=principals if principals is not None else [key_id],
            valid_after=valid_after,
            valid_before=valid_before if valid_before is not None else int(time.time()) + 3600,
        )
        return key, certificate


@pytest.fixture
def fleet() -> Fleet:
    ca = asyncssh.generate_private_key("ssh-ed25519")
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    certificate = ca.generate_host_certificate(host_key, HOST_NAME, principals=[HOST_NAME])
    return Fleet(ca, host_key, certificate.export_certificate().decode())


def own_account() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


@dataclass
class Bridge:
    """A terminal and the socket a client speaks on, pumped to and from the terminal's read/write."""

    terminal: SshTerminal
    client_socket: socket.socket
    pumps: list[asyncio.Task[None]]
    activity: list[session_pb2.SessionActivity]  # what the terminal reported besides the SSH bytes

    def audits(self, action: str) -> list[dict[str, Any]]:
        return [json.loads(a.audit.details_json) for a in self.activity if a.audit.action == action]

    def recorded(self) -> bytes:
        return b"".join(a.terminal_output for a in self.activity if a.WhichOneof("event") == "terminal_output")

    async def close(self) -> int:
        self.terminal.close()
        status = await self.terminal.wait()
        for pump in self.pumps:
            pump.cancel()
        await asyncio.gather(*self.pumps, return_exceptions=True)
        self.client_socket.close()
        return status


async def bridge_to(terminal: SshTerminal) -> Bridge:
    """Connect a fresh socket pair's one end to ``terminal``; the other end is for the client."""
    client_socket, near = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=near)

    async def to_terminal() -> None:
        while data := await reader.read(65536):
            await terminal.write(data)
        terminal.terminate()  # the client hung up, as the session runner does when its stream ends

    activity: list[session_pb2.SessionActivity] = []

    async def from_terminal() -> None:
        try:
            while data := await terminal.read():
                if isinstance(data, session_pb2.SessionActivity):
                    activity.append(data)
                    continue
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    pumps = [asyncio.create_task(to_terminal()), asyncio.create_task(from_terminal())]
    return Bridge(terminal, client_socket, pumps, activity)


@contextlib.asynccontextmanager
async def served(fleet: Fleet, login: str = "", operator: str = OPERATOR, **rights: Any) -> AsyncIterator[Bridge]:
    """A running SSH server factory's terminal, bridged; closed and awaited at the end."""
    factory = SshServerFactory(fleet.setup(login, operator, **rights), fleet.host_key, PosixTerminalFactory())
    terminal = await factory.spawn(login, None, 80, 24, "xterm", {})
    bridge = await bridge_to(terminal)
    try:
        yield bridge
    finally:
        await bridge.close()


def client_options(
    fleet: Fleet, credentials: tuple[asyncssh.SSHKey, asyncssh.SSHCertificate] | asyncssh.SSHKey, username: str
) -> dict[str, object]:
    return {
        "host": HOST_NAME,
        "username": username,
        "client_keys": [credentials],
        "known_hosts": ([], [fleet.ca.convert_to_public()], []),
        "agent_path": None,
        "config": None,
        "preferred_auth": "publickey",
    }


@contextlib.asynccontextmanager
async def connected(
    bridge: Bridge, fleet: Fleet, credentials: tuple[asyncssh.SSHKey, asyncssh.SSHCertificate], username: str
) -> AsyncIterator[asyncssh.SSHClientConnection]:
    conn = await asyncssh.connect(sock=bridge.client_socket, **client_options(fleet, credentials, username))
    try:
        yield conn
    finally:
        conn.close()
        await conn.wait_closed()


async def test_exec_without_pty_reports_stdout_stderr_and_exit_status(fleet: Fleet) -> None:
    login = own_account()
    async with served(fleet, login) as bridge, connected(bridge, fleet, fleet.user_credentials(login), login) as conn:
        result = await conn.run("echo out; echo err >&2; exit 3")
    assert (result.stdout, result.stderr, result.exit_status) == ("out\n", "err\n", 3)


async def test_exec_with_pty_runs_on_a_terminal_of_the_requested_size(fleet: Fleet) -> None:
    login = own_account()
    async with served(fleet, login) as bridge, connected(bridge, fleet, fleet.user_credentials(login), login) as conn:
        result = await conn.run("tty; stty size; exit 4", term_type="xterm", term_size=(100, 30))
    assert isinstance(result.stdout, str)
    assert "/dev/pts/" in result.stdout
    assert "30 100" in result.stdout
    assert result.exit_status == 4


async def test_interactive_shell_with_pty_takes_input_and_window_changes(fleet: Fleet) -> None:
    login = own_account()
    async with served(fleet, login) as bridge, connected(bridge, fleet, fleet.user_credentials(login), login) as conn:
        process = await conn.create_process(term_type="xterm", term_size=(80, 24), env={"LANG": "C.UTF-8"})
        process.change_terminal_size(120, 40)
        process.stdin.write("stty size; echo lang=$LANG; exit 5\n")
        result = await process.wait()
    assert isinstance(result.stdout, str)
    assert "40 120" in result.stdout
    assert "lang=C.UTF-8" in result.stdout
    assert result.exit_status == 5
    # The terminal is recorded for the controller: its type and size, then what it printed.
    opened = [a.terminal_opened for a in bridge.activity if a.WhichOneof("event") == "terminal_opened"]
    assert [(o.term, o.size.cols, o.size.rows) for o in opened] == [("xterm", 80, 24)]
    assert b"lang=C.UTF-8" in bridge.recorded()
    assert any(a.terminal_resized.cols == 120 for a in bridge.activity if a.WhichOneof("event") == "terminal_resized")


async def test_environment_passes_only_locale_and_time_zone(fleet: Fleet) -> None:
    login = own_account()
    async with served(fleet, login) as bridge, connected(bridge, fleet, fleet.user_credentials(login), login) as conn:
        result = await conn.run(
            'echo "$TZ|$LC_ALL|$EVIL|$PATH"',
            env={"TZ": "UTC", "LC_ALL": "C", "EVIL": "1", "PATH": "/nowhere"},
        )
    assert result.stdout == "UTC|C||/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"


async def test_sftp_put_get_and_listdir_as_the_agents_own_account(fleet: Fleet, tmp_path: Path) -> None:
    login = own_account()
    local = tmp_path / "local.txt"
    local.write_bytes(b"payload\n" * 1000)
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    async with served(fleet, login) as bridge, connected(bridge, fleet, fleet.user_credentials(login), login) as conn:
        async with conn.start_sftp_client() as sftp:
            await sftp.put(str(local), str(remote_dir / "copy.txt"))
            names = await sftp.listdir(str(remote_dir))
            await sftp.get(str(remote_dir / "copy.txt"), str(tmp_path / "back.txt"))
            home = await sftp.realpath(".")
    assert sorted(names) == [".", "..", "copy.txt"] or sorted(names) == ["copy.txt"]
    assert (tmp_path / "back.txt").read_bytes() == local.read_bytes()
    assert home == pwd.getpwnam(login).pw_dir
    # Each file that passed is an audit note: path, direction, size, and its digest (whole file).
    digest = hashlib.sha256(local.read_bytes()).hexdigest()
    notes = {(n["path"], n["direction"]): n for n in bridge.audits("file.transfer")}
    upload, download = (
        notes[(str(remote_dir / "copy.txt"), "upload")],
        notes[(str(remote_dir / "copy.txt"), "download")],
    )
    assert upload["size"] == download["size"] == 8000 and upload["sha256"] == download["sha256"] == digest
    assert upload["login"] == login


def _other_account() -> str | None:
    """A local account other than the agent's that has a real shell and home, if the host has one."""
    for entry in pwd.getpwall():
        if entry.pw_uid == os.geteuid() or entry.pw_shell.endswith(("nologin", "false", "sync")):
            continue
        if os.path.isdir(entry.pw_dir) and os.path.exists(entry.pw_shell):
            return entry.pw_name
    return None


OTHER_ACCOUNT = _other_account()


@pytest.mark.skipif(OTHER_ACCOUNT is None, reason="no second account with a shell on this host")
async def test_exec_as_another_account_runs_as_that_account(fleet: Fleet) -> None:
    login = OTHER_ACCOUNT or ""
    async with served(fleet, login) as bridge, connected(bridge, fleet, fleet.user_credentials(login), login) as conn:
        result = await conn.run("id -un; pwd")
    assert result.stdout == f"{login}\n{pwd.getpwnam(login).pw_dir}\n"
    assert result.exit_status == 0


@pytest.mark.skipif(OTHER_ACCOUNT is None, reason="no second account with a shell on this host")
async def test_sftp_as_another_account_never_runs_in_the_agent(fleet: Fleet, tmp_path: Path) -> None:
    login = OTHER_ACCOUNT or ""
    has_sftp_server = any(os.access(path, os.X_OK) for path in SFTP_SERVER_PATHS)
    async with served(fleet, login) as bridge, connected(bridge, fleet, fleet.user_credentials(login), login) as conn:
        if has_sftp_server:
            async with conn.start_sftp_client() as sftp:
                home = await sftp.realpath(".")
            assert home == pwd.getpwnam(login).pw_dir
        else:
            process = await conn.create_process(subsystem="sftp", encoding=None)
            result = await process.wait()
            assert result.exit_status == 1
            assert isinstance(result.stderr, bytes)
            assert b"no sftp-server" in result.stderr


@pytest.mark.parametrize(
    ("case", "expected_log"),
    [
        ("wrong key id", "key id"),
        ("operator not a principal", "principals"),
        ("expired", "not valid now"),
        ("wrong username", "only"),
        ("other CA", "not signed by a fleet SSH user CA"),
        ("plain key", "plain keys are not accepted"),
    ],
)
async def test_logins_that_break_a_rule_are_refused_and_logged(
    fleet: Fleet, caplog: pytest.LogCaptureFixture, case: str, expected_log: str
) -> None:
    login = own_account()
    username = login
    credentials: tuple[asyncssh.SSHKey, asyncssh.SSHCertificate] | asyncssh.SSHKey
    if case == "wrong key id":
        credentials = fleet.user_credentials(login, key_id="mallory@example.com")
    elif case == "operator not a principal":  # e.g. a certificate naming logins, as another CA's would
        credentials = fleet.user_credentials(login, principals=[login])
    elif case == "expired":
        now = int(time.time())
        credentials = fleet.user_credentials(login, valid_after=now - 7200, valid_before=now - 3600)
    elif case == "wrong username":
        username = "daemon"
        credentials = fleet.user_credentials(username)
    elif case == "other CA":
        credentials = fleet.user_credentials(login, ca=asyncssh.generate_private_key("ssh-ed25519"))
    else:
        credentials = asyncssh.generate_private_key("ssh-ed25519")
    async with served(fleet, login) as bridge:
        with pytest.raises(asyncssh.PermissionDenied):
            await asyncssh.connect(sock=bridge.client_socket, **client_options(fleet, credentials, username))
        assert await bridge.terminal.wait() == 0
    refusals = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert any("refused" in message and expected_log in message for message in refusals), refusals


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 that sends back what it reads; yields its port."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_forwards_reach_the_destinations_the_setup_grants_and_no_others(fleet: Fleet) -> None:
    login = own_account()
    async with echo_server() as port:
        rights = {"forward_to": (f"127.0.0.1:{port}", "*.internal:*"), "forward_denied": ("db.internal:*",)}
        async with (
            served(fleet, login, **rights) as bridge,
            connected(bridge, fleet, fleet.user_credentials(login), login) as conn,
        ):
            reader, writer = await conn.open_connection("127.0.0.1", port)
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
            writer.close()
            await writer.wait_closed()
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.open_connection("127.0.0.1", port + 1 if port < 65535 else port - 1)
            with pytest.raises(asyncssh.ChannelOpenError):  # named by forward_to, but a deny names it too
                await conn.open_connection("db.internal", 5432)
            with pytest.raises(asyncssh.ChannelListenError):  # -R needs forward_remote
                await conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1", port)
    # The forward that opened is an audit note once it ended: where to, bytes each way.
    [note] = bridge.audits("ssh.forward")
    assert note["destination"] == f"127.0.0.1:{port}" and note["direction"] == "local"
    assert note["bytes_to_destination"] == note["bytes_from_destination"] == 4


async def test_sftp_is_refused_without_file_transfer(fleet: Fleet) -> None:
    login = own_account()
    async with (
        served(fleet, login, file_transfer=False) as bridge,
        connected(bridge, fleet, fleet.user_credentials(login), login) as conn,
    ):
        with pytest.raises(asyncssh.ChannelOpenError):
            async with conn.start_sftp_client():
                pass
        assert (await conn.run("echo still here")).stdout == "still here\n"


async def test_local_port_forwarding_is_refused(fleet: Fleet) -> None:
    login = own_account()
    async with served(fleet, login) as bridge, connected(bridge, fleet, fleet.user_credentials(login), login) as conn:
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.create_connection(asyncssh.SSHTCPSession, "127.0.0.1", 22)
        with pytest.raises(asyncssh.ChannelListenError):
            await conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1", 22)
        assert (await conn.run("echo still here")).stdout == "still here\n"


async def test_terminate_disconnects_and_wait_returns_after_sessions_end(fleet: Fleet) -> None:
    login = own_account()
    async with served(fleet, login) as bridge, connected(bridge, fleet, fleet.user_credentials(login), login) as conn:
        process = await conn.create_process("echo started; exec sleep 600")
        assert await process.stdout.readline() == "started\n"
        pty_process = await conn.create_process("echo ready; exec sleep 600", term_type="xterm")
        assert "ready" in await pty_process.stdout.readline()
        bridge.terminal.terminate()
        bridge.terminal.terminate()
        assert await bridge.terminal.wait() == 0
        await conn.wait_closed()
    sleepers = [pid for pid in os.listdir("/proc") if pid.isdigit() and _cmdline(pid) == b"sleep\x00600\x00"]
    assert sleepers == []


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.parametrize(
    "garbage",
    [b"GET / HTTP/1.1\r\n\r\n" + bytes(range(256)) * 40, b"SSH-2.0-x\r\n" + b"\xff" * 70000],
    ids=["not ssh", "bad packets"],
)
async def test_garbage_from_the_client_ends_the_connection_cleanly(fleet: Fleet, garbage: bytes) -> None:
    factory = SshServerFactory(fleet.setup(), fleet.host_key, PosixTerminalFactory())
    terminal = await factory.spawn("", None, 80, 24, "xterm", {})
    try:
        await terminal.write(garbage)
        while await terminal.read():
            pass
        assert await terminal.wait() == 0
        await terminal.write(b"more")  # dropped
        assert await terminal.read() == b""
    finally:
        terminal.close()
        terminal.close()
    assert await terminal.wait() == 0


async def test_close_before_any_client_byte_ends_the_server(fleet: Fleet) -> None:
    factory = SshServerFactory(fleet.setup(), fleet.host_key, PosixTerminalFactory())
    terminal = await factory.spawn(None, None, 80, 24, "xterm", {})
    assert terminal.pid == os.getpid()
    assert terminal.shell == "ssh"
    terminal.close()
    assert await terminal.read() == b""
    assert await terminal.wait() == 0


@pytest.mark.parametrize(
    "change",
    [
        {"host_certificate": "ssh-ed25519-cert-v01@openssh.com AAAAnotbase64"},
        {"user_ca_keys": ("ssh-ed25519 garbage",)},
        {"user_ca_keys": ()},
    ],
    ids=["bad host certificate", "bad CA key", "no CA key"],
)
async def test_spawn_refuses_a_setup_that_does_not_parse(fleet: Fleet, change: dict[str, object]) -> None:
    setup = dataclasses.replace(fleet.setup(), **change)  # type: ignore[arg-type]
    factory = SshServerFactory(setup, fleet.host_key, PosixTerminalFactory())
    with pytest.raises(InvalidInput):
        await factory.spawn("", None, 80, 24, "xterm", {})


async def test_spawn_refuses_a_host_certificate_of_another_key(fleet: Fleet) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    factory = SshServerFactory(fleet.setup(), other, PosixTerminalFactory())
    with pytest.raises(InvalidInput, match="another key"):
        await factory.spawn("", None, 80, 24, "xterm", {})
