"""TranscriptUploader: finished spools after the store comes back, and spools a crash left unfinished."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from fleetops.controller.sessions.spool import TranscriptInfo, write_marker
from fleetops.controller.sessions.transcript import TranscriptSink
from fleetops.controller.sessions.uploader import TranscriptUploader

HEADER = b'{"version": 2, "width": 80, "height": 24, "timestamp": 1700000000, "env": {}}\n'
LINES = HEADER + b'[0.100000, "o", "hello\\r\\n"]\n[0.200000, "o", "world\\r\\n"]\n'


def spool_files(spool_dir: Path) -> list[str]:
    return sorted(p.name for p in spool_dir.iterdir()) if spool_dir.exists() else []


def crashed_session(spool_dir: Path, session_id: str, content: bytes) -> str:
    """What a controller killed mid-session leaves: the key marker and the spool, no ``.done``."""
    spool_dir.mkdir(mode=0o700, exist_ok=True)
    key = f"sessions/{session_id}/transcript.cast"
    write_marker(spool_dir / f"{session_id}.json", {"session_id": session_id, "key": key})
    (spool_dir / f"{session_id}.cast").write_bytes(content)
    return key


async def finished_while_down(store: Any, spool_dir: Path, session_id: str, content: bytes) -> TranscriptInfo:
    store.down = True
    recorder = TranscriptSink(store, f"sessions/{session_id}/transcript.cast", spool_dir, session_id=session_id)
    await recorder.start()
    await recorder.append(content)
    info = await recorder.finish()
    assert not info.stored
    store.down = False
    return info


async def test_nothing_to_do_without_a_spool_directory(store: Any, spool_dir: Path) -> None:
    assert await TranscriptUploader(store, spool_dir).upload_pending(recover_unfinished=True) == []


async def test_a_finished_transcript_is_uploaded_once_the_store_is_back(store: Any, spool_dir: Path) -> None:
    reported = await finished_while_down(store, spool_dir, "s-1", LINES)
    uploader = TranscriptUploader(store, spool_dir)
    store.down = True
    assert await uploader.upload_pending() == []  # still down: everything stays
    assert spool_files(spool_dir) == ["s-1.cast", "s-1.done", "s-1.json"]
    store.down = False
    stored = await uploader.upload_pending()
    assert stored == [TranscriptInfo("s-1", reported.key, reported.sha256, reported.size, stored=True)]
    assert await store.get(reported.key) == LINES
    assert spool_files(spool_dir) == []
    assert await uploader.upload_pending() == []


async def test_a_crashed_sessions_spool_is_uploaded_as_it_is_at_start(store: Any, spool_dir: Path) -> None:
    # The controller died while writing a line: the spool ends in half of it.
    key = crashed_session(spool_dir, "s-2", LINES + b'[0.300000, "o", "unfini')
    uploader = TranscriptUploader(store, spool_dir)
    assert await uploader.upload_pending() == []  # not without asking: it could be a live session
    assert spool_files(spool_dir) == ["s-2.cast", "s-2.json"]
    stored = await uploader.upload_pending(recover_unfinished=True)
    assert stored == [
        TranscriptInfo("s-2", key, hashlib.sha256(LINES).hexdigest(), len(LINES), stored=True, recovered=True)
    ]
    assert await store.get(key) == LINES  # complete lines only, so players accept it
    assert spool_files(spool_dir) == []


async def test_a_recovered_transcript_waits_for_the_store_with_its_hash_fixed(store: Any, spool_dir: Path) -> None:
    crashed_session(spool_dir, "s-3", LINES)
    uploader = TranscriptUploader(store, spool_dir)
    store.down = True
    assert await uploader.upload_pending(recover_unfinished=True) == []
    done = json.loads((spool_dir / "s-3.done").read_text())
    assert done["recovered"] is True
    assert done["sha256"] == hashlib.sha256(LINES).hexdigest()
    store.down = False
    [info] = await uploader.upload_pending()  # a later pass, without recovery, finishes it
    assert info.recovered and info.stored


async def test_a_crash_before_the_first_line_leaves_an_empty_transcript_at_most(store: Any, spool_dir: Path) -> None:
    crashed_session(spool_dir, "s-4", b"")
    (spool_dir / "s-4.cast").unlink()  # died between the key marker and the spool: nothing to store
    crashed_session(spool_dir, "s-5", b'{"version": 2, "wid')  # died inside the header: stored empty
    assert await TranscriptUploader(store, spool_dir).upload_pending(recover_unfinished=True) == [
        TranscriptInfo("s-5", "sessions/s-5/transcript.cast", hashlib.sha256(b"").hexdigest(), 0, True, True)
    ]
    assert spool_files(spool_dir) == []


async def test_a_spool_changed_after_finishing_is_set_aside(store: Any, spool_dir: Path) -> None:
    reported = await finished_while_down(store, spool_dir, "s-6", LINES)
    with open(spool_dir / "s-6.cast", "ab") as file:
        file.write(b"tampered\n")
    uploader = TranscriptUploader(store, spool_dir)
    assert await uploader.upload_pending(recover_unfinished=True) == []
    assert spool_files(spool_dir) == ["s-6.cast", "s-6.corrupt", "s-6.json"]
    assert await uploader.upload_pending(recover_unfinished=True) == []  # not retried, not "recovered"
    assert reported.sha256 != hashlib.sha256((spool_dir / "s-6.cast").read_bytes()).hexdigest()


async def test_an_unreadable_marker_is_left_alone(store: Any, spool_dir: Path) -> None:
    await finished_while_down(store, spool_dir, "s-7", LINES)
    (spool_dir / "s-7.done").write_text("{not json")
    await finished_while_down(store, spool_dir, "s-8", LINES)
    stored = await TranscriptUploader(store, spool_dir).upload_pending()
    assert [info.session_id for info in stored] == ["s-8"]
    assert spool_files(spool_dir) == ["s-7.cast", "s-7.done", "s-7.json"]


async def test_a_marker_whose_spool_is_gone_is_cleaned_up(store: Any, spool_dir: Path) -> None:
    await finished_while_down(store, spool_dir, "s-9", LINES)
    (spool_dir / "s-9.cast").unlink()  # deleted after an upload, then the controller stopped
    assert await TranscriptUploader(store, spool_dir).upload_pending() == []
    assert spool_files(spool_dir) == []


async def test_run_recovers_at_start_and_reports_each_stored_transcript(store: Any, spool_dir: Path) -> None:
    crashed_session(spool_dir, "s-10", LINES)
    stored: list[TranscriptInfo] = []
    arrived = asyncio.Event()

    async def on_stored(info: TranscriptInfo) -> None:
        stored.append(info)
        arrived.set()

    task = asyncio.create_task(TranscriptUploader(store, spool_dir).run(interval=0.01, on_stored=on_stored))
    await asyncio.wait_for(arrived.wait(), 10)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [(info.session_id, info.recovered) for info in stored] == [("s-10", True)]


async def test_a_transcript_the_store_cannot_take_does_not_hold_up_the_others(store: Any, spool_dir: Path) -> None:
    await finished_while_down(store, spool_dir, "s-11", LINES)
    done = json.loads((spool_dir / "s-11.done").read_text())
    write_marker(spool_dir / "s-11.done", {**done, "key": "../outside"})  # a key no store accepts
    await finished_while_down(store, spool_dir, "s-12", LINES)
    stored = await TranscriptUploader(store, spool_dir).upload_pending()
    assert [info.session_id for info in stored] == ["s-12"]
    assert "s-11.done" in spool_files(spool_dir)
