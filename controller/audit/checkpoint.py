"""Signed checkpoints of the audit chain's head, kept in the object store (outside the database).

The hash chain shows an edited, deleted or reordered event, but not the newest events cut off:
a shorter chain is still a valid chain. A checkpoint is the outside anchor that shows it, after
CloudTrail's digest files: periodically (hourly by default), when the controller stops cleanly
and on ``fleetops-controller audit checkpoint``, the controller writes a small signed document
naming the chain head it saw. ``opsctl audit verify`` then compares the database with the newest
checkpoint: every event it covers must still be there with the same hash.

Layout (a fixed prefix, beside the export's ``audit/``)::

    audit-checkpoints/000000001050-20261205T100000123456Z.json

named by the head event id (zero-padded) and the checkpoint's time, so the key order is the
chain order. The content is one line of canonical JSON (sorted keys, no spaces, UTF-8)::

    {"controller": "c1", "events": 1050, "format": "fleetops-audit-checkpoint/1",
     "head_hash": "...", "head_id": 1050, "head_time": "2026-12-05T09:59:58.123456Z",
     "key_id": "sha256:...", "previous_key": "audit-checkpoints/...json", "previous_sha256": "...",
     "public_key": "<base64 raw Ed25519>", "signature": "<base64>", "time": "2026-12-05T10:00:00.123456Z"}

``signature`` is Ed25519 over the canonical JSON of every other field
(:mod:`fleetops.controller.audit.signing` has the key). ``previous_key``/``previous_sha256`` name
the checkpoint before it and the SHA-256 of its bytes, so checkpoints chain too. The embedded
``public_key`` is for readers elsewhere; a verifier trusts only the keys in the controller's
``ca/`` directory, never the key a document brings along.

A checkpoint is written only on top of one it can verify and only when the database still holds
that checkpoint's head event with the same hash. A truncated database therefore cannot earn a
fresh checkpoint that would hide the truncation: the writer refuses (logged as an error at every
pass) and ``opsctl audit verify`` keeps naming the missing events.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fleetops.common.errors import Conflict, FleetopsError, NotFound, Unavailable
from fleetops.controller.audit.export import DEFAULT_PREFIX as DEFAULT_EXPORT_PREFIX
from fleetops.controller.audit.export import verify_export
from fleetops.controller.audit.models import GENESIS_HASH, AuditVerification, format_time
from fleetops.controller.audit.periodic import PeriodicPass
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.audit.signing import CheckpointSigner, CheckpointVerifier, public_key_text
from fleetops.controller.objects.interfaces import ObjectStore

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "fleetops-audit-checkpoint/1"
CHECKPOINT_PREFIX = "audit-checkpoints/"
DEFAULT_INTERVAL = 3600.0
# A checkpoint is a few hundred bytes; anything much larger in its place is not one (and is not read).
MAX_CHECKPOINT_BYTES = 16 * 1024
# Replicas sharing PostgreSQL write checkpoints one at a time (keys apart from the append and export locks).
CHECKPOINT_LOCK_KEY = 0x61756469740C

_NAME = re.compile(r"^(\d{12})-(\d{8}T\d{12}Z)\.json$")
_NAME_TIME = "%Y%m%dT%H%M%S%fZ"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FIELDS = frozenset(
    {
        "format",
        "controller",
        "time",
        "head_id",
        "head_hash",
        "head_time",
        "events",
        "previous_key",
        "previous_sha256",
        "key_id",
        "public_key",
        "signature",
    }
)

# CheckpointCheck.status values. The first three are not failures (nothing found wrong), the rest are.
OK, NONE, UNAVAILABLE, BEHIND = "ok", "none", "unavailable", "behind"
MISSING, DIFFERS, BAD_SIGNATURE, INVALID = "missing", "differs", "bad-signature", "invalid"
FAILURES = frozenset({MISSING, DIFFERS, BAD_SIGNATURE, INVALID})


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read back (and verified) or just written."""

    key: str
    time: datetime
    controller: str
    head_id: int
    head_hash: str
    events: int
    previous_key: str
    previous_sha256: str
    key_id: str
    # SHA-256 of the stored bytes: what the next checkpoint's previous_sha256 holds.
    sha256: str


@dataclass(frozen=True)
class CheckpointCheck:
    """How the database compares with the newest checkpoint.

    ``status`` is one of ``ok``, ``none`` (no checkpoint yet), ``unavailable`` (the store could
    not be read), ``missing`` (events it covers are gone; ``missing_from``..``missing_to``),
    ``differs`` (its head event has another hash), ``bad-signature`` or ``invalid`` (the
    checkpoint itself cannot be trusted), or, comparing an export, ``behind`` (the export has
    not reached the checkpoint's head yet). ``message`` says it in words.
    """

    status: str
    message: str
    checkpoint: Checkpoint | None = None
    missing_from: int = 0
    missing_to: int = 0

    @property
    def failed(self) -> bool:
        return self.status in FAILURES


class CheckpointError(FleetopsError):
    """A stored checkpoint that cannot be trusted; ``status`` is ``bad-signature`` or ``invalid``."""

    exit_code = 1

    def __init__(self, status: str, key: str, message: str, hint: str = "") -> None:
        super().__init__(f"checkpoint {key} {message}", hint)
        self.status = status
        self.key = key


def checkpoint_key(head_id: int, time: datetime) -> str:
    return f"{CHECKPOINT_PREFIX}{head_id:012d}-{time.astimezone(UTC).strftime(_NAME_TIME)}.json"


def short_time(time: datetime) -> str:
    """A checkpoint's time as messages show it: ``2026-12-05T10:00:00Z``."""
    return time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_range(first: int, last: int) -> str:
    return f"event {first}" if first == last else f"events {first}..{last}"


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def encode_checkpoint(signer: CheckpointSigner, body: dict[str, Any]) -> bytes:
    """The stored bytes of a checkpoint: ``body`` plus key id, public key and signature, canonical."""
    doc = {**body, "key_id": signer.key_id, "public_key": public_key_text(signer.verifier.public)}
    doc["signature"] = base64.b64encode(signer.sign(_canonical(doc))).decode()
    return _canonical(doc) + b"\n"


def decode_checkpoint(key: str, data: bytes, trusted: Mapping[str, CheckpointVerifier]) -> Checkpoint:
    """Verify and parse a stored checkpoint; the signature is checked before anything is believed.

    ``trusted`` holds the public keys it may be signed with, by key id (never the key it brings).

    Raises:
        CheckpointError: ``bad-signature`` when no trusted key signed exactly this content,
            ``invalid`` when it is not a well-formed checkpoint or disagrees with its name.
    """

    def invalid(problem: str) -> CheckpointError:
        return CheckpointError(INVALID, key, problem, "it was not written by a fleetops controller as it is now")

    def forged(problem: str) -> CheckpointError:
        return CheckpointError(
            BAD_SIGNATURE,
            key,
            problem,
            "the checkpoint was altered or forged in the object store: keep it as evidence, then find out who "
            "can write there (and use S3 Object Lock)",
        )

    if len(data) > MAX_CHECKPOINT_BYTES:
        raise invalid(f"is {len(data)} bytes, larger than any checkpoint ({MAX_CHECKPOINT_BYTES})")
    try:
        doc = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise invalid(f"is not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        raise invalid(f"is not a {CHECKPOINT_FORMAT} document")
    if set(doc) != _FIELDS:
        missing, extra = sorted(_FIELDS - set(doc)), sorted(set(doc) - _FIELDS)
        raise invalid(f"has other fields than a checkpoint (missing {missing}, unexpected {extra})")
    signature, signed_by = doc.pop("signature"), doc.get("key_id")
    if not isinstance(signed_by, str) or signed_by not in trusted:
        raise forged(
            f"is signed by key {str(signed_by)[:80]!r}, which this controller does not trust "
            f"(it trusts {', '.join(sorted(trusted)) or 'no key'})"
        )
    try:
        raw_signature = base64.b64decode(signature, validate=True) if isinstance(signature, str) else b""
    except (binascii.Error, ValueError):
        raw_signature = b""
    if not raw_signature or not trusted[signed_by].verify(raw_signature, _canonical(doc)):
        raise forged(f"does not verify against key {signed_by}: its content is not what the controller signed")
    # Signed by us: the fields are ours, but check them anyway (a bug, or a key that leaked).
    if data != _canonical({**doc, "signature": signature}) + b"\n":
        raise invalid("is not stored in the canonical form the controller writes (edited?)")
    for field in ("controller", "time", "head_hash", "head_time", "previous_key", "previous_sha256"):
        if not isinstance(doc[field], str):
            raise invalid(f"has a {field} that is not a string")
    for field in ("head_id", "events"):
        if not isinstance(doc[field], int) or isinstance(doc[field], bool) or doc[field] < 0:
            raise invalid(f"has a {field} that is not a count")
    if doc["events"] != doc["head_id"]:
        raise invalid("counts another number of events than its head id")
    if not _HEX64.match(doc["head_hash"]) or (doc["previous_sha256"] and not _HEX64.match(doc["previous_sha256"])):
        raise invalid("has a hash that is not 64 hex digits")
    try:
        time = datetime.fromisoformat(doc["time"])
    except ValueError:
        raise invalid("has a time that is not ISO 8601") from None
    if time.tzinfo is None or format_time(time) != doc["time"]:
        raise invalid("has a time not in the canonical form")
    if key != checkpoint_key(doc["head_id"], time):
        expected = checkpoint_key(doc["head_id"], time)
        raise invalid(f"is stored under another name than its head id and time give ({expected})")
    return Checkpoint(
        key=key,
        time=time,
        controller=doc["controller"],
        head_id=doc["head_id"],
        head_hash=doc["head_hash"],
        events=doc["events"],
        previous_key=doc["previous_key"],
        previous_sha256=doc["previous_sha256"],
        key_id=signed_by,
        sha256=hashlib.sha256(data).hexdigest(),
    )


async def latest_checkpoint(objects: ObjectStore, trusted: Mapping[str, CheckpointVerifier]) -> Checkpoint | None:
    """The newest checkpoint in ``objects``, verified; ``None`` when there is none.

    Raises:
        CheckpointError: the newest one does not verify (an older one is not tried instead: a
            forged or damaged newest checkpoint is itself the finding).
        Unavailable: the store is unreachable.
        Unauthenticated, PermissionDenied: the store refused our credentials.
    """
    keys = [k for k in await objects.list(CHECKPOINT_PREFIX) if _NAME.match(k[len(CHECKPOINT_PREFIX) :])]
    if not keys:
        return None
    key = max(keys)
    info = await objects.head(key)
    if info is None:
        raise Unavailable(f"checkpoint {key} disappeared while it was read", "run the verification again")
    if info.size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(INVALID, key, f"is {info.size} bytes, larger than any checkpoint")
    try:
        data = await objects.get(key)
    except NotFound:
        raise Unavailable(f"checkpoint {key} disappeared while it was read", "run the verification again") from None
    return decode_checkpoint(key, data, trusted)


async def check_export(
    objects: ObjectStore, trusted: Mapping[str, CheckpointVerifier], prefix: str = DEFAULT_EXPORT_PREFIX
) -> tuple[AuditVerification, CheckpointCheck]:
    """Verify the export (store only) and compare it with the newest checkpoint (status ``behind``,
    not a failure, while the export has not reached the checkpoint's head yet).

    Raises:
        Unavailable: the store is unreachable while the chunks are read.
    """
    checkpoint: Checkpoint | None = None
    try:
        checkpoint = await latest_checkpoint(objects, trusted)
    except CheckpointError as exc:
        return await verify_export(objects, prefix), CheckpointCheck(exc.status, exc.message)
    result = await verify_export(objects, prefix, mark=checkpoint.head_id if checkpoint else 0)
    if checkpoint is None:
        return result, CheckpointCheck(NONE, f"no audit checkpoint under {CHECKPOINT_PREFIX} in the object store yet")
    when, head_id = short_time(checkpoint.time), checkpoint.head_id
    if not result.ok:
        return result, CheckpointCheck(BEHIND, f"not compared with the checkpoint of {when}: the export is broken")
    if result.events_checked < head_id:
        return result, CheckpointCheck(
            BEHIND,
            f"the export ends at event {result.events_checked}, before the head of the checkpoint of {when} "
            f"(event {head_id}); it catches up within a minute while the controller runs",
            checkpoint,
        )
    if head_id and result.marked_hash != checkpoint.head_hash:
        return result, CheckpointCheck(
            DIFFERS,
            f"event {head_id} in the export differs from the checkpoint of {when} ({checkpoint.key})",
            checkpoint,
            head_id,
            head_id,
        )
    return result, CheckpointCheck(
        OK,
        f"the export holds {event_range(1, head_id)} as the checkpoint of {when} covers them ({checkpoint.key})",
        checkpoint,
    )


class AuditCheckpointer(PeriodicPass):
    """Writes signed checkpoints of the chain head and compares the database against the newest one.

    Args:
        log: the audit log.
        objects: where checkpoints are kept.
        signer: the checkpoint key (and the retired keys still trusted).
        controller: the replica's name, written into each checkpoint.
        interval: seconds between periodic checkpoints (``start``).
        final_timeout: seconds ``stop`` allows for a last checkpoint.
    """

    _name = "audit checkpoint"

    def __init__(
        self,
        log: AuditLog,
        objects: ObjectStore,
        signer: CheckpointSigner,
        *,
        controller: str,
        interval: float = DEFAULT_INTERVAL,
        final_timeout: float = 5.0,
    ) -> None:
        self._log = log
        self._objects = objects
        self._signer = signer
        self._controller = controller
        self._interval = interval
        self._final_timeout = final_timeout
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    # -- reading ------------------------------------------------------------------------------
    async def latest(self) -> Checkpoint | None:
        """The newest checkpoint in the store, verified; see :func:`latest_checkpoint`."""
        return await latest_checkpoint(self._objects, self._signer.trusted())

    async def compare(self, checkpoint: Checkpoint) -> CheckpointCheck:
        """Does the database still hold every event ``checkpoint`` covers, as it covered them?"""
        when = short_time(checkpoint.time)
        head_id = checkpoint.head_id
        if head_id == 0:
            return CheckpointCheck(OK, f"the checkpoint of {when} ({checkpoint.key}) covers an empty log", checkpoint)
        # An event the checkpoint covers by id but recorded after it was taken took the id of an
        # event deleted since: the cut begins there at the latest.
        reused = await self._log.first_recorded_after(checkpoint.time, head_id)
        why = " (events recorded since have taken their ids: the tail was deleted)" if reused is not None else ""
        head = await self._log.head()
        last = head.id if head is not None else 0
        if last < head_id:
            return self._missing(checkpoint, min(last + 1, reused or last + 1), head_id, why)
        try:
            event = await self._log.get(head_id)
        except NotFound:
            return self._missing(checkpoint, min(head_id, reused or head_id), head_id, why)
        if event.hash == checkpoint.head_hash:
            return CheckpointCheck(
                OK,
                f"the database holds {event_range(1, head_id)} as the checkpoint of {when} covers them "
                f"({checkpoint.key}, signed by {checkpoint.key_id})",
                checkpoint,
            )
        if reused is not None:
            return self._missing(checkpoint, reused, head_id, why)
        return CheckpointCheck(
            DIFFERS,
            f"event {head_id} differs from the checkpoint of {when}: the database's hash is {event.hash}, "
            f"the checkpoint's {checkpoint.head_hash} (the chain up to it was rewritten)",
            checkpoint,
            head_id,
            head_id,
        )

    @staticmethod
    def _missing(checkpoint: Checkpoint, first: int, last: int, why: str) -> CheckpointCheck:
        return CheckpointCheck(
            MISSING,
            f"{event_range(first, last)} covered by the checkpoint of {short_time(checkpoint.time)} "
            f"{'is' if first == last else 'are'} missing from the database{why}",
            checkpoint,
            first,
            last,
        )

    async def check(self) -> tuple[AuditVerification, CheckpointCheck]:
        """Verify the chain in the database and compare it with the newest checkpoint.

        The checkpoint is read first: the database only grows, so whatever the checkpoint covers
        was there before the chain walk began (reading it after could meet a checkpoint newer
        than the walk).
        """
        check: CheckpointCheck | None = None
        checkpoint: Checkpoint | None = None
        try:
            checkpoint = await self.latest()
        except CheckpointError as exc:
            check = CheckpointCheck(exc.status, exc.message)
        except FleetopsError as exc:  # Unavailable, or the store refused our credentials
            check = CheckpointCheck(
                UNAVAILABLE,
                f"the newest audit checkpoint could not be read from the object store ({exc.message}): "
                "events cut off the end of the log would not show",
            )
        chain = await self._log.verify()
        if check is None:
            if checkpoint is None:
                check = CheckpointCheck(
                    NONE,
                    f"no audit checkpoint under {CHECKPOINT_PREFIX} in the object store yet: events cut off "
                    "the end of the log would not show (the controller writes one at start and hourly)",
                )
            else:
                check = await self.compare(checkpoint)
        return chain, check

    # -- writing ------------------------------------------------------------------------------
    async def checkpoint(self) -> Checkpoint:
        """Write a checkpoint of the current chain head now, on top of the newest one.

        Raises:
            Conflict: the database no longer holds the newest checkpoint's head as it was (the
                log was cut or rewritten since), or that checkpoint does not verify: no checkpoint
                is written on top of either.
            Unavailable: the store is unreachable.
        """
        async with self._lock, self._log.exclusive(CHECKPOINT_LOCK_KEY):
            try:
                previous = await self.latest()
            except CheckpointError as exc:
                raise Conflict(
                    f"no audit checkpoint written: the newest one cannot be trusted ({exc.message})",
                    "run opsctl audit verify; move the bad checkpoint out of audit-checkpoints/ once it is understood",
                ) from exc
            if previous is not None:
                found = await self.compare(previous)
                if found.failed:
                    raise Conflict(
                        f"no audit checkpoint written: {found.message}",
                        "run opsctl audit verify; see docs/operations.md (audit log) after restoring a database",
                    )
            head = await self._log.head()
            now = datetime.now(UTC)
            if previous is not None and now <= previous.time:  # the clock went back: keep the key order
                now = previous.time + timedelta(microseconds=1)
            head_id = head.id if head else 0
            body = {
                "format": CHECKPOINT_FORMAT,
                "controller": self._controller,
                "time": format_time(now),
                "head_id": head_id,
                "head_hash": head.hash if head else GENESIS_HASH,
                "head_time": format_time(head.time) if head else "",
                "events": head.id if head else 0,
                "previous_key": previous.key if previous else "",
                "previous_sha256": previous.sha256 if previous else "",
            }
            data = encode_checkpoint(self._signer, body)
            key = checkpoint_key(head_id, now)
            await self._objects.put(key, data)
            return decode_checkpoint(key, data, self._signer.trusted())

    async def run_once(self) -> Checkpoint | None:
        """One checkpoint that never raises: trouble is logged, and the next pass tries again."""
        try:
            written = await self.checkpoint()
        except Unavailable as exc:
            log.warning(
                "audit checkpoint: the object store is unavailable (%s); retrying in %gs", exc.message, self._interval
            )
            return None
        except Conflict as exc:
            log.error("audit checkpoint refused: %s (%s)", exc.message, exc.hint)
            return None
        except FleetopsError as exc:
            log.warning("audit checkpoint failed: %s (%s)", exc.message, exc.hint)
            return None
        except Exception:  # a bug: keep trying later, but say so loudly
            log.exception("audit checkpoint failed")
            return None
        covers = event_range(1, written.head_id) if written.head_id else "an empty log"
        log.info("audit checkpoint %s written: it covers %s", written.key, covers)
        return written
