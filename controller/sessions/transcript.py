"""Recording one session's transcript: spooled to local disk, streamed to the object store.

Every line goes to the local spool file first; a background task follows the spool and hands it
to ONE streamed writer of the object store (``store.writer(key)``) a part at a time. The spool is
the source of truth, so:

- appending never waits for the store: a slow or unreachable store does not stall the session,
  and memory stays at one part whatever the session prints;
- when the store fails mid-session (``Unavailable``, refused credentials, a local ``OSError``...),
  the upload is aborted and the sink goes on *degraded*: spool only. :meth:`TranscriptSink.finish`
  uploads the whole spool again if the store is back, otherwise leaves it, with a ``.done``
  marker, to :class:`~fleetops.controller.sessions.uploader.TranscriptUploader`;
- a controller crash loses nothing the spool had: the uploader stores it on the next start.

SHA-256 and size are computed over every byte appended, independently of the store; an upload
counts only when the store's own hash and size of what it received match them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from fleetops.common.errors import Conflict, FleetopsError, InternalError, InvalidInput, Unavailable
from fleetops.controller.objects.interfaces import ObjectInfo, ObjectStore, ObjectWriter
from fleetops.controller.objects.keys import validate_key
from fleetops.controller.sessions.spool import (
    DEFAULT_PART_SIZE,
    SpoolPaths,
    TranscriptInfo,
    make_spool_directory,
    upload_file,
    validate_session_id,
    write_marker,
)

log = logging.getLogger(__name__)

#: Seconds between fsyncs of the spool while a session runs (a power cut loses at most this much).
DEFAULT_FSYNC_INTERVAL = 1.0
#: Appends up to this size are written on the event loop (no fsync is ever done there).
INLINE_WRITE_MAX = 16 * 1024


class TranscriptSink:
    """Receives one session's encoded transcript lines and keeps them, come what may.

    Call :meth:`start`, then :meth:`append` for each line (or batch of whole lines) from one task
    at a time, then :meth:`finish` exactly once, however the session ended.

    Args:
        store: where finished transcripts live.
        key: the transcript's object key, e.g. ``sessions/<session-id>/transcript.cast``.
        spool_dir: the local spool directory (shared by every session of this controller).
        session_id: names the spool files.
        part_size: bytes handed to the store's writer at a time (at least S3's 5 MiB in production).
        fsync_interval: seconds between fsyncs of the spool.
        clock: monotonic seconds (replaced in tests).

    Raises:
        InvalidInput: a malformed ``key`` or ``session_id``, or a ``part_size`` that is not positive.
    """

    def __init__(
        self,
        store: ObjectStore,
        key: str,
        spool_dir: Path,
        *,
        session_id: str,
        part_size: int = DEFAULT_PART_SIZE,
        fsync_interval: float = DEFAULT_FSYNC_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if part_size <= 0:
            raise InvalidInput(f"transcript part size must be positive, not {part_size}")
        self._store = store
        self._key = validate_key(key)
        self._session_id = validate_session_id(session_id)
        self._paths = SpoolPaths(Path(spool_dir), session_id)
        self._part_size = part_size
        self._fsync_interval = fsync_interval
        self._clock = clock
        self._sha256 = hashlib.sha256()
        self._size = 0  # bytes in the spool (and in the hash)
        self._uploaded = 0  # bytes of the spool handed to the writer
        self._synced = 0  # bytes of the spool known to be on disk
        self._last_fsync = 0.0
        self._spool: int | None = None  # fd appending to the spool
        self._follower: IO[bytes] | None = None  # the upload's reading position in the spool
        self._writer: ObjectWriter | None = None
        self._degraded = False
        self._more = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._result: TranscriptInfo | None = None

    @property
    def key(self) -> str:
        return self._key

    @property
    def size(self) -> int:
        """Bytes recorded so far."""
        return self._size

    @property
    def degraded(self) -> bool:
        """True once the store failed: the transcript is only in the spool until it is uploaded later."""
        return self._degraded

    @property
    def spool_path(self) -> Path:
        return self._paths.cast

    async def start(self) -> None:
        """Create the spool files and begin the upload (a store that is down only degrades the sink).

        Raises:
            Conflict: this session already has a spool (a session id used twice).
            Unavailable: the spool directory cannot be written.
            InternalError: the sink was started already.
        """
        if self._spool is not None or self._result is not None:
            raise InternalError(f"transcript sink of session {self._session_id} started twice")
        try:
            await asyncio.to_thread(self._create_spool)
        except FileExistsError as exc:
            raise Conflict(
                f"session {self._session_id} already has a transcript spool in {self._paths.directory}",
                "session ids must be unique",
            ) from exc
        except OSError as exc:
            raise Unavailable(
                f"cannot create the transcript spool {self._paths.cast}: {exc.strerror or exc}",
                "check free space and permissions of the controller's state directory",
            ) from exc
        self._last_fsync = self._clock()
        try:
            self._writer = await self._store.writer(self._key)
        except (FleetopsError, OSError) as exc:
            await self._degrade(exc)
        self._task = asyncio.create_task(self._follow(), name=f"transcript upload {self._session_id}")

    async def append(self, data: bytes) -> None:
        """Record ``data`` (whole encoded lines): spooled at once, uploaded in the background.

        Raises:
            Unavailable: the spool cannot be written (full disk...). The transcript then ends
                before the session does: the caller should end the session rather than go on
                unrecorded.
            InternalError: the sink is not started or already finished.
        """
        if self.append_nowait(data):
            return
        try:
            await asyncio.to_thread(self._write_spool, data)
        except OSError as exc:
            raise self._spool_error(exc) from exc
        self._part_filled()

    def append_nowait(self, data: bytes) -> bool:
        """Record ``data`` now if that needs no worker thread (a few KiB, no fsync due); else False.

        A few hundred bytes into the page cache cost less than a hop to a worker thread, which would
        cost every keystroke's echo its latency; no fsync is ever done on the event loop.

        Raises:
            Unavailable, InternalError: as :meth:`append`.
        """
        if self._spool is None or self._closing:
            raise InternalError(f"transcript sink of session {self._session_id} is not recording")
        if not data:
            return True
        if len(data) > INLINE_WRITE_MAX or self._fsync_due():
            return False
        try:
            self._write_spool(data, fsync=False)
        except OSError as exc:
            raise self._spool_error(exc) from exc
        self._part_filled()
        return True

    def _spool_error(self, exc: OSError) -> Unavailable:
        return Unavailable(
            f"cannot write the transcript spool {self._paths.cast}: {exc.strerror or exc}",
            "free space in the controller's state directory",
        )

    def _part_filled(self) -> None:
        if self._writer is not None and self._size - self._uploaded >= self._part_size:
            self._more.set()

    async def finish(self) -> TranscriptInfo:
        """End the transcript: complete the upload, or leave the spool for the uploader.

        Calling it again returns the same result.

        Returns:
            SHA-256, size and whether the transcript is in the store (``stored``) or still waits
            in the spool.

        Raises:
            Unavailable: the spool cannot be synced or the marker written (the spool stays; the
                uploader treats it as a crashed session's on the next start).
            InternalError: the sink was never started.
        """
        if self._result is not None:
            return self._result
        if self._spool is None or self._task is None:
            raise InternalError(f"transcript sink of session {self._session_id} was never started")
        self._closing = True
        self._more.set()
        await self._task
        sha256, size = self._sha256.hexdigest(), self._size
        try:
            await asyncio.to_thread(self._close_spool)
        except OSError as exc:
            raise Unavailable(f"cannot sync the transcript spool {self._paths.cast}: {exc.strerror or exc}") from exc
        stored = await self._complete_upload(sha256, size)
        if not stored:
            # The store was down during the session (or the upload went wrong): one more try from
            # the spool, which holds everything, through a fresh writer.
            stored = await self._upload_spool(sha256, size)
        await asyncio.to_thread(self._close_follower)
        marker = {"session_id": self._session_id, "key": self._key, "sha256": sha256, "size": size}
        try:
            if stored:
                await asyncio.to_thread(self._paths.remove)
            else:
                await asyncio.to_thread(write_marker, self._paths.done, {**marker, "recovered": False})
                log.warning(
                    "transcript of session %s kept in %s until the object store is reachable",
                    self._session_id,
                    self._paths.cast,
                )
        except OSError as exc:
            raise Unavailable(f"cannot update the transcript spool of session {self._session_id}: {exc}") from exc
        self._result = TranscriptInfo(self._session_id, self._key, sha256, size, stored=stored)
        return self._result

    # -- spool (worker threads) -----------------------------------------------------------------
    def _create_spool(self) -> None:
        make_spool_directory(self._paths.directory)
        if self._paths.meta.exists():
            raise FileExistsError(str(self._paths.meta))
        # The key first: a spool without it could not be uploaded after a crash.
        write_marker(self._paths.meta, {"session_id": self._session_id, "key": self._key})
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        self._spool = os.open(self._paths.cast, flags, 0o600)
        self._follower = open(self._paths.cast, "rb")

    def _fsync_due(self) -> bool:
        return self._clock() - self._last_fsync >= self._fsync_interval

    def _write_spool(self, data: bytes, *, fsync: bool = True) -> None:
        assert self._spool is not None
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._spool, view) :]
        except OSError:
            # Keep the spool equal to what was hashed: a half-written line would make every later
            # upload's hash differ from the one reported.
            with contextlib.suppress(OSError):
                os.ftruncate(self._spool, self._size)
            raise
        self._sha256.update(data)
        self._size += len(data)
        if fsync and self._fsync_due():
            self._fsync()

    def _fsync(self) -> None:
        assert self._spool is not None
        size = self._size
        os.fsync(self._spool)
        self._synced = max(self._synced, size)
        self._last_fsync = self._clock()

    def _close_spool(self) -> None:
        spool, self._spool = self._spool, None
        if spool is None:
            return
        try:
            os.fsync(spool)
        finally:
            os.close(spool)

    def _close_follower(self) -> None:
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.close()

    def _read_spool(self, offset: int, length: int) -> bytes:
        assert self._follower is not None
        self._follower.seek(offset)
        return self._follower.read(length)

    # -- upload -----------------------------------------------------------------------------------
    async def _follow(self) -> None:
        """Background task: hand full parts of the spool to the writer; fsync an idle spool."""
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._more.wait(), timeout=self._fsync_interval)
            self._more.clear()
            await self._hand_over(final=False)
            if self._synced < self._size and self._clock() - self._last_fsync >= self._fsync_interval:
                # A session that went quiet: its last lines reach the disk without waiting for more.
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(self._fsync)

    async def _hand_over(self, *, final: bool) -> None:
        """Give the writer whole parts of the spool (and, when ``final``, the rest too)."""
        while self._writer is not None:
            pending = self._size - self._uploaded
            if pending == 0 or (pending < self._part_size and not final):
                return
            length = min(pending, self._part_size)
            try:
                chunk = await asyncio.to_thread(self._read_spool, self._uploaded, length)
                if len(chunk) != length:
                    raise OSError(f"the spool is shorter than recorded ({self._uploaded + len(chunk)} bytes)")
                await self._writer.write(chunk)
            except (FleetopsError, OSError) as exc:
                await self._degrade(exc)
                return
            self._uploaded += length

    async def _complete_upload(self, sha256: str, size: int) -> bool:
        if self._writer is None:
            return False
        await self._hand_over(final=True)
        writer = self._writer
        if writer is None:
            return False
        self._writer = None
        try:
            info = await writer.close()
        except (FleetopsError, OSError) as exc:
            with contextlib.suppress(Exception):
                await writer.abort()
            await self._degrade(exc)
            return False
        return self._verified(info, sha256, size)

    async def _upload_spool(self, sha256: str, size: int) -> bool:
        try:
            info = await upload_file(self._store, self._key, self._paths.cast, self._part_size)
        except (FleetopsError, OSError) as exc:
            log.info("object store still unreachable for the transcript of session %s: %s", self._session_id, exc)
            return False
        return self._verified(info, sha256, size)

    def _verified(self, info: ObjectInfo, sha256: str, size: int) -> bool:
        if info.size == size and info.sha256 == sha256:
            return True
        log.error(
            "transcript of session %s: the store received %d bytes (sha256 %s) but %d were recorded (sha256 %s)",
            self._session_id,
            info.size,
            info.sha256,
            size,
            sha256,
        )
        self._degraded = True
        return False

    async def _degrade(self, exc: BaseException) -> None:
        if not self._degraded:
            log.warning(
                "object store failed while recording session %s (%s); recording to the local spool only",
                self._session_id,
                exc,
            )
        self._degraded = True
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                await writer.abort()
