"""Crash-safe file writes: after ``write_durably`` returns, the new content survives a power cut."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from fleetops.common.files import fsync_directory

__all__ = ["fsync_directory", "write_durably"]


def write_durably(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    Readers see the old or the new content, never a mix: the data goes to a temporary file in the
    same directory, is fsync'ed, renamed over ``path``, and the directory is fsync'ed so the rename
    itself is on disk.

    Raises:
        OSError: the file cannot be written (disk full, permissions).
    """
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
