"""Where an invocation's output goes: a local spool first, then the object store; the tail to the database.

The object store is the controller's dependency, never the agents' problem: output an agent sends
is written to the spool directory (``<state_dir>/output-spool``) and acknowledged from there, and
uploaded when the stream ends. While the store cannot take it (wrong credentials, a missing
bucket, an outage) the finished output waits in the spool, is served from there to readers, and
is uploaded by :class:`OutputSpool`'s retry loop as soon as the store is back. Nothing reaches the
agent's stream because of the store.

Spool layout (files ``0600``, directory ``0700``)::

    <name>.part   the bytes received, in order (<name> = creation time in ns + a random suffix)
    <name>.done   {"key", "sha256", "size"}: the stream ended; written (fsynced) before any upload
                  is tried, removed only after the store confirmed an object of that size and hash

A ``.part`` without ``.done`` is a stream a controller crash cut short; it is deleted at start (the
agent re-sends an unacknowledged invocation's output from offset 0 to the new controller).
The spool holds at most ``max_bytes``; output beyond that is dropped and the invocation's reason
says how many bytes were stored.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fleetops.common.errors import FleetopsError, InternalError, Unavailable
from fleetops.common.files import fsync_directory
from fleetops.controller.commands.models import TAIL_BYTES
from fleetops.controller.objects.health import MonitoredStore
from fleetops.controller.objects.interfaces import ObjectInfo, ObjectStore, ObjectWriter
from fleetops.controller.objects.keys import validate_key
from fleetops.controller.sessions.spool import (
    DEFAULT_PART_SIZE,
    make_spool_directory,
    read_marker,
    upload_file,
    write_marker,
)

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
DONE_SUFFIX = ".done"
#: Default bound of the spool directory (bytes of output waiting for the store).
DEFAULT_SPOOL_MAX_BYTES = 4 << 30
#: Default seconds between two checks of a degraded store (and uploads of what waits).
DEFAULT_RETRY_INTERVAL = 30.0
# Writes above this go through a thread, so a large chunk never stalls the event loop.
_WRITE_IN_THREAD_ABOVE = 256 * 1024


def output_key(command_id: str, host_name: str, stream: str) -> str:
    return f"commands/{command_id}/{host_name}/{stream}"


class SpoolFull(Unavailable):
    """The output spool reached its bound; the bytes were not kept."""


@dataclass
class _Entry:
    """One finished output waiting in the spool."""

    name: str
    key: str
    sha256: str
    size: int
    directory: Path
    uploading: bool = field(default=False, compare=False)

    @property
    def part(self) -> Path:
        return self.directory / f"{self.name}{PART_SUFFIX}"

    @property
    def done(self) -> Path:
        return self.directory / f"{self.name}{DONE_SUFFIX}"

    def remove(self) -> None:
        # Data first, marker last: a crash in between re-finds the marker and drops it (no data).
        for path in (self.part, self.done):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        fsync_directory(self.directory)


class OutputSpool:
    """The object store as the run-command room sees it: writes land in the spool, then the store.

    It is an :class:`ObjectStore`: ``writer`` spools (see the module docstring), ``get``/``read``/
    ``head`` answer from the spool for outputs still waiting there, everything else goes to the
    store unchanged.

    Args:
        store: the monitored object store (its health decides whether an upload is tried at once).
        directory: the spool directory.
        max_bytes: bound of the spool's content.
        retry_interval: seconds between checks of a degraded store.
        tag: names this controller in the store check's probe key.
    """

    def __init__(
        self,
        store: MonitoredStore,
        directory: Path,
        *,
        max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        part_size: int = DEFAULT_PART_SIZE,
        tag: str = "",
    ) -> None:
        self._store = store
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._retry_interval = retry_interval
        self._part_size = part_size
        self._tag = tag
        self._pending: dict[str, _Entry] = {}  # key -> newest finished output waiting for the store
        self._superseded: list[_Entry] = []  # older outputs of a key, dropped once their upload ends
        self.used_bytes = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"OutputSpool({str(self.directory)!r} in front of {self._store!r})"

    @property
    def pending_count(self) -> int:
        """Finished outputs waiting for the store."""
        return len(self._pending)

    # -- life cycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Load what a previous run left, drop streams a crash cut short, start the retry loop."""
        await asyncio.to_thread(make_spool_directory, self.directory)
        await asyncio.to_thread(self._load)
        if self._pending:
            log.warning(
                "%d command output(s) (%d bytes) wait in %s for the object store",
                len(self._pending),
                self.used_bytes,
                self.directory,
            )
        self._task = asyncio.create_task(self._run(), name="output-spool")
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def wake(self) -> None:
        """Try the store (and the uploads) now rather than at the next interval."""
        self._wake.set()

    def _load(self) -> None:
        names = sorted(
            entry.name for entry in os.scandir(self.directory) if entry.is_file() and not entry.name.startswith(".")
        )
        done = {n[: -len(DONE_SUFFIX)] for n in names if n.endswith(DONE_SUFFIX)}
        for name in names:
            if name.endswith(PART_SUFFIX) and name[: -len(PART_SUFFIX)] not in done:
                log.info("dropping output %s of a stream the last controller run did not finish", name)
                (self.directory / name).unlink(missing_ok=True)
        for name in sorted(done):
            entry = self._read_entry(name)
            if entry is None:
                continue
            older = self._pending.get(entry.key)
            if older is not None:
                older.remove()
                self.used_bytes -= older.size
            self._pending[entry.key] = entry
            self.used_bytes += entry.size

    def _read_entry(self, name: str) -> _Entry | None:
        marker = self.directory / f"{name}{DONE_SUFFIX}"
        try:
            content = read_marker(marker)
            entry = _Entry(
                name, validate_key(str(content["key"])), str(content["sha256"]), int(content["size"]), self.directory
            )
            size = entry.part.stat().st_size
        except FileNotFoundError:
            log.info("spooled output %s was uploaded already; removing its marker", name)
            marker.unlink(missing_ok=True)
            return None
        except (OSError, ValueError, KeyError, TypeError, FleetopsError) as exc:
            log.error(
                "spooled output %s has an unreadable marker %s (%s); it is left for a person to look at",
                name,
                marker,
                exc,
            )
            return None
        if size != entry.size:
            log.error("spooled output %s is %d bytes, its marker says %d; it is left as it is", name, size, entry.size)
            return None
        return entry

    # -- ObjectStore ------------------------------------------------------------------------
    async def writer(self, key: str) -> ObjectWriter:
        """A writer that spools ``key``'s content and hands it to the store on ``close``.

        Raises:
            InvalidInput: ``key`` is malformed.
        """
        validate_key(key)
        return SpooledWriter(self, key)

    async def get(self, key: str) -> bytes:
        entry = self._pending.get(key)
        if entry is not None:
            with contextlib.suppress(FileNotFoundError):  # uploaded meanwhile: the store has it
                return await asyncio.to_thread(entry.part.read_bytes)
        return await self._store.get(key)

    async def read(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        entry = self._pending.get(key)
        file = None
        if entry is not None:
            with contextlib.suppress(FileNotFoundError):
                # Opened before streaming: an upload that ends meanwhile unlinks, the open file stays readable.
                file = await asyncio.to_thread(open, entry.part, "rb")
        if file is None:
            async for chunk in self._store.read(key, chunk_size):
                yield chunk
            return
        try:
            while chunk := await asyncio.to_thread(file.read, chunk_size):
                yield chunk
        finally:
            file.close()

    async def head(self, key: str) -> ObjectInfo | None:
        entry = self._pending.get(key)
        if entry is not None:
            return ObjectInfo(key=key, size=entry.size, sha256=entry.sha256)
        return await self._store.head(key)

    async def put(self, key: str, data: bytes) -> ObjectInfo:
        return await self._store.put(key, data)

    async def delete(self, key: str) -> None:
        await self._store.delete(key)

    async def list(self, prefix: str) -> builtins.list[str]:
        return await self._store.list(prefix)

    async def close(self) -> None:
        await self._store.close()

    # -- spooling ---------------------------------------------------------------------------
    def _reserve(self, size: int) -> None:
        if self.used_bytes + size > self.max_bytes:
            raise SpoolFull(
                f"the command output spool {self.directory} is full ({self.used_bytes} of {self.max_bytes} bytes)",
                "fix the object store so the spool drains (see the 'object store DEGRADED' log line), or raise "
                "--output-spool-max",
            )
        self.used_bytes += size

    def _release(self, size: int) -> None:
        self.used_bytes = max(0, self.used_bytes - size)

    async def _finished(self, entry: _Entry) -> None:
        """A stream ended and its marker is durable: upload it now if the store is up, else later."""
        older = self._pending.get(entry.key)
        if older is not None:
            if older.uploading:
                self._superseded.append(older)
            else:
                await asyncio.to_thread(older.remove)
                self._release(older.size)
        self._pending[entry.key] = entry
        if older is not None and older.uploading:
            return  # the retry loop uploads this one after the older upload ended, never before
        if self._store.health.up:
            await self._upload(entry)
        # Degraded: the retry loop checks the store every interval and uploads then (waking it
        # for every finished stream would hammer a store that is down).

    async def _upload(self, entry: _Entry) -> bool:
        """Upload one spooled output; ``False`` when the store cannot take it now."""
        entry.uploading = True
        try:
            info = await upload_file(self._store, entry.key, entry.part, self._part_size)
        except Unavailable as exc:
            log.info("output %s waits in the spool: %s", entry.key, exc.message)
            return False
        except (FleetopsError, OSError) as exc:
            log.error("cannot store spooled output %s (%s): %s; it stays in the spool", entry.key, entry.name, exc)
            return False
        finally:
            entry.uploading = False
        if (info.sha256, info.size) != (entry.sha256, entry.size):
            log.error(
                "spooled output %s (%s) changed on disk: uploaded %d bytes (sha256 %s), expected %d (sha256 %s); "
                "its spool is kept",
                entry.key,
                entry.name,
                info.size,
                info.sha256,
                entry.size,
                entry.sha256,
            )
            return False
        await asyncio.to_thread(entry.remove)
        self._release(entry.size)
        if self._pending.get(entry.key) is entry:
            del self._pending[entry.key]
        if entry in self._superseded:
            self._superseded.remove(entry)
        return True

    async def upload_pending(self) -> int:
        """Upload what waits, oldest first; stops at the first failure. Returns how many were stored."""
        for old in [e for e in self._superseded if not e.uploading]:
            self._superseded.remove(old)
            await asyncio.to_thread(old.remove)
            self._release(old.size)
        stored = 0
        for entry in sorted(self._pending.values(), key=lambda e: e.name):
            if self._pending.get(entry.key) is not entry:
                continue  # replaced by a newer stream of the same key meanwhile
            if entry.uploading or any(s.key == entry.key for s in self._superseded):
                continue
            if not await self._upload(entry):
                break
            stored += 1
        if stored:
            log.info("uploaded %d spooled command output(s); %d wait", stored, len(self._pending))
        return stored

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._retry_interval)
            self._wake.clear()
            try:
                if not self._store.health.up:
                    try:
                        await self._store.check(self._tag)
                    except Unavailable:
                        continue  # logged by the health on the first failure; tried again next interval
                if self._pending or self._superseded:
                    await self.upload_pending()
            except Exception:
                log.exception("uploading spooled command output failed")

    def _new_name(self) -> str:
        return f"{time.time_ns():020d}-{secrets.token_hex(4)}"


class SpooledWriter:
    """One output stream being spooled; see :class:`OutputSpool`. Never raises the store's errors."""

    def __init__(self, spool: OutputSpool, key: str) -> None:
        self._spool = spool
        self._entry = _Entry(spool._new_name(), key, "", 0, spool.directory)
        self._file: int | None = None
        self._sha256 = hashlib.sha256()
        self._closed = False

    async def write(self, data: bytes) -> None:
        """Append ``data`` to the spool file.

        Raises:
            SpoolFull: the spool is at its bound; ``data`` was not kept.
            Unavailable: the spool file cannot be written (disk full, permissions).
        """
        if self._closed:
            raise InternalError(f"writer for {self._entry.key!r} is already closed or aborted")
        self._spool._reserve(len(data))
        try:
            if self._file is None:
                self._file = await asyncio.to_thread(
                    os.open, self._entry.part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600
                )
            if len(data) > _WRITE_IN_THREAD_ABOVE:
                await asyncio.to_thread(_write_all, self._file, data)
            else:
                _write_all(self._file, data)
        except OSError as exc:
            self._spool._release(len(data))
            raise Unavailable(
                f"cannot spool command output to {self._entry.part}: {exc.strerror or exc}",
                "check free space and permissions of the controller's state directory",
            ) from exc
        self._sha256.update(data)
        self._entry.size += len(data)

    async def close(self) -> ObjectInfo:
        """Make the spooled stream durable, then hand it to the store (now, or when it is back).

        Raises:
            Unavailable: the spool cannot be written (local disk trouble, not the store).
        """
        if self._closed:
            raise InternalError(f"writer for {self._entry.key!r} is already closed or aborted")
        self._closed = True
        entry = self._entry
        entry.sha256 = self._sha256.hexdigest()
        try:
            if self._file is None:  # an empty stream is an empty object
                self._file = await asyncio.to_thread(os.open, entry.part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            file, self._file = self._file, None
            await asyncio.to_thread(_fsync_close, file)
            marker = {"key": entry.key, "sha256": entry.sha256, "size": entry.size}
            await asyncio.to_thread(write_marker, entry.done, marker)
        except OSError as exc:
            await asyncio.to_thread(entry.remove)
            self._spool._release(entry.size)
            raise Unavailable(
                f"cannot spool command output to {entry.part}: {exc.strerror or exc}",
                "check free space and permissions of the controller's state directory",
            ) from exc
        await self._spool._finished(entry)
        return ObjectInfo(key=entry.key, size=entry.size, sha256=entry.sha256)

    def open_written(self) -> BinaryIO | None:
        """A new read handle of the bytes written so far (from the first), or None before the first
        write and after close or abort. The handle stays readable when the file is uploaded and
        removed meanwhile; the caller closes it."""
        if self._closed or self._file is None:
            return None
        try:
            return open(self._entry.part, "rb")  # noqa: SIM115 (the caller owns and closes it)
        except OSError:
            return None

    async def abort(self) -> None:
        """Discard the spooled bytes. Idempotent, never raises."""
        if self._closed:
            return
        self._closed = True
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                os.close(file)
        with contextlib.suppress(OSError):
            await asyncio.to_thread(self._entry.part.unlink, True)
        self._spool._release(self._entry.size)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OutputSink:
    """One output stream of one invocation, written in order by byte offset.

    Agents send chunks with the offset of their first byte; a chunk (or part of one) the sink
    already has is skipped, so a re-sent stream after a reconnect never doubles bytes. Memory is
    bounded by the tail plus the object writer's current part.

    ``received`` counts the bytes the agent delivered (the offset a re-send starts from);
    :meth:`close` returns the bytes actually stored, which is less only when the spool was full.
    """

    def __init__(self, store: ObjectStore, key: str) -> None:
        self._store = store
        self.key = key
        self.received = 0
        self.stored = 0
        self._tail = bytearray()
        self._writer: ObjectWriter | None = None
        self.gap = False
        self._dropping = False
        #: Set (and replaced) whenever bytes arrive or the stream ends: live readers wait on it.
        self.changed = asyncio.Event()
        #: True once the invocation's result closed (or abort discarded) the stream.
        self.ended = False

    @property
    def tail(self) -> bytes:
        return bytes(self._tail)

    @property
    def tail_offset(self) -> int:
        """Offset in the stream of the tail's first byte (what the sink holds in memory)."""
        return self.received - len(self._tail)

    def held(self, start: int, limit: int) -> bytes:
        """Up to ``limit`` bytes from offset ``start`` out of the tail (``start`` at or past tail_offset)."""
        first = start - self.tail_offset
        if first < 0:
            raise ValueError(f"offset {start} is before the tail (at {self.tail_offset})")
        return bytes(self._tail[first : first + limit])

    def open_stored(self) -> BinaryIO | None:
        """A read handle of the stored bytes so far, from offset 0, when the store's writer offers
        one (the spool does); None otherwise. ``stored`` of them are in order from 0 (all of
        them unless the spool was full)."""
        opener = getattr(self._writer, "open_written", None)
        return opener() if opener is not None else None

    def _wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def write(self, offset: int, data: bytes) -> None:
        if offset > self.received:
            # Cannot happen on one ordered stream; if it does, the totals check at the end reports it.
            log.error("output %s: gap at %d (have %d bytes); chunk dropped", self.key, offset, self.received)
            self.gap = True
            return
        skip = self.received - offset
        if skip >= len(data):
            return
        if skip:
            data = data[skip:]
        if self._writer is None:
            self._writer = await self._store.writer(self.key)
        if not self._dropping:
            try:
                await self._writer.write(data)
                self.stored += len(data)
            except SpoolFull as exc:
                # Keep the stream going (the agent must not be refused for the controller's disk);
                # the result's reason says how much was stored.
                log.error("output %s: %s; the rest of this stream is not stored", self.key, exc.message)
                self._dropping = True
        self.received += len(data)
        self._tail += data
        if len(self._tail) > TAIL_BYTES:
            del self._tail[: len(self._tail) - TAIL_BYTES]
        self._wake()

    async def close(self) -> int:
        """Complete the object (if any byte arrived); returns the number of bytes stored."""
        try:
            if self._writer is not None:
                writer, self._writer = self._writer, None
                await writer.close()
        finally:
            self.ended = True
            self._wake()
        return self.stored

    async def abort(self) -> None:
        try:
            if self._writer is not None:
                writer, self._writer = self._writer, None
                await writer.abort()
        finally:
            self.ended = True
            self._wake()


__all__ = ["OutputSink", "OutputSpool", "SpoolFull", "SpooledWriter", "output_key"]
