"""Seams of the object store room: where command output and session transcripts are kept.

Two backends share one Protocol: :class:`~fleetops.controller.objects.local.LocalDirectoryStore`
(the embedded default, a directory under the state dir) and
:class:`~fleetops.controller.objects.s3.S3Store` (any S3 endpoint). Callers never learn which one
they hold.

Keys are ``/``-separated relative paths such as ``commands/<command-id>/<host>/stdout``; see
:func:`fleetops.controller.objects.keys.validate_key` for the exact rules.

Errors (from :mod:`fleetops.common.errors`):

- ``InvalidInput`` — a malformed key or prefix; nothing was touched.
- ``NotFound`` — ``get``/``read`` of a key that does not exist.
- ``Conflict`` — the local backend cannot store a key because another key occupies its path
  (``a`` is an object and ``a/b`` is written, or the reverse).
- ``Unavailable`` — the store cannot be used now: down or unreachable, or (as
  :class:`StoreUnavailable`) refusing the controller's credentials, its access, its bucket or
  region. Never an auth error: a store that refuses the *controller* says nothing about the
  caller whose request touched it, so these reach agents and operators as the controller's own
  trouble (gRPC ``UNAVAILABLE``), never as ``UNAUTHENTICATED``/``PERMISSION_DENIED``.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from fleetops.common.errors import Unavailable

#: fleetops-controller's exit status when the object store check at start fails on something only
#: a configuration change can fix (EX_CONFIG, as the agent's "revoked"; the unit does not restart it).
EXIT_CONFIG = 78


class StoreProblem(enum.Enum):
    """Why the object store cannot be used, i.e. what an operator has to fix."""

    CREDENTIALS = "credentials"  # the store rejected the controller's key id / secret / signature
    ACCESS = "access"  # authenticated, but the credentials lack a right on the bucket
    BUCKET = "bucket"  # the bucket does not exist (or its name is refused)
    REGION = "region"  # the bucket lives in another region than configured
    UNREACHABLE = "unreachable"  # no answer: down, refused, timed out, DNS
    FAILING = "failing"  # it answers with server errors or refuses requests for another reason

    @property
    def is_configuration(self) -> bool:
        """Only a change of settings (or of the store) fixes it; waiting does not."""
        return self in (StoreProblem.CREDENTIALS, StoreProblem.ACCESS, StoreProblem.BUCKET, StoreProblem.REGION)


class StoreUnavailable(Unavailable):
    """The object store cannot be used now, and why (:attr:`problem`); the controller's own trouble.

    A subclass of ``Unavailable``: callers keep what they hold (spool) and retry later. The CLI
    exit code is :data:`EXIT_CONFIG` for problems only a configuration change fixes.
    """

    def __init__(self, message: str, hint: str = "", *, problem: StoreProblem = StoreProblem.FAILING) -> None:
        super().__init__(message, hint)
        self.problem = problem
        if problem.is_configuration:
            self.exit_code = EXIT_CONFIG


@dataclass(frozen=True)
class ObjectInfo:
    """What is known about one stored object.

    Attributes:
        key: the object's key.
        size: its length in bytes.
        sha256: lowercase hex SHA-256 of the content, computed on our side while writing, or
            ``""`` when unknown (``head`` does not read the content back).
    """

    key: str
    size: int
    sha256: str


class ObjectWriter(Protocol):
    """A streamed upload of one object; it becomes visible only once :meth:`close` returns.

    Memory stays bounded by the backend's part size whatever the object's size. A writer is used
    from one task at a time. Call exactly one of :meth:`close` or :meth:`abort`; ``abort`` after
    a failed ``write`` or ``close`` is allowed and cleans up what it can.
    """

    async def write(self, data: bytes) -> None:
        """Append ``data``; a full part is uploaded as soon as one is buffered.

        Raises:
            Unavailable: the store is unreachable (the upload is then best abandoned with abort).
            StoreUnavailable: the store refused our credentials, access or bucket.
        """
        ...

    async def close(self) -> ObjectInfo:
        """Complete the object and return its size and SHA-256.

        Raises:
            Unavailable: the store is unreachable; the object was not written.
            StoreUnavailable: the store refused our credentials, access or bucket.
            Conflict: (local backend) another key occupies the object's path.
        """
        ...

    async def abort(self) -> None:
        """Discard everything written so far; no object appears. Idempotent."""
        ...


class ObjectStore(Protocol):
    """A flat namespace of immutable-once-written objects addressed by key."""

    async def put(self, key: str, data: bytes) -> ObjectInfo:
        """Store ``data`` under ``key`` atomically, replacing any previous object.

        Raises:
            InvalidInput: ``key`` is malformed.
            Unavailable: the store is unreachable.
            StoreUnavailable: the store refused our credentials, access or bucket.
        """
        ...

    async def get(self, key: str) -> bytes:
        """The whole content of ``key`` (use :meth:`read` for large objects).

        Raises:
            NotFound: there is no object at ``key``.
            InvalidInput: ``key`` is malformed.
            Unavailable: the store is unreachable.
        """
        ...

    def read(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """Stream the content of ``key`` in chunks of about ``chunk_size`` bytes.

        The object is looked up on the first ``__anext__``, so errors surface there.

        Raises:
            NotFound: there is no object at ``key``.
            InvalidInput: ``key`` is malformed or ``chunk_size`` is not positive.
            Unavailable: the store is unreachable.
        """
        ...

    async def writer(self, key: str) -> ObjectWriter:
        """Start a streamed upload to ``key`` (see :class:`ObjectWriter`).

        Raises:
            InvalidInput: ``key`` is malformed.
        """
        ...

    async def head(self, key: str) -> ObjectInfo | None:
        """Size of the object at ``key`` (``sha256`` is ``""``), or ``None`` when there is none.

        Raises:
            InvalidInput: ``key`` is malformed.
            Unavailable: the store is unreachable.
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove the object at ``key``; removing a missing object is not an error.

        Raises:
            InvalidInput: ``key`` is malformed.
            Unavailable: the store is unreachable.
        """
        ...

    async def list(self, prefix: str) -> builtins.list[str]:
        """Every key under ``prefix``, sorted.

        ``prefix`` matches whole path segments: ``commands/c1`` lists ``commands/c1/h/stdout``
        but not ``commands/c10/...``. ``""`` lists every key; a trailing ``/`` is ignored.

        Raises:
            InvalidInput: ``prefix`` is malformed.
            Unavailable: the store is unreachable.
        """
        ...

    async def close(self) -> None:
        """Release connections and threads; the store is not used afterwards."""
        ...
