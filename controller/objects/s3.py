"""Objects in an S3 bucket (AWS, MinIO, SeaweedFS, Ceph RGW...), through obstore.

obstore (Rust ``object_store`` under the hood) signs with SigV4, pools connections, retries
transient failures with backoff, and streams: large objects go up as multipart uploads of
``part_size`` parts, at most ``max_concurrency`` of them in flight, so memory stays at a few parts
whatever the object's size.

Timeouts and retries are kept short on purpose: the callers (command output, transcripts) spool
to local disk while the store is down, so failing in seconds beats hanging for minutes.

Aborted or abandoned multipart uploads are aborted when we can; a controller that dies mid-upload
leaves parts behind, so give the bucket a lifecycle rule that removes incomplete multipart
uploads after a day.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import ipaddress
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import obstore
from obstore.store import S3Store as _ObstoreS3Store

from fleetops.common.errors import InternalError, InvalidInput, NotFound
from fleetops.controller.objects.aws_credentials import StaticCredentials, resolve_credentials
from fleetops.controller.objects.interfaces import ObjectInfo
from fleetops.controller.objects.keys import validate_key, validate_prefix
from fleetops.controller.objects.s3_errors import S3Target, translate

if TYPE_CHECKING:
    from obstore import AsyncWritableFile
    from obstore.store import S3Credential

log = logging.getLogger(__name__)

MiB = 1 << 20
#: S3 refuses parts smaller than this (except the last one).
MIN_PART_SIZE = 5 * MiB
#: ...and larger than this.
MAX_PART_SIZE = 5 * 1024 * MiB
DEFAULT_PART_SIZE = 8 * MiB
# Hashing a large put() payload would stall the event loop for milliseconds; hand it to a thread.
_HASH_IN_THREAD_ABOVE = 1 * MiB


class S3Store:
    """An S3 bucket, or a prefix in one: an :class:`~fleetops.controller.objects.interfaces.ObjectStore`.

    Args:
        bucket: the bucket name.
        endpoint_url: ``scheme://host[:port]`` of an S3-compatible server; ``None`` for AWS
            (or ``AWS_ENDPOINT_URL`` from the environment).
        region: the bucket's region (SeaweedFS and MinIO accept any; AWS needs the right one).
        prefix: a key prefix inside the bucket under which all keys live.
        path_style: address the bucket as ``endpoint/bucket/key`` rather than
            ``bucket.endpoint/key``; self-hosted servers usually need it.
        access_key_id: with ``secret_access_key``; when neither is given, the standard AWS chain
            applies (see :mod:`fleetops.controller.objects.aws_credentials`).
        secret_access_key: see ``access_key_id``.
        session_token: for temporary credentials given explicitly.
        allow_http: allow a plain ``http://`` endpoint (tests, a store on localhost).
        part_size: multipart part size in bytes, at least 5 MiB (S3's minimum).
        max_concurrency: parts of one writer uploaded at once; memory per writer is about
            ``(max_concurrency + 2) * part_size``.
        connect_timeout: seconds to establish a connection.
        read_timeout: seconds a response may stall between two reads.
        request_timeout: seconds one request may take in all, including a streamed ``read``.
        max_retries: retries of a failed request (connection errors, 5xx), with backoff.
        retry_timeout: seconds after which a failing request is not retried any more.

    Raises:
        InvalidInput: a parameter is malformed (bucket name, endpoint, part size, only one of
            the key pair, an ``http`` endpoint without ``allow_http``).
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        prefix: str = "",
        path_style: bool = False,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        allow_http: bool = False,
        part_size: int = DEFAULT_PART_SIZE,
        max_concurrency: int = 2,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        request_timeout: float = 600.0,
        max_retries: int = 3,
        retry_timeout: float = 30.0,
    ) -> None:
        _check_bucket(bucket)
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise InvalidInput(
                f"S3 part size {part_size} is out of range",
                f"S3 parts are {MIN_PART_SIZE} (5 MiB) to {MAX_PART_SIZE} (5 GiB) bytes",
            )
        if max_concurrency < 1:
            raise InvalidInput(f"max_concurrency must be at least 1, not {max_concurrency}")
        self.bucket = bucket
        self.prefix = validate_prefix(prefix)
        self.part_size = part_size
        self._max_concurrency = max_concurrency
        self._where = endpoint_url or f"AWS S3 ({region})"
        config: dict[str, Any] = {"region": region, "virtual_hosted_style_request": not path_style}
        if endpoint_url:
            config["endpoint"] = _endpoint(endpoint_url, bucket, path_style=path_style, allow_http=allow_http)
        credentials = resolve_credentials(access_key_id, secret_access_key, session_token)
        self._store = _ObstoreS3Store(
            bucket,
            prefix=self.prefix or None,
            config=config,  # type: ignore[arg-type]  # a plain dict of S3Config keys
            client_options={
                "allow_http": allow_http,
                "connect_timeout": timedelta(seconds=connect_timeout),
                "read_timeout": timedelta(seconds=read_timeout),
                "timeout": timedelta(seconds=request_timeout),
            },
            retry_config={
                "max_retries": max_retries,
                "retry_timeout": timedelta(seconds=retry_timeout),
                "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=2)},
            },
            # Explicit or file credentials go through a provider rather than the config: obstore
            # also reads AWS_SESSION_TOKEN from the environment, and would sign our explicit keys
            # with that unrelated token.
            credential_provider=_static_provider(credentials) if credentials else None,
        )

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, endpoint={self._where!r}, prefix={self.prefix!r})"

    # -- ObjectStore --------------------------------------------------------------------------
    async def put(self, key: str, data: bytes) -> ObjectInfo:
        """Upload ``data`` to ``key`` (multipart above ``part_size``). See ``ObjectStore.put``.

        Raises:
            InvalidInput: ``key`` is malformed.
            Unavailable: the store is unreachable or failing.
            StoreUnavailable: the store refused our credentials, access or bucket.
        """
        validate_key(key)
        if len(data) > _HASH_IN_THREAD_ABOVE:
            digest = await asyncio.to_thread(_sha256_hex, data)
        else:
            digest = _sha256_hex(data)
        with self._errors(key):
            await obstore.put_async(
                self._store, key, data, chunk_size=self.part_size, max_concurrency=self._max_concurrency
            )
        return ObjectInfo(key=key, size=len(data), sha256=digest)

    async def get(self, key: str) -> bytes:
        """The whole object. See ``ObjectStore.get``.

        Raises:
            InvalidInput: ``key`` is malformed.
            NotFound: no object at ``key``.
            Unavailable: the store is unreachable or failing.
            StoreUnavailable: the store refused our credentials, access or bucket.
        """
        validate_key(key)
        with self._errors(key):
            result = await obstore.get_async(self._store, key)
            return bytes(await result.bytes_async())

    def read(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """Stream the object in one GET. See ``ObjectStore.read``.

        Chunks are at least ``chunk_size`` bytes (except the last) and rarely much more. The
        whole stream must finish within ``request_timeout``.

        Raises:
            InvalidInput: ``key`` is malformed or ``chunk_size`` is not positive (at once).
            NotFound: no object at ``key`` (on the first ``__anext__``).
            Unavailable: the store is unreachable, or the stream broke off.
            StoreUnavailable: the store refused our credentials, access or bucket.
        """
        validate_key(key)
        if chunk_size <= 0:
            raise InvalidInput(f"chunk_size must be positive, not {chunk_size}")
        return self._chunks(key, chunk_size)

    async def writer(self, key: str) -> S3Writer:
        """Start a streamed (multipart) upload to ``key``. See ``ObjectStore.writer``.

        Nothing is sent until ``part_size`` bytes are written or the writer is closed.

        Raises:
            InvalidInput: ``key`` is malformed.
        """
        validate_key(key)
        inner = obstore.open_writer_async(
            self._store, key, buffer_size=self.part_size, max_concurrency=self._max_concurrency
        )
        return S3Writer(key, inner, self.part_size, lambda: self._errors(key))

    async def head(self, key: str) -> ObjectInfo | None:
        """Size of the object at ``key``; ``sha256`` is ``""``. See ``ObjectStore.head``.

        Raises:
            InvalidInput: ``key`` is malformed.
            Unavailable: the store is unreachable or failing.
            StoreUnavailable: the store refused our credentials, access or bucket.
        """
        validate_key(key)
        try:
            with self._errors(key):
                meta = await obstore.head_async(self._store, key)
        except NotFound:
            return None
        return ObjectInfo(key=key, size=meta["size"], sha256="")

    async def delete(self, key: str) -> None:
        """Delete ``key``; a missing object is fine. See ``ObjectStore.delete``.

        Raises:
            InvalidInput: ``key`` is malformed.
            Unavailable: the store is unreachable or failing.
            StoreUnavailable: the store refused our credentials, access or bucket.
        """
        validate_key(key)
        with contextlib.suppress(NotFound), self._errors(key):
            await obstore.delete_async(self._store, key)

    async def list(self, prefix: str) -> builtins.list[str]:
        """Keys under ``prefix`` (whole segments), sorted. See ``ObjectStore.list``.

        Raises:
            InvalidInput: ``prefix`` is malformed.
            Unavailable: the store is unreachable or failing.
            StoreUnavailable: the store refused our credentials, access or bucket.
        """
        prefix = validate_prefix(prefix)
        keys: builtins.list[str] = []
        with self._errors(prefix):
            async for batch in obstore.list(self._store, prefix or None):
                keys.extend(meta["path"] for meta in batch)
        keys.sort()
        return keys

    async def close(self) -> None:
        """Drop the client; obstore closes pooled connections when it is collected."""

    # -- internals ----------------------------------------------------------------------------
    async def _chunks(self, key: str, chunk_size: int) -> AsyncIterator[bytes]:
        with self._errors(key):
            result = await obstore.get_async(self._store, key)
            async for chunk in result.stream(min_chunk_size=chunk_size):
                yield bytes(chunk)

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        try:
            yield
        except (obstore.exceptions.BaseError, OSError) as exc:
            raise translate(exc, S3Target(self._where, self.bucket, key)) from exc


class S3Writer:
    """One streamed upload: parts of exactly ``part_size`` bytes are handed to obstore as they fill.

    Buffering here (rather than leaving it all to obstore) keeps part boundaries under our
    control and lets :attr:`part_count` report how the object was uploaded.
    """

    def __init__(
        self,
        key: str,
        inner: AsyncWritableFile,
        part_size: int,
        errors: Callable[[], contextlib.AbstractContextManager[None]],
    ) -> None:
        self._key = key
        self._inner: AsyncWritableFile | None = inner
        self._part_size = part_size
        self._errors = errors
        self._buffer = bytearray()
        self._sha256 = hashlib.sha256()
        self._size = 0
        self._parts = 0

    @property
    def part_count(self) -> int:
        """Parts handed to the upload so far; after ``close``, the object's total (1 for a single PUT)."""
        return self._parts

    async def write(self, data: bytes) -> None:
        """Buffer ``data``; hand each full part to obstore, waiting while too many are in flight.

        Raises:
            Unavailable: the store is unreachable (call :meth:`abort`).
            StoreUnavailable: the store refused our credentials, access or bucket.
            InternalError: the writer was closed or aborted already.
        """
        inner = self._open()
        if len(data) > _HASH_IN_THREAD_ABOVE:
            await asyncio.to_thread(self._sha256.update, data)
        else:
            self._sha256.update(data)
        self._size += len(data)
        self._buffer += data
        while len(self._buffer) >= self._part_size:
            # bytes, not a view of the bytearray: obstore may keep a reference to the buffer
            # after write() returns, while the bytearray is reused.
            part = bytes(self._buffer[: self._part_size])
            del self._buffer[: self._part_size]
            with self._errors():
                await inner.write(part)
            self._parts += 1

    async def close(self) -> ObjectInfo:
        """Upload the rest and complete the object (a single PUT when it never filled a part).

        Raises:
            Unavailable: the store is unreachable; nothing was written (:meth:`abort` is then
                harmless: a failed completion already aborts the upload when it can).
            StoreUnavailable: the store refused our credentials, access or bucket.
            InternalError: the writer was closed or aborted already.
        """
        inner = self._open()
        with self._errors():
            if self._buffer or self._parts == 0:
                await inner.write(bytes(self._buffer))
                self._parts += 1
            self._buffer = bytearray()
        try:
            with self._errors():
                await inner.close()
        finally:
            # obstore consumes its writer in close() even when that fails, and then aborts the
            # multipart upload itself: nothing is left for abort() to do.
            self._inner = None
        return ObjectInfo(key=self._key, size=self._size, sha256=self._sha256.hexdigest())

    async def abort(self) -> None:
        """Abort the multipart upload, discarding uploaded parts. Best effort, never raises.

        If the store cannot be reached, the parts stay until the bucket's lifecycle rule for
        incomplete multipart uploads removes them; a warning is logged.
        """
        inner, self._inner = self._inner, None
        self._buffer = bytearray()
        if inner is None:
            return
        try:
            # obstore exposes BufWriter::abort only through the async context manager's exit
            # with an exception: that is the documented way to discard a writer.
            await inner.__aexit__(_Aborted, _Aborted(), None)
        except Exception as exc:  # best effort, see the docstring
            log.warning("could not abort the upload of %r: %s", self._key, str(exc).split("\n", 1)[0])

    def _open(self) -> AsyncWritableFile:
        if self._inner is None:
            raise InternalError(f"writer for {self._key!r} is already closed or aborted")
        return self._inner


class _Aborted(Exception):
    """Passed to obstore's writer to make its context-manager exit abort the upload."""


def _static_provider(credentials: StaticCredentials) -> Any:
    def provide() -> S3Credential:
        return {
            "access_key_id": credentials.access_key_id,
            "secret_access_key": credentials.secret_access_key,
            "token": credentials.session_token,
            "expires_at": None,  # never expires: obstore asks once and caches
        }

    return provide


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_bucket(bucket: str) -> None:
    # Lenient on purpose: legacy us-east-1 buckets may have capitals and underscores.
    if not (3 <= len(bucket) <= 63) or not all(c.isascii() and (c.isalnum() or c in ".-_") for c in bucket):
        raise InvalidInput(
            f"invalid S3 bucket name {bucket!r}",
            "bucket names are 3-63 letters, digits, '.', '-' or '_', e.g. fleetops-output",
        )


def _endpoint(url: str, bucket: str, *, path_style: bool, allow_http: bool) -> str:
    """The endpoint obstore wants: with virtual-hosted style it must already name the bucket."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"invalid S3 endpoint {url!r}",
            "endpoints look like https://s3.example.com or http://127.0.0.1:8333",
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidInput(
            f"invalid S3 endpoint {url!r}: it must not have a path or query", "give only scheme://host[:port]"
        )
    if parts.scheme == "http" and not allow_http:
        raise InvalidInput(
            f"S3 endpoint {url!r} is plain http",
            "use https, or allow http explicitly (allow_http=True) for a store on a trusted network",
        )
    if path_style:
        return f"{parts.scheme}://{parts.netloc}"
    host = parts.hostname
    if host == "localhost" or _is_ip(host):
        raise InvalidInput(
            f"S3 endpoint {url!r} is an address, so the bucket cannot be addressed as a subdomain",
            "use path-style addressing (path_style=True, or path_style=true in the object store URL)",
        )
    if host.startswith(f"{bucket}."):
        return f"{parts.scheme}://{parts.netloc}"
    return urlunsplit((parts.scheme, f"{bucket}.{parts.netloc}", "", "", ""))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
