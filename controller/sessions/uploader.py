"""Uploading transcripts that the object store could not take when their session ended.

Two kinds of spooled transcripts wait in the spool directory (layout in
:mod:`~fleetops.controller.sessions.spool`):

- **finished**: the session ended while the store was down; a ``.done`` marker holds the SHA-256
  and size the session reported. Uploaded when the store is back, verified against the marker.
- **unfinished**: the controller crashed (or was killed) during the session, so nobody finished
  the transcript. On the next start these are uploaded *as they are*: an incomplete last line is
  cut (players refuse it), the SHA-256 and size of what is left are computed and written to a
  ``.done`` marker first (``"recovered": true``), then it is uploaded like a finished one. The
  session's record had no hash yet: the :class:`TranscriptInfo` returned for it is the one to
  record and audit, with ``recovered`` set because the transcript ends where the crash cut it.

A spool is deleted only after the store confirmed a complete object whose SHA-256 and size, as
computed by the store's writer while receiving it, equal the marker's.

Unfinished spools are only looked at when asked (``recover_unfinished=True``): a live session's
spool is unfinished too. Ask only at controller start, before sessions are accepted.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from fleetops.common.errors import AuthError, FleetopsError, Unavailable
from fleetops.controller.objects.interfaces import ObjectStore
from fleetops.controller.sessions.spool import (
    DEFAULT_PART_SIZE,
    DONE_SUFFIX,
    META_SUFFIX,
    SpoolPaths,
    TranscriptInfo,
    drop_incomplete_last_line,
    hash_file,
    read_marker,
    upload_file,
    write_marker,
)

log = logging.getLogger(__name__)

#: Seconds between two passes over the spool directory while the controller runs.
DEFAULT_UPLOAD_INTERVAL = 60.0
#: Suffix a spool's marker gets when its transcript no longer matches it: kept for a person to look at.
CORRUPT_SUFFIX = ".corrupt"


class TranscriptUploader:
    """Stores the transcripts left in the spool directory, then deletes them there.

    Args:
        store: the object store.
        spool_dir: the spool directory the controller's ``TranscriptSink``\\ s write to.
        part_size: bytes handed to the store's writer at a time.
    """

    def __init__(self, store: ObjectStore, spool_dir: Path, *, part_size: int = DEFAULT_PART_SIZE) -> None:
        self._store = store
        self._spool_dir = Path(spool_dir)
        self._part_size = part_size

    async def recover_unfinished(self) -> None:
        """Mark every unfinished spool (a session the controller lost in a crash) ready for upload.

        Only while no session is recording: at controller start, before sessions are accepted.
        Local work only (no store access), so it is quick even when the store is down.
        """
        if not await asyncio.to_thread(self._spool_dir.is_dir):
            return
        for paths in await asyncio.to_thread(self._spools, META_SUFFIX):
            if not await asyncio.to_thread(self._has_marker, paths):
                await asyncio.to_thread(self._mark_recovered, paths)

    async def upload_pending(self, *, recover_unfinished: bool = False) -> list[TranscriptInfo]:
        """Upload every finished spooled transcript (and, when asked, every unfinished one).

        Stops at the first upload the store refuses as unavailable: the rest waits for the next pass.

        Args:
            recover_unfinished: first :meth:`recover_unfinished` (only while no session is recording).

        Returns:
            The transcripts stored by this pass, for their session records and audit events.
        """
        if recover_unfinished:
            await self.recover_unfinished()
        if not await asyncio.to_thread(self._spool_dir.is_dir):
            return []
        stored: list[TranscriptInfo] = []
        for paths in await asyncio.to_thread(self._spools, DONE_SUFFIX):
            try:
                info = await self._upload(paths)
            except (Unavailable, AuthError, OSError) as exc:
                log.info("object store unreachable; spooled transcripts wait for the next pass: %s", exc)
                break
            if info is not None:
                stored.append(info)
        return stored

    async def run(
        self,
        interval: float = DEFAULT_UPLOAD_INTERVAL,
        on_stored: Callable[[TranscriptInfo], Awaitable[None]] | None = None,
        *,
        recover: bool = True,
    ) -> None:
        """Upload at start (unfinished spools included), then every ``interval`` seconds, until cancelled.

        With ``recover`` (the default), start it before the controller accepts sessions.
        ``on_stored`` is called for each stored transcript (to update its session record).
        Errors of a pass are logged, never raised.
        """
        while True:
            try:
                for info in await self.upload_pending(recover_unfinished=recover):
                    if on_stored is not None:
                        await on_stored(info)
            except Exception:
                log.exception("uploading spooled transcripts failed")
            recover = False
            await asyncio.sleep(interval)

    # -- internals --------------------------------------------------------------------------------
    def _spools(self, suffix: str) -> list[SpoolPaths]:
        names = sorted(
            entry.name[: -len(suffix)]
            for entry in os.scandir(self._spool_dir)
            if entry.name.endswith(suffix) and entry.is_file() and not entry.name.startswith(".")
        )
        return [SpoolPaths(self._spool_dir, name) for name in names]

    def _has_marker(self, paths: SpoolPaths) -> bool:
        corrupt = paths.directory / f"{paths.session_id}{CORRUPT_SUFFIX}"
        return paths.done.exists() or corrupt.exists()

    def _mark_recovered(self, paths: SpoolPaths) -> None:
        try:
            meta = read_marker(paths.meta)
            key = str(meta["key"])
        except (OSError, ValueError, KeyError) as exc:
            log.error("spooled transcript %s has an unreadable marker %s: %s", paths.session_id, paths.meta, exc)
            return
        if not paths.cast.exists():
            paths.remove()  # the crash came before the first line: nothing was recorded
            return
        drop_incomplete_last_line(paths.cast)
        sha256, size = hash_file(paths.cast)
        log.warning(
            "session %s was still recording when the controller stopped; uploading its transcript as it is (%d bytes)",
            paths.session_id,
            size,
        )
        marker = {"session_id": paths.session_id, "key": key, "sha256": sha256, "size": size, "recovered": True}
        write_marker(paths.done, marker)

    async def _upload(self, paths: SpoolPaths) -> TranscriptInfo | None:
        """Upload one finished spool; ``None`` when it cannot be (it is logged and left).

        Raises:
            Unavailable: the store is unreachable.
            AuthError: the store refused our credentials.
            OSError: the spool cannot be read.
        """
        try:
            marker = await asyncio.to_thread(read_marker, paths.done)
            key, sha256, size = str(marker["key"]), str(marker["sha256"]), int(marker["size"])
            recovered = bool(marker.get("recovered", False))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("spooled transcript %s has an unreadable marker %s: %s", paths.session_id, paths.done, exc)
            return None
        if not await asyncio.to_thread(paths.cast.exists):
            # Deleted after an earlier upload, and the controller stopped before the markers went.
            await asyncio.to_thread(paths.remove)
            return None
        try:
            info = await upload_file(self._store, key, paths.cast, self._part_size)
        except (Unavailable, AuthError):
            raise
        except FleetopsError as exc:
            # This object's own problem (a malformed key, a path the local store cannot use): the
            # others are still uploaded.
            log.error("cannot store spooled transcript %s under %r: %s", paths.session_id, key, exc)
            return None
        if info.sha256 != sha256 or info.size != size:
            log.error(
                "spooled transcript %s changed on disk: %d bytes (sha256 %s) instead of %d (sha256 %s); "
                "it was uploaded as it is and its spool kept with a %s marker",
                paths.session_id,
                info.size,
                info.sha256,
                size,
                sha256,
                CORRUPT_SUFFIX,
            )
            await asyncio.to_thread(os.replace, paths.done, paths.directory / f"{paths.session_id}{CORRUPT_SUFFIX}")
            return None
        await asyncio.to_thread(paths.remove)
        log.info("stored spooled transcript of session %s (%d bytes)", paths.session_id, size)
        return TranscriptInfo(paths.session_id, key, sha256, size, stored=True, recovered=recovered)
