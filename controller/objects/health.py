"""Is the object store usable? The start-up check, and the one place that tracks the answer.

- :func:`check_store` is what ``fleetops-controller serve`` runs before it accepts anything: the
  bucket is listed, a probe object written, read back and deleted. It raises
  :class:`~fleetops.controller.objects.interfaces.StoreUnavailable` naming the step that failed.
- :class:`StoreHealth` holds the current verdict ("up", or "degraded" with the problem and what to
  fix), logs each change once (never per failed call), and tells its listeners (the gRPC health
  service and the ``fleetops_object_store_up`` metric are wired to it in ``app.py``).
- :class:`MonitoredStore` wraps the configured store so every caller (command output, transcripts,
  the audit exporter, patch reports) feeds that verdict: a store failure turns it degraded, a
  completed write (or a passing check) turns it up again.
"""

from __future__ import annotations

import builtins
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from fleetops.common.errors import FleetopsError, Unavailable
from fleetops.controller.objects.interfaces import (
    ObjectInfo,
    ObjectStore,
    ObjectWriter,
    StoreProblem,
    StoreUnavailable,
)

log = logging.getLogger(__name__)

#: Where the start-up check writes its probe objects (deleted right after).
PROBE_PREFIX = "fleetops-probe"


@dataclass(frozen=True)
class StoreStatus:
    """The verdict on the object store.

    Attributes:
        up: the last operation that could tell succeeded.
        problem: why it is degraded (``None`` while up).
        message: what failed, naming the endpoint and bucket (``""`` while up).
        hint: what an operator has to do about it (``""`` while up).
    """

    up: bool
    problem: StoreProblem | None = None
    message: str = ""
    hint: str = ""


Listener = Callable[[StoreStatus], None]


class StoreHealth:
    """The object store's current status, changed by :meth:`failed` / :meth:`succeeded`.

    Args:
        store: what the store is, for log lines (its ``repr`` names endpoint and bucket).
        spool_note: appended to the "degraded" log line, e.g. where output waits meanwhile.
    """

    def __init__(self, store: str, spool_note: str = "") -> None:
        self._store = store
        self._spool_note = spool_note
        self._status = StoreStatus(up=True)
        self._listeners: list[Listener] = []

    @property
    def status(self) -> StoreStatus:
        return self._status

    @property
    def up(self) -> bool:
        return self._status.up

    def on_change(self, listener: Listener) -> None:
        """Call ``listener(status)`` now and after every change; it must not raise or block."""
        self._listeners.append(listener)
        listener(self._status)

    def failed(self, exc: Unavailable) -> None:
        """The store could not do something it should: degraded, logged once per distinct problem."""
        problem = exc.problem if isinstance(exc, StoreUnavailable) else StoreProblem.UNREACHABLE
        status = StoreStatus(up=False, problem=problem, message=exc.message, hint=exc.hint)
        previous, self._status = self._status, status
        if previous.up or previous.problem is not problem:
            log.error(
                "object store DEGRADED (%s): %s; to fix: %s%s",
                problem.value,
                exc.message,
                exc.hint or "see the object store's logs",
                f"; {self._spool_note}" if self._spool_note else "",
            )
            self._notify()

    def succeeded(self) -> None:
        """A write (or the check) went through: the store is up."""
        if self._status.up:
            return
        was = self._status
        self._status = StoreStatus(up=True)
        log.warning("object store is back (%s) after: %s; spooled objects are uploaded now", self._store, was.message)
        self._notify()

    def _notify(self) -> None:
        for listener in self._listeners:
            try:
                listener(self._status)
            except Exception:  # a listener's bug must not hide the store's state from the others
                log.exception("object store health listener %r failed", listener)


async def check_store(store: ObjectStore, tag: str = "") -> None:
    """Prove the store usable: list the bucket, write a probe object, read it back, delete it.

    Args:
        store: the store to check.
        tag: goes into the probe's key (e.g. the replica), so concurrent checks never collide.

    Raises:
        StoreUnavailable: a step failed; the message names the step, the store and what it said.
    """
    key = f"{PROBE_PREFIX}/{_safe(tag) or 'controller'}-{secrets.token_hex(8)}"
    payload = b"fleetops object store check " + secrets.token_hex(16).encode()
    step = "listing the bucket"
    try:
        await store.list(PROBE_PREFIX)
        step = f"writing the probe object {key!r}"
        await store.put(key, payload)
        step = f"reading the probe object {key!r} back"
        if await store.get(key) != payload:
            raise StoreUnavailable(
                f"{store!r} returned other bytes for the probe object {key!r} than were written",
                "check the object store (or a proxy in front of it) for corruption or caching",
            )
        step = f"deleting the probe object {key!r}"
        await store.delete(key)
    except StoreUnavailable as exc:
        raise StoreUnavailable(
            f"object store check failed {step}: {exc.message}", exc.hint, problem=exc.problem
        ) from exc
    except FleetopsError as exc:
        # NotFound right after a put, Conflict or InvalidInput from a local directory...: the store
        # misbehaves, whatever the class; nothing the caller did.
        problem = StoreProblem.UNREACHABLE if isinstance(exc, Unavailable) else StoreProblem.FAILING
        raise StoreUnavailable(
            f"object store check failed {step} in {store!r}: {exc.message}",
            exc.hint or "check the object store's configuration and logs",
            problem=problem,
        ) from exc


def _safe(tag: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "-" for c in tag)[:64].strip(".")


class MonitoredStore:
    """An :class:`ObjectStore` that reports every outcome to a :class:`StoreHealth`.

    ``Unavailable`` from any call marks the store degraded; a completed ``put`` or writer marks it
    up. Reads alone do not mark it up (a store may serve reads and still refuse writes). Errors
    pass through unchanged.
    """

    def __init__(self, inner: ObjectStore, health: StoreHealth) -> None:
        self._inner = inner
        self.health = health

    def __repr__(self) -> str:
        return repr(self._inner)

    @property
    def inner(self) -> ObjectStore:
        return self._inner

    async def check(self, tag: str = "") -> None:
        """:func:`check_store` through this wrapper; the health follows its outcome.

        Raises:
            StoreUnavailable: see :func:`check_store`.
        """
        try:
            await check_store(self._inner, tag)
        except StoreUnavailable as exc:
            self.health.failed(exc)
            raise
        self.health.succeeded()

    async def put(self, key: str, data: bytes) -> ObjectInfo:
        try:
            info = await self._inner.put(key, data)
        except Unavailable as exc:
            self.health.failed(exc)
            raise
        self.health.succeeded()
        return info

    async def get(self, key: str) -> bytes:
        try:
            return await self._inner.get(key)
        except Unavailable as exc:
            self.health.failed(exc)
            raise

    async def read(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner.read(key, chunk_size):
                yield chunk
        except Unavailable as exc:
            self.health.failed(exc)
            raise

    async def writer(self, key: str) -> ObjectWriter:
        return _MonitoredWriter(await self._inner.writer(key), self.health)

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            return await self._inner.head(key)
        except Unavailable as exc:
            self.health.failed(exc)
            raise

    async def delete(self, key: str) -> None:
        try:
            await self._inner.delete(key)
        except Unavailable as exc:
            self.health.failed(exc)
            raise

    async def list(self, prefix: str) -> builtins.list[str]:
        try:
            return await self._inner.list(prefix)
        except Unavailable as exc:
            self.health.failed(exc)
            raise

    async def close(self) -> None:
        await self._inner.close()


class _MonitoredWriter:
    def __init__(self, inner: ObjectWriter, health: StoreHealth) -> None:
        self._inner = inner
        self._health = health

    async def write(self, data: bytes) -> None:
        try:
            await self._inner.write(data)
        except Unavailable as exc:
            self._health.failed(exc)
            raise

    async def close(self) -> ObjectInfo:
        try:
            info = await self._inner.close()
        except Unavailable as exc:
            self._health.failed(exc)
            raise
        self._health.succeeded()
        return info

    async def abort(self) -> None:
        await self._inner.abort()
