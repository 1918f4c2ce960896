"""Activations and host enrollment, with AWS SSM hybrid-activation semantics.

An activation is an id plus a code shown once (only its SHA-256 is stored), a registration
limit, an expiry and default tags. A host registers by presenting both with a CSR; its key
never leaves it. Refusals are audited by the enrollment port's ``RefusalLog`` (bounded per source).

Trust (docs/enrollment.md#what-a-host-decides):

* The activation's tags are authoritative. A host may set a tag only under a key the activation
  allows (``allowed_host_tags``); any other key, an activation tag included, refuses the
  registration naming the key. Host-set tags are kept apart (the host record's ``host_tags``) and never
  seen by access decisions.
* A host's name follows one rule (``fleet.service.host_name_problem``): an explicit bad ``--name``
  is refused, a bad reported host name is replaced by the host id.
* ``lockout_after`` wrong codes lock an activation for good (audited once); a locked activation
  refuses even the right code. Wrong codes are also rate-limited per activation.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common import pki
from fleetops.common.errors import InvalidInput, PermissionDenied, Unauthenticated
from fleetops.common.selectors import validate_tag_key, validate_tag_value
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.enrollment.models import Activation, Registration
from fleetops.controller.enrollment.store import ActivationStore
from fleetops.controller.fleet.service import (
    FleetService,
    host_name_problem,
    new_host_id,
    shown_name,
    validate_host_name,
)
from fleetops.controller.throttle import EnrollmentThrottle

MAX_ACTIVATION_LIFETIME = timedelta(days=30)  # as SSM: an activation lives at most 30 days
CODE_ALPHABET = string.ascii_letters + string.digits
# Tag keys one activation may let hosts set.
MAX_ALLOWED_HOST_TAGS = 64
# What an activation id may look like before it is looked up (ids are UUIDs; anything else is unknown).
_ACTIVATION_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
REFUSED_HINT = "ask an operator for a new activation: opsctl activation create"


class _WrongCode(Exception):
    """Inside ``_register``: the code did not match (counted after the transaction is rolled back)."""


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


class EnrollmentService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        authority: pki.CertificateAuthority,
        fleet: FleetService,
        audit: AuditLog,
        *,
        host_certificate_lifetime: timedelta,
        throttle: EnrollmentThrottle | None = None,
    ) -> None:
        self._store = ActivationStore(sessions)
        self._authority = authority
        self._fleet = fleet
        self._audit = audit
        self._host_lifetime = host_certificate_lifetime
        self._throttle = throttle or EnrollmentThrottle()

    # -- activations ------------------------------------------------------------------------
    async def create_activation(
        self,
        *,
        created_by: str,
        default_tags: dict[str, str],
        registration_limit: int,
        expires_in: timedelta,
        description: str = "",
        allowed_host_tags: Iterable[str] = (),
    ) -> tuple[Activation, str]:
        """Create an activation; returns it with its code, which is never retrievable again.

        ``allowed_host_tags`` are the tag keys a registering host may set itself (``--tag``); a
        host may set no other key, and may not override an activation tag unless its key is here.

        Raises:
            InvalidInput: limit below 1, expiry not in (0, 30 days], a bad tag or allowed key.
        """
        allowed = list(dict.fromkeys(k.strip() for k in allowed_host_tags))
        if len(allowed) > MAX_ALLOWED_HOST_TAGS:
            raise InvalidInput(
                f"{len(allowed)} --allow-host-tag keys given, at most {MAX_ALLOWED_HOST_TAGS}",
                "allow only the keys hosts really choose themselves (rack, zone...)",
            )
        for k in allowed:
            validate_tag_key(k)
        if registration_limit < 1 or registration_limit > 100_000:
            raise InvalidInput(f"registration limit {registration_limit} is out of range", "use 1 to 100000")
        if expires_in <= timedelta(0) or expires_in > MAX_ACTIVATION_LIFETIME:
            raise InvalidInput(
                f"activation expiry {expires_in} is out of range", "use a duration up to 30d, e.g. --expires 24h"
            )
        for k, v in default_tags.items():
            validate_tag_key(k)
            validate_tag_value(v)
        # 20 letters and digits (~119 random bits): nothing a shell or an argument parser reads
        # specially, unlike base64's leading '-'.
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(20))
        now = datetime.now(UTC)
        activation = Activation(
            id=str(uuid.uuid4()),
            description=description,
            default_tags=dict(default_tags),
            registration_limit=registration_limit,
            registrations_count=0,
            created_at=now,
            expires_at=now + expires_in,
            created_by=created_by,
            allowed_host_tags=tuple(allowed),
            failed_codes=0,
        )
        return await self._store.create(activation, _hash_code(code)), code

    async def list_activations(self) -> list[Activation]:
        return await self._store.list()

    async def delete_activation(self, activation_id: str) -> None:
        """Delete an activation; hosts already registered with it stay registered.

        Raises:
            NotFound: no such activation.
        """
        await self._store.delete(activation_id)

    # -- registration -----------------------------------------------------------------------
    async def register(
        self,
        *,
        activation_id: str,
        activation_code: str,
        csr_pem: bytes,
        inventory: dict[str, Any],
        tags: dict[str, str],
        peer: str,
        name: str = "",
    ) -> Registration:
        """Register a new host; audited as ``host.register`` when it succeeds.

        Refusals are not audited here: the caller (the enrollment port) audits them through its
        ``RefusalLog``, which bounds what one source can write.

        Raises:
            Unauthenticated: unknown activation, wrong code, locked, expired or exhausted activation.
            PermissionDenied: the host set a tag under a key its activation does not allow.
            RateLimited: too many wrong codes for this activation lately.
            CertificateRequestError: the CSR is unusable.
            InvalidInput: a bad tag or ``name``.
        """
        registration, reported_problem = await self._register(
            activation_id, activation_code, csr_pem, inventory, tags, name, peer
        )
        details: dict[str, Any] = {
            "hostname": registration.hostname,
            "tags": registration.tags,
            "host_tags": registration.host_tags or {},
            "peer": peer,
        }
        if reported_problem:
            details["reported_hostname"] = shown_name(str(inventory.get("hostname", "")))
            details["reported_hostname_refused"] = reported_problem
        await self._audit.record(
            actor=f"activation:{activation_id}", action="host.register", target=registration.host_id, details=details
        )
        return registration

    async def _register(
        self,
        activation_id: str,
        activation_code: str,
        csr_pem: bytes,
        inventory: dict[str, Any],
        tags: dict[str, str],
        name: str,
        peer: str,
    ) -> tuple[Registration, str]:
        csr = pki.load_csr(csr_pem)  # refuse garbage before touching the activation
        for k, v in tags.items():
            validate_tag_key(k)
            validate_tag_value(v)
        if name:
            validate_host_name(name)
        reported = str(inventory.get("hostname", ""))
        reported_problem = "" if name else host_name_problem(reported)
        if not _ACTIVATION_ID.fullmatch(activation_id):
            raise Unauthenticated("activation id or code is wrong", REFUSED_HINT)
        subject = f"activation:{activation_id}"
        # Two hosts with one name registering at the same instant collide on the unique name;
        # the loser retries once and gets a suffixed name.
        try:
            for attempt in range(2):
                try:
                    async with self._store.registering(activation_id) as pending:
                        # Unknown id and wrong code get the same answer: no oracle for valid ids.
                        if pending is None:
                            raise Unauthenticated("activation id or code is wrong", REFUSED_HINT)
                        row = pending.activation
                        if row.locked_at is not None:
                            raise _locked(row)
                        self._throttle.check_subject(subject, "codes for this activation")
                        if not hmac.compare_digest(pending.code_sha256, _hash_code(activation_code)):
                            raise _WrongCode()
                        if datetime.now(UTC) >= row.expires_at:
                            raise Unauthenticated(
                                f"activation {activation_id} expired at {row.expires_at:%Y-%m-%d %H:%M}Z",
                                REFUSED_HINT,
                            )
                        host_tags = _host_tags(row, tags)
                        # Claim one registration atomically: two hosts racing for the last slot cannot both win.
                        if not await pending.claim():
                            raise Unauthenticated(
                                f"activation {activation_id} reached its registration limit of "
                                f"{row.registration_limit}",
                                REFUSED_HINT,
                            )
                        operator_tags = {k: v for k, v in row.default_tags.items() if k not in host_tags}
                        host_id = new_host_id()
                        cert = self._authority.issue_host_certificate(csr, host_id, self._host_lifetime)
                        host = await self._fleet.add_host(
                            pending.transaction,
                            host_id=host_id,
                            hostname=name or reported,
                            unique_suffix=attempt > 0,
                            tags=operator_tags,
                            host_tags=host_tags,
                            inventory=inventory,
                            activation_id=activation_id,
                            certificate_serial=format(cert.serial_number, "x"),
                            certificate_expires_at=cert.not_valid_after_utc,
                        )
                    break
                except IntegrityError:
                    if attempt:
                        raise
        except _WrongCode:
            raise await self._wrong_code(activation_id, peer) from None
        self._fleet.host_added(host_id)
        registration = Registration(
            host_id=host_id,
            hostname=host.name,
            tags={**host_tags, **operator_tags},
            host_tags=host_tags,
            certificate_pem=pki.cert_pem(cert),
            ca_pem=pki.cert_pem(self._authority.cert),
        )
        return registration, reported_problem

    async def _wrong_code(self, activation_id: str, peer: str) -> Unauthenticated:
        """Count a wrong code (durably, across replicas); lock the activation at the threshold."""
        self._throttle.wrong_answer(f"activation:{activation_id}")
        limit = self._throttle.lockout_after
        counted = await self._store.count_wrong_code(activation_id, limit, datetime.now(UTC))
        if counted is None:  # deleted meanwhile
            return Unauthenticated("activation id or code is wrong", REFUSED_HINT)
        failed, locked_now = counted
        if not locked_now:
            return Unauthenticated("activation id or code is wrong", REFUSED_HINT)
        await self._audit.record(
            actor=f"activation:{activation_id}",
            action="activation.lock",
            target=activation_id,
            outcome="refused",
            details={"failed_codes": failed, "lockout_after": limit, "peer": peer},
        )
        return Unauthenticated(
            f"activation id or code is wrong; activation {activation_id} is now locked after {failed} wrong codes "
            "(the controller's --lockout-after)",
            _LOCKED_HINT.format(id=activation_id),
        )

    async def renew(self, host_id: str, csr_pem: bytes) -> tuple[bytes, bytes]:
        """Sign a fresh certificate for an admitted host (identity from its current certificate).

        Raises:
            Unauthenticated: the host is not registered or was deregistered.
            CertificateRequestError: the CSR is unusable.
        """
        await self._fleet.admit(host_id)
        csr = pki.load_csr(csr_pem)
        cert = self._authority.issue_host_certificate(csr, host_id, self._host_lifetime)
        await self._fleet.record_certificate(host_id, format(cert.serial_number, "x"), cert.not_valid_after_utc)
        await self._audit.record(
            actor=f"host:{host_id}",
            action="host.certificate.renew",
            target=host_id,
            details={"serial": format(cert.serial_number, "x"), "expires_at": cert.not_valid_after_utc.isoformat()},
        )
        return pki.cert_pem(cert), pki.cert_pem(self._authority.cert)


_LOCKED_HINT = (
    "an admin creates a new activation (opsctl activation create ...) for the hosts still to register, "
    "and deletes this one: opsctl activation delete {id}"
)


def _locked(row: Activation) -> Unauthenticated:
    return Unauthenticated(
        f"activation {row.id} is locked: {row.failed_codes} wrong codes were presented for it",
        _LOCKED_HINT.format(id=row.id),
    )


def _host_tags(row: Activation, tags: dict[str, str]) -> dict[str, str]:
    """The tags the host asked for, once each key is checked against what the activation allows.

    Raises:
        PermissionDenied: a key the activation does not let hosts set (naming every such key).
    """
    allowed = set(row.allowed_host_tags)
    refused = sorted(k for k in tags if k not in allowed)
    if not refused:
        return dict(tags)
    defaults = row.default_tags
    overrides = [f"{k}={defaults[k]}" for k in refused if k in defaults]
    keys = ", ".join(refused)
    message = f"this host may not set the tag{'s' if len(refused) > 1 else ''} {keys}: activation {row.id} "
    message += "does not let hosts choose " + ("it" if len(refused) == 1 else "them")
    if overrides:
        message += f" (the activation sets {', '.join(overrides)})"
    allowed_text = ", ".join(sorted(allowed)) or "none"
    return_hint = (
        f"register without --tag for {keys}; the activation's tags apply (keys hosts may set: {allowed_text}). "
        "To let hosts choose a key, an admin creates an activation with --allow-host-tag KEY"
    )
    raise PermissionDenied(message, return_hint)
