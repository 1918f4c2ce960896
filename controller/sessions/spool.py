"""The local transcript spool: file layout, markers, and uploading a spooled transcript.

Every recorded session has, in the spool directory (``<state_dir>/transcripts`` by convention)::

    <session-id>.cast   the transcript as recorded so far (always written before any upload)
    <session-id>.json   {"session_id", "key"}: where it belongs in the object store; written when
                        recording starts, so a transcript left by a crash can still be uploaded
    <session-id>.done   {"session_id", "key", "sha256", "size", "recovered"}: written only when a
                        finished transcript could not be uploaded; it is the uploader's to-do entry

Files are ``0600`` and the directory ``0700``: transcripts show whatever the session showed.
Markers are written to a temporary file, fsynced and renamed into place, so a crash leaves either
the old marker or the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetops.common.errors import InvalidInput
from fleetops.common.files import fsync_directory
from fleetops.controller.objects.interfaces import ObjectInfo, ObjectStore

MiB = 1 << 20
#: Bytes handed to the object store's writer at a time; S3's smallest multipart part is 5 MiB.
DEFAULT_PART_SIZE = 5 * MiB

CAST_SUFFIX = ".cast"
META_SUFFIX = ".json"
DONE_SUFFIX = ".done"

_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class TranscriptInfo:
    """A finished transcript, for the session record and the audit event.

    Attributes:
        session_id: the session it records.
        key: its object key.
        sha256: lowercase hex SHA-256 of the whole transcript.
        size: its length in bytes.
        stored: whether it is in the object store now; ``False`` means it waits in the spool and
            :class:`~fleetops.controller.sessions.uploader.TranscriptUploader` will store it.
        recovered: it was rebuilt from the spool of a session the controller lost in a crash: it
            ends where the spool ended (a last incomplete line dropped), not at the session's end.
    """

    session_id: str
    key: str
    sha256: str
    size: int
    stored: bool
    recovered: bool = False


def validate_session_id(session_id: str) -> str:
    """Return ``session_id`` unchanged if it can name spool files.

    Raises:
        InvalidInput: it is empty, longer than 128 characters, or has characters other than
            letters, digits, ``_``, ``.`` and ``-`` (or starts with one of the last three).
    """
    if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
        raise InvalidInput(
            f"invalid session id {session_id!r} for a transcript",
            "session ids are 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit",
        )
    return session_id


@dataclass(frozen=True)
class SpoolPaths:
    """The spool files of one session."""

    directory: Path
    session_id: str

    @property
    def cast(self) -> Path:
        return self.directory / f"{self.session_id}{CAST_SUFFIX}"

    @property
    def meta(self) -> Path:
        return self.directory / f"{self.session_id}{META_SUFFIX}"

    @property
    def done(self) -> Path:
        return self.directory / f"{self.session_id}{DONE_SUFFIX}"

    def remove(self) -> None:
        """Delete the spool: transcript first, markers last, so a crash in between re-uploads
        (harmless: the object is replaced with the same bytes) rather than losing the entry."""
        for path in (self.cast, self.meta, self.done):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        fsync_directory(self.directory)


def make_spool_directory(directory: Path) -> None:
    """Create the spool directory (``0700``) if it is missing."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def write_marker(path: Path, content: dict[str, Any]) -> None:
    """Write a JSON marker atomically and durably (temp file, fsync, rename, fsync of the directory)."""
    fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(content, file, sort_keys=True)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_directory(path.parent)


def read_marker(path: Path) -> dict[str, Any]:
    """A marker's content.

    Raises:
        FileNotFoundError: there is no such marker.
        ValueError: it is not a JSON object.
    """
    content = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(content, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return content


def hash_file(path: Path, chunk_size: int = MiB) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file's content."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as file:
        while chunk := file.read(chunk_size):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def drop_incomplete_last_line(path: Path) -> None:
    """Cut the file after its last newline.

    Every transcript line is appended with one write, so only a crash mid-write leaves a partial
    line; players refuse a file whose last line is not JSON.
    """
    with open(path, "r+b") as file:
        size = file.seek(0, os.SEEK_END)
        position = size
        while position > 0:
            start = max(0, position - 64 * 1024)
            file.seek(start)
            block = file.read(position - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            position = start
        else:
            end = 0
        if end != size:
            file.truncate(end)
            file.flush()
            os.fsync(file.fileno())


async def upload_file(store: ObjectStore, key: str, path: Path, part_size: int = DEFAULT_PART_SIZE) -> ObjectInfo:
    """Upload a spooled transcript through one streamed writer, returning what the store computed.

    Raises:
        Unavailable: the store is unreachable (nothing is stored; the writer was aborted).
        Unauthenticated: the store refused our credentials.
        OSError: the spool file cannot be read.
    """
    file = await asyncio.to_thread(open, path, "rb")
    try:
        writer = await store.writer(key)
        try:
            while chunk := await asyncio.to_thread(file.read, part_size):
                await writer.write(chunk)
            return await writer.close()
        except BaseException:
            await writer.abort()
            raise
    finally:
        file.close()
