"""``opsctl cp [-r] [--as LOGIN] SRC DST``: copy files to or from a host over SFTP, verified.

Exactly one of SRC and DST is remote, written ``HOST:PATH`` or ``LOGIN@HOST:PATH`` (scp's form; a
local path with a colon before any slash is written ``./a:b``). An empty remote PATH is the login's
home directory. The SFTP client is asyncssh's, over :func:`~fleetops.opsctl.ssh_connection.connect_host`:
the same session, authorization and audit as ``sftp LOGIN@HOST.fleet`` (docs/ssh.md).

Destinations follow cp and scp: into DST when it is an existing directory (keeping SRC's name),
else to DST itself, whose parent must exist. ``-r`` copies a directory tree (regular files and
directories; symbolic links and special files are skipped and counted). New files get SRC's
permission bits.

**Verification.** SFTP has no checksum request that OpenSSH's ``sftp-server`` answers, and running
``sha256sum`` on the host would need a command right and a tool the host may lack. So opsctl
compares SHA-256 digests it computes itself, each over a separate read:

- upload: the digest of the bytes read from the local file as they are sent, against the digest of
  the remote file *read back over SFTP* after it was closed (a second transfer of the same size,
  from the host's file as the host now serves it). ``--no-verify`` skips the read-back and only
  compares the remote file's size (stat) with the bytes sent.
- download: the digest of the bytes as the host served them, against the digest of the local file
  read back from disk after it was written; and the remote file's size before and after the
  copy, against the bytes received (a file that changed meanwhile is reported).

A mismatch is an error (exit 6: retry). SSH's own MAC already guards the bytes in transit; this
catches what it cannot: a file that changed during the copy, a short or failed write on either
disk. The digest printed is that of the file's content, ``sha256sum``'s.

Progress (bytes, rate) goes to stderr when it is a terminal; the one-line summary to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import posixpath
import re
import stat
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TextIO

from fleetops.common.errors import FleetopsError, InvalidInput, NotFound, PermissionDenied, Unavailable
from fleetops.common.ssh import HOST_DOMAIN, asyncssh
from fleetops.opsctl.client import OperatorClient
from fleetops.opsctl.ssh_connection import connect_host

#: The login when neither --as nor LOGIN@ names one (as ``ssh root@HOST.fleet``).
DEFAULT_LOGIN = "root"
#: Bytes per read of the local file, and per pipelined SFTP read or write call (each is split by
#: asyncssh into parallel requests of the server's block size).
CHUNK = 1024 * 1024
#: Chunks in flight at once, each way.
PIPELINE = 8
#: Seconds between two progress lines.
PROGRESS_EVERY = 0.2
#: scp's form: [LOGIN@]HOST:PATH, where HOST has no slash (``./a:b`` and ``/a:b`` are local).
REMOTE = re.compile(r"^(?:(?P<login>[A-Za-z0-9_.][A-Za-z0-9_.-]*)@)?(?P<host>[A-Za-z0-9][A-Za-z0-9_.-]*):(?P<path>.*)$")

USAGE = "opsctl cp [-r] [--as LOGIN] [--no-verify] SRC DST   (one of them HOST:PATH or LOGIN@HOST:PATH)"


@dataclass(frozen=True)
class RemotePath:
    host: str
    path: str
    login: str = ""

    def __str__(self) -> str:
        return f"{self.host}:{self.path}"


@dataclass(frozen=True)
class CopySpec:
    """One ``opsctl cp``: which way, the local path, the remote path and the login."""

    upload: bool
    local: str
    remote: RemotePath
    login: str
    recursive: bool = False
    verify: bool = True


def parse_remote(arg: str) -> RemotePath | None:
    """``[LOGIN@]HOST:PATH`` as a :class:`RemotePath`; ``None`` for a local path."""
    m = REMOTE.match(arg)
    if m is None:
        return None
    host = m["host"].removesuffix(f".{HOST_DOMAIN}")
    return RemotePath(host=host, path=m["path"], login=m["login"] or "")


def parse_spec(src: str, dst: str, login: str = "", recursive: bool = False, verify: bool = True) -> CopySpec:
    """The copy ``SRC DST`` asks for.

    Raises:
        InvalidInput: neither or both sides name a host, an empty side, or two different logins.
    """
    if not src or not dst:
        raise InvalidInput("SRC and DST must not be empty", USAGE)
    source, target = parse_remote(src), parse_remote(dst)
    if source is None and target is None:
        raise InvalidInput(
            f"neither {src!r} nor {dst!r} names a host",
            "write the host's side as HOST:PATH, e.g. opsctl cp ./app.tar web-1:/tmp/",
        )
    if source is not None and target is not None:
        raise InvalidInput(
            f"both {src!r} and {dst!r} name a host",
            "copy through this machine: one cp down, one cp up",
        )
    remote = source or target
    assert remote is not None
    if login and remote.login and login != remote.login:
        raise InvalidInput(f"two logins: --as {login} and {remote.login}@{remote.host}", "give the login once")
    local = dst if source is not None else src
    return CopySpec(
        upload=target is not None,
        local=local,
        remote=remote,
        login=login or remote.login or DEFAULT_LOGIN,
        recursive=recursive,
        verify=verify,
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "cp",
        help="copy files to or from a host over SFTP, verified by SHA-256 (HOST:PATH)",
        usage=USAGE,
        description="Copy a file (or with -r a directory) between this machine and a host, over the "
        "SSH connection 'opsctl ssh-config' sets up (authorized as a session as LOGIN). Each file's "
        "SHA-256 is compared after the copy: uploads are read back from the host (--no-verify: size only).",
    )
    p.add_argument("src", metavar="SRC", help="a local path, or [LOGIN@]HOST:PATH")
    p.add_argument("dst", metavar="DST", help="a local path, or [LOGIN@]HOST:PATH")
    p.add_argument("-r", "--recursive", action="store_true", help="copy directories and their contents")
    p.add_argument(
        "--as", dest="login", default="", metavar="LOGIN", help=f"log in as LOGIN (default: {DEFAULT_LOGIN})"
    )
    p.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="do not read an upload back to compare digests (compare its size only)",
    )
    p.set_defaults(func=copy_command)


def copy_command(client: OperatorClient, args: argparse.Namespace) -> int:
    spec = parse_spec(args.src, args.dst, args.login, args.recursive, args.verify)
    progress = Progress(sys.stderr, enabled=sys.stderr.isatty())
    summary = asyncio.run(run_copy(client, spec, progress))
    print(summary)
    return 0


async def run_copy(client: OperatorClient, spec: CopySpec, progress: Progress) -> str:
    """Do the copy; the summary line.

    Raises:
        FleetopsError: a missing path (``NotFound``), a directory without -r (``InvalidInput``), a
            refusal (``PermissionDenied``), a connection failure or a digest mismatch (``Unavailable``).
    """
    local = Path(spec.local)
    if spec.upload:
        _check_local_source(local, spec.recursive)
    async with connect_host(client, spec.remote.host, spec.login) as conn:
        try:
            try:
                sftp = await conn.start_sftp_client()
            except asyncssh.ChannelOpenError as exc:
                raise PermissionDenied(
                    f"{spec.remote.host} refused SFTP as {spec.login}: {exc.reason}",
                    f"your role needs file.transfer on {spec.remote.host} (docs/access.md)",
                ) from None
            async with sftp:
                summary = await _Copier(sftp, spec, progress).run()
        except asyncssh.SFTPError as exc:
            raise _sftp_error(exc, spec.remote) from None
        except (asyncssh.Error, ConnectionError) as exc:
            raise Unavailable(f"the SFTP session with {spec.remote.host} failed: {exc}", "retry") from None
        finally:
            progress.finish()
    return summary


def _check_local_source(local: Path, recursive: bool) -> None:
    try:
        info = local.stat()
    except FileNotFoundError:
        raise NotFound(f"no such local file or directory: {local}", "check the path") from None
    except OSError as exc:
        raise _local_error(exc, local) from None
    if stat.S_ISDIR(info.st_mode) and not recursive:
        raise InvalidInput(f"{local} is a directory", "use -r to copy a directory and its contents")
    if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
        raise InvalidInput(f"{local} is not a regular file or directory", "copy regular files and directories")


def _sftp_error(exc: asyncssh.SFTPError, remote: RemotePath) -> FleetopsError:
    reason = exc.reason or type(exc).__name__
    where = getattr(exc, "opsctl_path", "") or remote.path
    if isinstance(exc, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
        return NotFound(f"{remote.host}:{where}: no such file or directory", "check the remote path")
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return PermissionDenied(f"{remote.host}:{where}: permission denied ({reason})", "copy as another login (--as)")
    return Unavailable(f"{remote.host}:{where}: {reason}", "check the path and the host's disk; retry")


def _local_error(exc: OSError, path: Path) -> FleetopsError:
    reason = exc.strerror or str(exc)
    if isinstance(exc, FileNotFoundError):
        return NotFound(f"{path}: no such file or directory", "check the local path")
    if isinstance(exc, PermissionError):
        return PermissionDenied(f"{path}: permission denied", "check the local file's permissions")
    return FleetopsError(f"{path}: {reason}", "check the local path")


# -- progress -------------------------------------------------------------------------------------
@dataclass
class Progress:
    """``12.0 MiB / 100.0 MiB  35.2 MiB/s`` on one line of ``stream``, when enabled (a terminal)."""

    stream: TextIO
    enabled: bool
    total: int = 0
    done: int = 0
    label: str = ""
    clock: Callable[[], float] = time.monotonic
    _started: float = field(default=0.0, init=False)
    _shown: float = field(default=0.0, init=False)
    _dirty: bool = field(default=False, init=False)

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self._started = self._shown = self.clock()

    def advance(self, count: int) -> None:
        self.done += count
        now = self.clock()
        if self.enabled and now - self._shown >= PROGRESS_EVERY:
            self._shown = now
            self._show(now)

    def line(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        return f"{self.label}  {_size(self.done)} / {_size(self.total)}  {_size(rate)}/s"

    def _show(self, now: float) -> None:
        self.stream.write(f"\r\x1b[K{self.line(now)}")
        self.stream.flush()
        self._dirty = True

    def finish(self) -> None:
        if self._dirty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._dirty = False


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"  # unreachable


# -- the copy -------------------------------------------------------------------------------------
@dataclass
class _Totals:
    files: int = 0
    bytes: int = 0
    skipped: int = 0
    last_digest: str = ""


class _Copier:
    def __init__(self, sftp: asyncssh.SFTPClient, spec: CopySpec, progress: Progress) -> None:
        self.sftp = sftp
        self.spec = spec
        self.progress = progress
        self.totals = _Totals()
        self.host = spec.remote.host

    async def run(self) -> str:
        remote = self.spec.remote.path or "."
        local = Path(self.spec.local)
        if self.spec.upload:
            target = await self._remote_target(remote, local.resolve().name)
            shown = f"{self.host}:{target}"
            tree = local.is_dir()
            try:
                if tree:
                    await self._upload_tree(local, target)
                else:
                    await self._upload_file(local, target)
            except OSError as exc:  # the local tree, read as it is walked
                raise _local_error(exc, Path(exc.filename or local)) from None
        else:
            attrs = await self._remote_stat(remote)
            is_dir = attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY
            if is_dir and not self.spec.recursive:
                raise InvalidInput(
                    f"{self.host}:{remote} is a directory", "use -r to copy a directory and its contents"
                )
            if not is_dir and attrs.type != asyncssh.FILEXFER_TYPE_REGULAR:
                raise InvalidInput(f"{self.host}:{remote} is not a regular file or directory", "copy files")
            target_path = _local_target(self.spec.local, posixpath.basename(remote.rstrip("/")) or self.host)
            shown = str(target_path)
            tree = is_dir
            if is_dir:
                await self._download_tree(remote, target_path)
            else:
                await self._download_file(remote, target_path, attrs)
        t = self.totals
        if tree:
            skipped = f"; {t.skipped} skipped: not a regular file or directory" if t.skipped else ""
            check = "sha256 verified" if self.spec.verify or not self.spec.upload else "sizes checked"
            return f"copied {t.files} files, {t.bytes} bytes to {shown} ({check} for each{skipped})"
        note = "" if self.spec.verify or not self.spec.upload else ", size checked, not read back"
        return f"copied {t.bytes} bytes to {shown} (sha256 {t.last_digest}{note})"

    # -- remote paths ------------------------------------------------------------------------------
    async def _remote_stat(self, path: str) -> asyncssh.SFTPAttrs:
        try:
            return await self.sftp.stat(path)
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
            raise NotFound(f"{self.host}:{path}: no such file or directory", "check the remote path") from None

    async def _remote_target(self, remote: str, name: str) -> str:
        """Where an upload of ``name`` goes: into ``remote`` if it is a directory, else ``remote``."""
        try:
            attrs = await self.sftp.stat(remote)
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
            attrs = None
        if attrs is not None and attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY:
            return posixpath.join(remote, name)
        if attrs is None:
            if remote.endswith("/"):
                raise NotFound(f"{self.host}:{remote}: no such directory", "create it first, or name a file")
            parent = posixpath.dirname(remote) or "."
            try:
                parent_attrs = await self.sftp.stat(parent)
            except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                raise NotFound(f"{self.host}:{parent}: no such directory", "create it first") from None
            if parent_attrs.type != asyncssh.FILEXFER_TYPE_DIRECTORY:
                raise InvalidInput(f"{self.host}:{parent} is not a directory", "check the remote path")
        return remote

    # -- upload ------------------------------------------------------------------------------------
    async def _upload_tree(self, root: Path, target: str) -> None:
        await self._remote_mkdir(target)
        for directory, dirs, files in os.walk(root, onerror=_raise):
            here = Path(directory)
            remote_here = posixpath.join(target, *here.relative_to(root).parts)
            for name in sorted(dirs):
                if (here / name).is_symlink():
                    self.totals.skipped += 1
                    dirs.remove(name)
                    continue
                await self._remote_mkdir(posixpath.join(remote_here, name))
            for name in sorted(files):
                path = here / name
                if path.is_symlink() or not path.is_file():
                    self.totals.skipped += 1
                    continue
                await self._upload_file(path, posixpath.join(remote_here, name))

    async def _remote_mkdir(self, path: str) -> None:
        try:
            await self.sftp.mkdir(path)
        except asyncssh.SFTPError:
            if not await self.sftp.isdir(path):
                raise

    async def _upload_file(self, local: Path, remote: str) -> None:
        try:
            source = local.open("rb")
        except OSError as exc:
            raise _local_error(exc, local) from None
        with source:
            info = os.fstat(source.fileno())
            self.progress.start(f"{local} -> {self.host}:{remote}", info.st_size)
            sent = hashlib.sha256()
            attrs = asyncssh.SFTPAttrs(permissions=stat.S_IMODE(info.st_mode))
            size = 0
            async with self.sftp.open(remote, "wb", attrs, encoding=None) as out:
                writes: set[asyncio.Task[int]] = set()
                try:
                    while chunk := source.read(CHUNK):
                        sent.update(chunk)
                        while len(writes) >= PIPELINE:
                            await self._settle_one(writes)
                        writes.add(asyncio.create_task(out.write(chunk, size)))
                        size += len(chunk)
                    while writes:
                        await self._settle_one(writes)
                finally:
                    for task in writes:
                        task.cancel()
                    await asyncio.gather(*writes, return_exceptions=True)
        written = (await self.sftp.stat(remote)).size
        if written != size:
            raise Unavailable(
                f"{self.host}:{remote} holds {written} bytes after the copy, not {size}",
                "retry; check the host's disk space",
            )
        digest = sent.hexdigest()
        if self.spec.verify:
            self.progress.start(f"verifying {self.host}:{remote}", size)
            served, _ = await self._read_remote(remote, size, None)
            if served != digest:
                raise Unavailable(
                    f"{self.host}:{remote} does not match {local} after the copy "
                    f"(sha256 {served} on the host, {digest} sent)",
                    "retry; the file may have changed while it was copied",
                )
        self._count(size, digest)

    async def _settle_one(self, tasks: set[asyncio.Task[int]]) -> None:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            tasks.discard(task)
            self.progress.advance(task.result())

    # -- download ----------------------------------------------------------------------------------
    async def _download_tree(self, remote: str, target: Path) -> None:
        try:
            target.mkdir(exist_ok=True)
        except OSError as exc:
            raise _local_error(exc, target) from None
        for entry in sorted(await self.sftp.readdir(remote), key=lambda e: str(e.filename)):
            name = str(entry.filename)
            if name in (".", ".."):
                continue
            path = posixpath.join(remote, name)
            kind = entry.attrs.type
            if kind == asyncssh.FILEXFER_TYPE_DIRECTORY:
                await self._download_tree(path, target / name)
            elif kind == asyncssh.FILEXFER_TYPE_REGULAR:
                await self._download_file(path, target / name, entry.attrs)
            else:
                self.totals.skipped += 1

    async def _download_file(self, remote: str, local: Path, attrs: asyncssh.SFTPAttrs) -> None:
        size = attrs.size or 0
        mode = stat.S_IMODE(attrs.permissions or 0o644)
        self.progress.start(f"{self.host}:{remote} -> {local}", size)
        try:
            fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        except OSError as exc:
            raise _local_error(exc, local) from None
        with open(fd, "wb") as sink:
            served, received = await self._read_remote(remote, size, sink)
        after = (await self.sftp.stat(remote)).size
        if received != size or after != size:
            raise Unavailable(
                f"{self.host}:{remote} changed while it was copied ({size} bytes before, {after} after, "
                f"{received} received)",
                "retry when the file is not being written",
            )
        stored = await asyncio.to_thread(_file_sha256, local)
        if stored != served:
            raise Unavailable(
                f"{local} does not match {self.host}:{remote} after the copy "
                f"(sha256 {stored} on disk, {served} served)",
                "retry; check the local disk",
            )
        self._count(size, served)

    async def _read_remote(self, remote: str, size: int, sink: BinaryIO | None) -> tuple[str, int]:
        """Read ``remote`` in pipelined chunks, in order: (its SHA-256, bytes read); written to ``sink``."""
        digest = hashlib.sha256()
        received = 0
        async with self.sftp.open(remote, "rb", encoding=None) as source:
            reads: deque[asyncio.Task[bytes]] = deque()
            offset = 0
            try:
                while offset < size or reads:
                    while offset < size and len(reads) < PIPELINE:
                        reads.append(asyncio.create_task(source.read(min(CHUNK, size - offset), offset)))
                        offset += CHUNK
                    data = await reads.popleft()
                    digest.update(data)
                    received += len(data)
                    if sink is not None:
                        sink.write(data)
                    self.progress.advance(len(data))
                    if not data:
                        break  # the file is shorter than it was: reported by the caller
                if received == size:  # the end of the file is where its size said (or it grew)
                    extra = await source.read(1, size)
                    received += len(extra)
            finally:
                for task in reads:
                    task.cancel()
                await asyncio.gather(*reads, return_exceptions=True)
        return digest.hexdigest(), received

    def _count(self, size: int, digest: str) -> None:
        self.totals.files += 1
        self.totals.bytes += size
        self.totals.last_digest = digest


def _local_target(given: str, name: str) -> Path:
    """Where a download of ``name`` goes: into ``given`` if it is a directory, else ``given``."""
    local = Path(given)
    if local.is_dir():
        return local / name
    if given.endswith("/"):
        raise NotFound(f"{given}: no such local directory", "create it first, or name a file")
    parent = local.parent
    if not parent.is_dir():
        raise NotFound(f"{parent}: no such local directory", "create it first")
    return local


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _raise(exc: OSError) -> None:
    raise exc


__all__ = ["CopySpec", "Progress", "RemotePath", "parse_remote", "parse_spec", "register", "run_copy"]
