"""Unit tests of Windows sessions against a fake ``winpty`` module that records every call."""

from __future__ import annotations

import asyncio
import queue
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from fleetops.agent.sessions.interfaces import READ_CHUNK_SIZE
from fleetops.agent.sessions.windows_conpty import (
    STATUS_CONTROL_C_EXIT,
    ConptyTerminal,
    ConptyTerminalFactory,
    exit_code_from_status,
    shell_arguments,
)
from fleetops.common.errors import InternalError, InvalidInput, NotFound, PermissionDenied, Unavailable

WAIT = 10.0
POWERSHELL_PATH = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
PROGRAMS = {
    "powershell.exe": POWERSHELL_PATH,
    "cmd.exe": r"C:\Windows\System32\cmd.exe",
    "pwsh.exe": r"C:\Program Files\PowerShell\7\pwsh.exe",
    "bash.exe": r"C:\Program Files\Git\bin\bash.exe",
}
ENVIRON = {
    "SystemRoot": r"C:\Windows",
    "SYSTEMDRIVE": "C:",
    "Path": r"C:\Windows\System32",
    "USERPROFILE": r"C:\Users\fleetops",
    "AGENT_SECRET": "stays in the agent",
}


class WinptyError(Exception):
    pass


EOF = object()


class FakePTY:
    """Records calls like pywinpty's ``winpty.PTY``; reads come from a queue fed by the test."""

    instances: list[FakePTY] = []

    def __init__(self, cols: int, rows: int, backend: int | None = None) -> None:
        self.created = (cols, rows, backend)
        self.spawned: dict[str, Any] | None = None
        self.outputs: queue.Queue[object] = queue.Queue()
        self.written: list[str] = []
        self.sizes: list[tuple[int, int]] = []
        self.alive = [True]
        self.exitstatus: int | None = 0
        self.eof = False
        self.pid: int | None = 77
        self.spawn_result = True
        self.reading = threading.Event()  # set once a read has started (in the terminal's reader thread)
        FakePTY.instances.append(self)

    def spawn(self, appname: str, cmdline: str | None = None, cwd: str | None = None, env: str | None = None) -> bool:
        self.spawned = {"appname": appname, "cmdline": cmdline, "cwd": cwd, "env": env}
        return self.spawn_result

    def read(self, length: int = 1000, blocking: bool = False) -> str:
        self.reading.set()
        item = self.outputs.get(timeout=WAIT) if blocking else self.outputs.get_nowait()
        if item is EOF:
            self.eof = True
            raise WinptyError("Standard out reached EOF")
        assert isinstance(item, str)
        return item

    def write(self, text: str) -> int:
        self.written.append(text)
        return len(text)

    def set_size(self, cols: int, rows: int) -> None:
        self.sizes.append((cols, rows))

    def isalive(self) -> bool:
        return self.alive.pop(0) if len(self.alive) > 1 else self.alive[0]

    def get_exitstatus(self) -> int | None:
        return self.exitstatus

    def iseof(self) -> bool:
        return self.eof

    def finish(self) -> None:
        """End the fake process: output ends, so no reader thread stays blocked."""
        self.alive = [False]
        self.outputs.put(EOF)


class Runner:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], **kwargs: object) -> SimpleNamespace:
        self.calls.append(argv)
        return SimpleNamespace(returncode=0)


@pytest.fixture
def fake_winpty() -> Iterator[SimpleNamespace]:
    FakePTY.instances = []
    yield SimpleNamespace(PTY=FakePTY, WinptyError=WinptyError, Backend=SimpleNamespace(ConPTY=0, WinPTY=1))
    for pty in FakePTY.instances:
        pty.finish()


@pytest.fixture
def runner() -> Runner:
    return Runner()


async def ran(runner: Runner) -> None:
    """Wait for the kill, which runs in a worker thread."""
    for _ in range(1000):
        if runner.calls:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the kill did not run")


def factory(module: Any, runner: Runner | None = None, **kwargs: Any) -> ConptyTerminalFactory:
    return ConptyTerminalFactory(
        environ=ENVIRON,
        pty_module=module,
        runner=runner or Runner(),
        which=lambda name, path=None: PROGRAMS.get(name),
        poll_interval=0.01,
        **kwargs,
    )


@pytest.fixture
async def terminal(fake_winpty: SimpleNamespace, runner: Runner) -> AsyncIterator[ConptyTerminal]:
    term = await factory(fake_winpty, runner).spawn(None, None, 120, 40, "xterm-256color", {})
    yield term
    term.close()


def pty_of(terminal: ConptyTerminal) -> FakePTY:
    return FakePTY.instances[-1]


# -- launch --------------------------------------------------------------------------------------


async def test_default_session_is_windows_powershell_on_a_conpty_of_the_asked_size(
    fake_winpty: SimpleNamespace,
) -> None:
    term = await factory(fake_winpty).spawn(None, None, 120, 40, "xterm-256color", {"LANG": "C.UTF-8"})
    pty = pty_of(term)
    assert pty.created == (120, 40, 0)  # ConPTY backend
    assert pty.spawned is not None
    assert pty.spawned["appname"] == POWERSHELL_PATH
    assert pty.spawned["cmdline"] == "-NoLogo"
    assert pty.spawned["cwd"] == r"C:\Users\fleetops"
    env = pty.spawned["env"]
    assert env.endswith("\0")
    entries = dict(entry.split("=", 1) for entry in env.rstrip("\0").split("\0"))
    assert entries["TERM"] == "xterm-256color"
    assert entries["LANG"] == "C.UTF-8"
    assert entries["SystemRoot"] == r"C:\Windows"
    assert entries["PATH"] == r"C:\Windows\System32"  # the canonical spelling, found case-insensitively
    assert "AGENT_SECRET" not in entries
    assert term.pid == 77
    term.close()


async def test_a_path_with_spaces_is_quoted_as_the_first_token(fake_winpty: SimpleNamespace) -> None:
    term = await factory(fake_winpty, shell="pwsh.exe").spawn(None, "Get-Date", 80, 24, "xterm", {})
    assert pty_of(term).spawned == {
        "appname": r'"C:\Program Files\PowerShell\7\pwsh.exe"',
        "cmdline": "-NoLogo -Command Get-Date",
        "cwd": r"C:\Users\fleetops",
        "env": pty_of(term).spawned["env"],  # type: ignore[index]
    }
    term.close()


@pytest.mark.parametrize(
    ("shell", "command", "arguments"),
    [
        ("powershell.exe", None, "-NoLogo"),
        ("powershell.exe", 'Write-Output "a b"', '-NoLogo -Command "Write-Output \\"a b\\""'),
        (r"C:\Program Files\PowerShell\7\pwsh.exe", "Get-Date", "-NoLogo -Command Get-Date"),
        ("cmd.exe", None, None),
        ("CMD", 'dir "C:\\Program Files"', '/s /c "dir "C:\\Program Files""'),
        ("bash.exe", None, None),
        ("bash.exe", "ls -l", '-c "ls -l"'),
    ],
)
def test_shell_arguments_by_kind_of_shell(shell: str, command: str | None, arguments: str | None) -> None:
    assert shell_arguments(shell, command) == arguments


async def test_sessions_as_another_user_are_refused(fake_winpty: SimpleNamespace) -> None:
    with pytest.raises(PermissionDenied, match="not supported on Windows") as caught:
        await factory(fake_winpty).spawn("Administrator", None, 80, 24, "xterm", {})
    assert "omit the user" in caught.value.hint
    assert FakePTY.instances == []


async def test_a_missing_shell_is_not_found(fake_winpty: SimpleNamespace) -> None:
    with pytest.raises(NotFound, match="nu.exe not found"):
        await factory(fake_winpty, shell="nu.exe").spawn(None, None, 80, 24, "xterm", {})


@pytest.mark.parametrize(
    ("cols", "rows", "term", "env"),
    [(0, 24, "xterm", {}), (80, 40000, "xterm", {}), (80, 24, "", {}), (80, 24, "xterm", {"term": "x"})],
)
async def test_malformed_requests_are_refused(
    fake_winpty: SimpleNamespace, cols: int, rows: int, term: str, env: dict[str, str]
) -> None:
    with pytest.raises(InvalidInput):
        await factory(fake_winpty).spawn(None, None, cols, rows, term, env)


async def test_a_failed_spawn_is_unavailable(fake_winpty: SimpleNamespace) -> None:
    class FailingPTY(FakePTY):
        def spawn(self, *args: Any, **kwargs: Any) -> bool:
            raise WinptyError("CreateProcessW failed")

    module = SimpleNamespace(PTY=FailingPTY, WinptyError=WinptyError)
    with pytest.raises(Unavailable, match="CreateProcessW failed"):
        await factory(module).spawn(None, None, 80, 24, "xterm", {})


async def test_without_pywinpty_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "winpty", None)  # makes "import winpty" raise ImportError
    with pytest.raises(InternalError, match="need pywinpty") as caught:
        await factory(None).spawn(None, None, 80, 24, "xterm", {})
    assert "pip install pywinpty" in caught.value.hint


# -- I/O ----------------------------------------------------------------------------------------------


async def test_output_is_utf8_bytes(terminal: ConptyTerminal) -> None:
    pty_of(terminal).outputs.put("PS C:\\> héllo ✓\r\n")
    assert await asyncio.wait_for(terminal.read(), WAIT) == "PS C:\\> héllo ✓\r\n".encode()


async def test_output_comes_in_chunks_of_at_most_64_kib(terminal: ConptyTerminal) -> None:
    pty_of(terminal).outputs.put("x" * (READ_CHUNK_SIZE + 10))
    assert len(await asyncio.wait_for(terminal.read(), WAIT)) == READ_CHUNK_SIZE
    assert len(await asyncio.wait_for(terminal.read(), WAIT)) == 10


async def test_an_empty_read_of_a_live_console_is_retried(terminal: ConptyTerminal) -> None:
    pty = pty_of(terminal)
    pty.outputs.put("")
    pty.outputs.put("later")
    assert await asyncio.wait_for(terminal.read(), WAIT) == b"later"


async def test_output_ends_when_the_binding_reports_eof(terminal: ConptyTerminal) -> None:
    pty = pty_of(terminal)
    pty.outputs.put("bye\r\n")
    pty.outputs.put(EOF)
    assert await asyncio.wait_for(terminal.read(), WAIT) == b"bye\r\n"
    assert await asyncio.wait_for(terminal.read(), WAIT) == b""
    assert await terminal.read() == b""


async def test_a_read_error_of_a_live_console_is_unavailable(terminal: ConptyTerminal) -> None:
    pty = pty_of(terminal)
    original = pty.read

    def failing_read(length: int = 1000, blocking: bool = False) -> str:
        pty.read = original  # type: ignore[method-assign]
        raise WinptyError("pipe broken")

    pty.read = failing_read  # type: ignore[method-assign]
    with pytest.raises(Unavailable, match="pipe broken"):
        await asyncio.wait_for(terminal.read(), WAIT)


async def test_input_is_decoded_from_utf8_even_when_split(terminal: ConptyTerminal) -> None:
    pty = pty_of(terminal)
    encoded = "é\r".encode()
    await terminal.write(encoded[:1])  # half a character: held back
    await terminal.write(encoded[1:])
    await terminal.write(b"\x03")
    assert pty.written == ["é\r", "\x03"]


async def test_resize_resizes_the_pseudo_console(terminal: ConptyTerminal) -> None:
    terminal.resize(100, 30)
    assert pty_of(terminal).sizes == [(100, 30)]
    with pytest.raises(InvalidInput):
        terminal.resize(100, 0)


# -- end of the session --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exit_code"), [(0, 0), (3, 3), (STATUS_CONTROL_C_EXIT, 130), (0xC0000005, 0xC0000005), (None, -1)]
)
async def test_wait_maps_the_exit_status(terminal: ConptyTerminal, status: int | None, exit_code: int) -> None:
    pty = pty_of(terminal)
    pty.alive = [True, True, False]
    pty.exitstatus = status
    assert await asyncio.wait_for(terminal.wait(), WAIT) == exit_code


async def test_terminate_kills_the_process_tree_and_reports_a_hangup(terminal: ConptyTerminal, runner: Runner) -> None:
    terminal.terminate()
    terminal.terminate()  # once is enough
    pty = pty_of(terminal)
    pty.alive = [False]
    pty.exitstatus = 1  # what taskkill /F leaves
    assert await asyncio.wait_for(terminal.wait(), WAIT) == 129
    await ran(runner)
    assert runner.calls == [["taskkill", "/T", "/F", "/PID", "77"]]


async def test_close_ends_a_running_session_and_a_pending_read(terminal: ConptyTerminal, runner: Runner) -> None:
    read = asyncio.ensure_future(terminal.read())
    assert await asyncio.to_thread(pty_of(terminal).reading.wait, WAIT)  # the read waits for output
    assert not read.done()
    terminal.close()
    assert await asyncio.wait_for(read, WAIT) == b""
    await terminal.write(b"dropped")
    assert pty_of(terminal).written == []
    await ran(runner)
    assert runner.calls == [["taskkill", "/T", "/F", "/PID", "77"]]


async def test_close_after_exit_kills_nothing(terminal: ConptyTerminal, runner: Runner) -> None:
    pty_of(terminal).alive = [False]
    await asyncio.wait_for(terminal.wait(), WAIT)
    terminal.close()
    assert runner.calls == []  # terminate() was not called: there is no kill to wait for


def test_exit_status_mapping() -> None:
    assert exit_code_from_status(5) == 5
    assert exit_code_from_status(5, terminated=True) == 129
