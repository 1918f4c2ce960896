"""Transcripts recorded from a real pty play in the real ``asciinema`` player.

asciinema 2.4 (the Python one) comes from PyPI: ``pip install asciinema``. CI must have it, so there
a missing player fails the run; elsewhere the tests are skipped with that hint.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleetops.agent.sessions.posix_pty import PosixTerminalFactory
from fleetops.controller.objects.local import LocalDirectoryStore
from fleetops.controller.sessions import AsciicastEncoder, TranscriptSink, TranscriptUploader
from fleetops.controller.sessions.spool import write_marker

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pseudo-terminals")

INSTALL_HINT = "install the player with: pip install asciinema  (asciinema 2.4 from PyPI)"
WAIT = 15.0
TEXT = "héllo wörld ✓"


@pytest.fixture(scope="module")
def asciinema() -> str:
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    program = shutil.which("asciinema", path=search)
    if program is None:
        if os.environ.get("CI"):
            pytest.fail(f"asciinema is not installed; {INSTALL_HINT}")
        pytest.skip(f"asciinema is not installed; {INSTALL_HINT}")
    return program


def player(asciinema: str, *args: str) -> str:
    result = subprocess.run(
        [asciinema, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        env={**os.environ, "LANG": "C.UTF-8"},
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode("utf-8")


async def record_session(store: LocalDirectoryStore, spool: Path, session_id: str) -> bytes:
    """Run a real shell command on a pty and record it as the controller will; return the stored object."""
    factory = PosixTerminalFactory()
    command = f"printf '%s\\n' '{TEXT}'; read -r line; printf 'got %s\\n' \"$line\"; stty size"
    terminal = await factory.spawn(None, command, 80, 24, "xterm-256color", {"LANG": "C.UTF-8"})
    started = time.monotonic()
    encoder = AsciicastEncoder(
        80, 24, timestamp=int(time.time()), term="xterm-256color", shell="/bin/sh", title="test", record_input=True
    )
    key = f"sessions/{session_id}/transcript.cast"
    sink = TranscriptSink(store, key, spool, session_id=session_id, part_size=256)
    await sink.start()
    await sink.append(encoder.header())
    typed = False
    seen = b""
    while chunk := await asyncio.wait_for(terminal.read(), WAIT):
        seen += chunk
        # One byte at a time: every multi-byte character is cut across events on purpose.
        for i in range(len(chunk)):
            await sink.append(encoder.output(time.monotonic() - started, chunk[i : i + 1]))
        if not typed and TEXT.encode() in seen:
            typed = True
            terminal.resize(100, 30)
            await sink.append(encoder.resize(time.monotonic() - started, 100, 30))
            answer = "ja ✓\r".encode()
            await terminal.write(answer)
            await sink.append(encoder.input(time.monotonic() - started, answer))
    assert await asyncio.wait_for(terminal.wait(), WAIT) == 0
    terminal.close()
    await sink.append(encoder.flush(time.monotonic() - started))
    info = await sink.finish()
    assert info.stored
    return await store.get(key)


async def test_a_recorded_pty_session_plays_in_asciinema(asciinema: str, tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "objects")
    cast = await record_session(store, tmp_path / "spool", "s-1")
    assert b'"r", "100x30"' in cast
    path = tmp_path / "s-1.cast"
    path.write_bytes(cast)
    output = player(asciinema, "cat", str(path))
    assert f"{TEXT}\r\n" in output  # whole characters although every byte came on its own
    assert "got ja ✓\r\n" in output
    assert "30 100\r\n" in output
    played = player(asciinema, "play", "--speed", "50", "--idle-time-limit", "0.1", str(path))
    assert TEXT in played


async def test_a_transcript_recovered_after_a_crash_plays_in_asciinema(asciinema: str, tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "objects")
    complete = await record_session(store, tmp_path / "spool", "s-2")
    # What a controller killed mid-write leaves behind: the key marker and a spool cut mid-line.
    spool = tmp_path / "crashed"
    spool.mkdir(mode=0o700)
    key = "sessions/s-3/transcript.cast"
    write_marker(spool / "s-3.json", {"session_id": "s-3", "key": key})
    cut = complete.rindex(b"\n", 0, len(complete) - 1) + 10  # inside the last line
    (spool / "s-3.cast").write_bytes(complete[:cut])
    [info] = await TranscriptUploader(store, spool).upload_pending(recover_unfinished=True)
    assert info.recovered and info.stored
    path = tmp_path / "s-3.cast"
    path.write_bytes(await store.get(key))
    assert TEXT in player(asciinema, "cat", str(path))
