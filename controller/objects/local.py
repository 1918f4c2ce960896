"""The embedded default object store: plain files under a directory (``<state_dir>/objects``).

Every object is written to a temporary file beside its final path, fsynced, then renamed over it
with ``os.replace``: a reader sees the old object or the new one, never a partial one, and a crash
leaves at most a stray temporary file (named with
:data:`~fleetops.controller.objects.keys.RESERVED_SEGMENT_PREFIX`, which no key may use, so it
never shows up in :meth:`LocalDirectoryStore.list`). Blocking file I/O runs in worker threads.

Files are created ``0600`` and directories ``0700``: command output may hold secrets.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO

from fleetops.common.errors import Conflict, InternalError, InvalidInput, NotFound, Unavailable
from fleetops.common.files import fsync_directory
from fleetops.controller.objects.interfaces import ObjectInfo
from fleetops.controller.objects.keys import RESERVED_SEGMENT_PREFIX, validate_key, validate_prefix

# A delete prunes empty directories; a writer racing it may lose its freshly made directory
# before it creates its temporary file there. Making both again a few times settles the race.
_CREATE_ATTEMPTS = 3


class LocalDirectoryStore:
    """Objects as files under ``root``; implements :class:`~fleetops.controller.objects.interfaces.ObjectStore`.

    Args:
        root: the directory holding the objects; created (with parents) on the first write.
    """

    def __init__(self, root: Path) -> None:
        self._root = Path(root)

    @property
    def root(self) -> Path:
        return self._root

    def __repr__(self) -> str:
        return f"LocalDirectoryStore({str(self._root)!r})"

    # -- ObjectStore --------------------------------------------------------------------------
    async def put(self, key: str, data: bytes) -> ObjectInfo:
        """Write ``data`` to ``key`` atomically. See ``ObjectStore.put``.

        Raises:
            InvalidInput: ``key`` is malformed.
            Conflict: another key occupies the path (``key`` is a directory or a parent is a file).
            Unavailable: the directory cannot be written (full disk, permissions, read-only).
        """
        writer = await self.writer(key)
        try:
            await writer.write(data)
            return await writer.close()
        except BaseException:
            await writer.abort()
            raise

    async def get(self, key: str) -> bytes:
        """The whole content of ``key``. See ``ObjectStore.get``.

        Raises:
            InvalidInput: ``key`` is malformed.
            NotFound: there is no object at ``key``.
            Unavailable: the file cannot be read.
        """
        path = self._path(validate_key(key))
        with self._map_os_errors(key):
            return await asyncio.to_thread(path.read_bytes)

    def read(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """Stream ``key`` in chunks of up to ``chunk_size`` bytes. See ``ObjectStore.read``.

        The file is opened on the first ``__anext__``; a concurrent overwrite does not disturb a
        read already started (it keeps the replaced file open).

        Raises:
            InvalidInput: ``key`` is malformed or ``chunk_size`` is not positive (at once).
            NotFound: there is no object at ``key`` (on the first ``__anext__``).
            Unavailable: the file cannot be read.
        """
        path = self._path(validate_key(key))
        if chunk_size <= 0:
            raise InvalidInput(f"chunk_size must be positive, not {chunk_size}")
        return self._chunks(key, path, chunk_size)

    async def writer(self, key: str) -> LocalWriter:
        """Start a streamed write to ``key``. See ``ObjectStore.writer``.

        Raises:
            InvalidInput: ``key`` is malformed.
            Conflict: a parent of ``key`` is an object.
            Unavailable: the directory cannot be written.
        """
        path = self._path(validate_key(key))
        with self._map_os_errors(key, writing=True):
            creating = asyncio.ensure_future(asyncio.to_thread(_create_temp_file, path.parent))
            try:
                file, temp_path = await asyncio.shield(creating)
            except asyncio.CancelledError:
                # The worker thread creates the file anyway: close and remove it, then give up.
                with contextlib.suppress(Exception):
                    file, temp_path = await creating
                    file.close()
                    temp_path.unlink(missing_ok=True)
                raise
        return LocalWriter(self, key, path, file, temp_path)

    async def head(self, key: str) -> ObjectInfo | None:
        """Size of ``key``'s object or ``None``. See ``ObjectStore.head``.

        Raises:
            InvalidInput: ``key`` is malformed.
            Unavailable: the file cannot be examined.
        """
        path = self._path(validate_key(key))
        with self._map_os_errors(key):
            try:
                st = await asyncio.to_thread(path.stat)
            except (FileNotFoundError, NotADirectoryError):
                return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return ObjectInfo(key=key, size=st.st_size, sha256="")

    async def delete(self, key: str) -> None:
        """Remove ``key``'s file and the directories it leaves empty. See ``ObjectStore.delete``.

        Raises:
            InvalidInput: ``key`` is malformed.
            Unavailable: the file cannot be removed.
        """
        path = self._path(validate_key(key))
        with self._map_os_errors(key, writing=True):
            await asyncio.to_thread(self._delete_file, path)

    async def list(self, prefix: str) -> builtins.list[str]:
        """Keys under ``prefix``, sorted. See ``ObjectStore.list``.

        Raises:
            InvalidInput: ``prefix`` is malformed.
            Unavailable: the directory cannot be read.
        """
        prefix = validate_prefix(prefix)
        with self._map_os_errors(prefix):
            return await asyncio.to_thread(_list_keys, self._path(prefix) if prefix else self._root, prefix)

    async def close(self) -> None:
        """Nothing to release: files are closed by the calls that opened them."""

    # -- internals ----------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        return self._root.joinpath(*key.split("/"))

    async def _chunks(self, key: str, path: Path, chunk_size: int) -> AsyncIterator[bytes]:
        with self._map_os_errors(key):
            file = await asyncio.to_thread(open, path, "rb")
        try:
            while True:
                with self._map_os_errors(key):
                    chunk = await asyncio.to_thread(file.read, chunk_size)
                if not chunk:
                    return
                yield chunk
        finally:
            # Closing a file opened for reading does not block; doing it inline keeps the close
            # working even when the generator is finalized after its event loop stopped.
            file.close()

    def _delete_file(self, path: Path) -> None:
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        except PermissionError:
            # unlink(2) reports EPERM for a directory on Linux; a directory is not an object.
            if path.is_dir():
                return
            raise
        self._prune_empty_dirs(path.parent)

    def _prune_empty_dirs(self, directory: Path) -> None:
        # Objects come and go by the million (one per command and host): without pruning, the
        # tree would keep an empty directory for every command ever run.
        while directory != self._root and self._root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return  # not empty (or already gone): stop
            directory = directory.parent

    @contextlib.contextmanager
    def _map_os_errors(self, key: str, *, writing: bool = False) -> Iterator[None]:
        try:
            yield
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
            if not writing:
                raise NotFound(f"no object {key!r} in {self._root}") from exc
            if isinstance(exc, FileNotFoundError):
                raise Unavailable(
                    f"local object store at {self._root} lost a file while writing {key!r}: {exc}",
                    "something else is modifying the store directory; retry",
                ) from exc
            raise Conflict(
                f"cannot store {key!r} in {self._root}: another key occupies its path",
                "keys must not nest inside each other: 'a' and 'a/b' cannot both exist in a local store",
            ) from exc
        except OSError as exc:
            raise Unavailable(
                f"local object store at {self._root} failed on {key!r}: {exc.strerror or exc}",
                "check free space and permissions of the directory",
            ) from exc


class LocalWriter:
    """A temporary file beside the final path, renamed over it on close."""

    def __init__(self, store: LocalDirectoryStore, key: str, path: Path, file: IO[bytes], temp_path: Path) -> None:
        self._store = store
        self._key = key
        self._path = path
        self._file: IO[bytes] | None = file
        self._temp_path = temp_path
        self._sha256 = hashlib.sha256()
        self._size = 0

    async def write(self, data: bytes) -> None:
        """Append ``data`` to the temporary file. See ``ObjectWriter.write``.

        Raises:
            Unavailable: the file cannot be written (full disk...).
            InternalError: the writer was closed or aborted already.
        """
        file = self._open_file()
        with self._store._map_os_errors(self._key, writing=True):
            await asyncio.to_thread(_write_and_hash, file, data, self._sha256)
        self._size += len(data)

    async def close(self) -> ObjectInfo:
        """fsync the temporary file and rename it over the final path. See ``ObjectWriter.close``.

        Raises:
            Conflict: the final path is a directory (``key`` is a parent of other keys).
            Unavailable: the file cannot be written.
            InternalError: the writer was closed or aborted already.
        """
        file = self._open_file()
        try:
            with self._store._map_os_errors(self._key, writing=True):
                await asyncio.to_thread(_commit, file, self._temp_path, self._path)
        except BaseException:
            await self.abort()
            raise
        self._file = None
        return ObjectInfo(key=self._key, size=self._size, sha256=self._sha256.hexdigest())

    async def abort(self) -> None:
        """Close and remove the temporary file. See ``ObjectWriter.abort``."""
        file, self._file = self._file, None
        if file is None:
            return
        await asyncio.to_thread(_discard, file, self._temp_path)
        await asyncio.to_thread(self._store._prune_empty_dirs, self._temp_path.parent)

    def _open_file(self) -> IO[bytes]:
        if self._file is None:
            raise InternalError(f"writer for {self._key!r} is already closed or aborted")
        return self._file


def _list_keys(base: Path, prefix: str) -> list[str]:
    keys: list[str] = []
    pending = [(base, prefix)]
    while pending:
        directory, key_prefix = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue  # no such prefix, or it was deleted while we walked
        for entry in entries:
            key = f"{key_prefix}/{entry.name}" if key_prefix else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append((Path(entry.path), key))
                elif entry.is_file(follow_symlinks=False) and not entry.name.startswith(RESERVED_SEGMENT_PREFIX):
                    keys.append(key)
            except FileNotFoundError:
                continue
    keys.sort()
    return keys


def _create_temp_file(directory: Path) -> tuple[IO[bytes], Path]:
    for attempt in range(_CREATE_ATTEMPTS):
        _make_private_dirs(directory)
        try:
            fd, name = tempfile.mkstemp(prefix=RESERVED_SEGMENT_PREFIX, dir=directory)  # mode 0600
        except FileNotFoundError:
            if attempt == _CREATE_ATTEMPTS - 1:
                raise
            continue
        return os.fdopen(fd, "wb"), Path(name)
    raise AssertionError("unreachable")


def _make_private_dirs(directory: Path) -> None:
    # Path.mkdir(parents=True) gives only the last directory the mode; make each one ourselves.
    missing: list[Path] = []
    while not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            if not path.is_dir():
                raise


def _write_and_hash(file: IO[bytes], data: bytes, sha256: hashlib._Hash) -> None:
    # Hashing here, off the event loop: hashlib releases the GIL for large buffers.
    file.write(data)
    sha256.update(data)


def _commit(file: IO[bytes], temp_path: Path, path: Path) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.close()
    os.replace(temp_path, path)
    fsync_directory(path.parent)


def _discard(file: IO[bytes], temp_path: Path) -> None:
    file.close()
    with contextlib.suppress(FileNotFoundError):
        temp_path.unlink()
