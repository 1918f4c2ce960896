"""Atomic, durable file writes with the right mode from the first byte (keys, certificates, state).

Kept apart from ``pki`` so that processes which only write files (the long-running agent) do not
load the ``cryptography`` library.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """Make the names in ``directory`` (creations, renames, deletions) survive a power cut.

    Raises:
        OSError: the directory cannot be opened or synced.
    """
    if not hasattr(os, "O_DIRECTORY"):
        return  # Windows cannot open a directory; NTFS journals the metadata of a rename itself
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    path = Path(path)
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, mode)
    try:
        try:
            # The umask may have narrowed a public file; secrets stay as created. Windows (before
            # Python 3.13) has no fchmod, and its mode bits mean nothing there: access is the
            # state directory's ACL (deploy/windows/install.ps1).
            if mode != 0o600 and hasattr(os, "fchmod"):
                os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # persist the rename itself (best effort)
        fsync_directory(path.parent)


def write_secret_file(path: Path, data: bytes) -> None:
    """Atomically write ``data`` to ``path``, readable by the owner only (0600 from creation on).

    The parent directory is created with mode 0700 when missing.

    Raises:
        OSError: the file or directory cannot be written.
    """
    _write_atomic(path, data, 0o600)


def write_public_file(path: Path, data: bytes) -> None:
    """Atomically write ``data`` to ``path`` with mode 0644 (certificates, CA bundles).

    Raises:
        OSError: the file or directory cannot be written.
    """
    _write_atomic(path, data, 0o644)
