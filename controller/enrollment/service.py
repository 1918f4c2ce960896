"""Activations and host enrollment, with AWS SSM hybrid-activation semantics.

An activation is an id plus a code shown once (only its SHA-256 is stored), a registration
limit, an expiry and default tags. A host registers by presenting both with a CSR; its key
never leaves it. Every refusal is audited with the reason.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common import pki
from fleetops.common.errors import FleetopsError, InvalidInput, NotFound, Unauthenticated
from fleetops.common.selectors import validate_tag_key, validate_tag_value
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.fleet.service import FleetService, new_host_id, validate_host_name
from fleetops.controller.store.models import ActivationRow

MAX_ACTIVATION_LIFETIME = timedelta(days=30)  # as SSM: an activation lives at most 30 days
CODE_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Activation:
    id: str
    description: str
    default_tags: dict[str, str]
    registration_limit: int
    registrations_count: int
    created_at: datetime
    expires_at: datetime
    created_by: str

    @property
    def expired(self) -> bool:
        return datetime.now(UTC) >= self.expires_at


@dataclass(frozen=True)
class Registration:
    host_id: str
    hostname: str
    tags: dict[str, str]
    certificate_pem: bytes
    ca_pem: bytes


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
    ) -> None:
        self._sessions = sessions
        self._authority = authority
        self._fleet = fleet
        self._audit = audit
        self._host_lifetime = host_certificate_lifetime

    # -- activations ------------------------------------------------------------------------
    async def create_activation(
        self,
        *,
        created_by: str,
        default_tags: dict[str, str],
        registration_limit: int,
        expires_in: timedelta,
        description: str = "",
    ) -> tuple[Activation, str]:
        """Create an activation; returns it with its code, which is never retrievable again.

        Raises:
            InvalidInput: limit below 1, expiry not in (0, 30 days], or a bad tag.
        """
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
        row = ActivationRow(
            id=str(uuid.uuid4()),
            code_sha256=_hash_code(code),
            description=description,
            default_tags=dict(default_tags),
            registration_limit=registration_limit,
            registrations_count=0,
            created_at=now,
            expires_at=now + expires_in,
            created_by=created_by,
        )
        async with self._sessions() as session, session.begin():
            session.add(row)
        return _to_activation(row), code

    async def list_activations(self) -> list[Activation]:
        async with self._sessions() as session:
            rows = (await session.execute(select(ActivationRow).order_by(ActivationRow.created_at))).scalars().all()
        return [_to_activation(r) for r in rows]

    async def delete_activation(self, activation_id: str) -> None:
        """Delete an activation; hosts already registered with it stay registered."""
        async with self._sessions() as session, session.begin():
            row = await session.get(ActivationRow, activation_id)
            if row is None:
                raise NotFound(f"no such activation: {activation_id}", "see opsctl activation list")
            await session.delete(row)

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
        """Register a new host. Audited as ``host.register`` whatever the outcome.

        Raises:
            Unauthenticated: unknown activation, wrong code, expired or exhausted activation.
            CertificateRequestError: the CSR is unusable.
            InvalidInput: a bad tag.
        """
        actor = f"activation:{activation_id}"
        try:
            registration = await self._register(activation_id, activation_code, csr_pem, inventory, tags, name)
        except FleetopsError as exc:
            outcome = "refused" if isinstance(exc, Unauthenticated) else "error"
            await self._audit.record(
                actor=actor,
                action="host.register",
                target=str(inventory.get("hostname", "")),
                outcome=outcome,
                details={"reason": exc.message, "peer": peer},
            )
            raise
        await self._audit.record(
            actor=actor,
            action="host.register",
            target=registration.host_id,
            details={"hostname": registration.hostname, "tags": registration.tags, "peer": peer},
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
    ) -> Registration:
        csr = pki.load_csr(csr_pem)  # refuse garbage before touching the activation
        for k, v in tags.items():
            validate_tag_key(k)
            validate_tag_value(v)
        if name:
            validate_host_name(name)
        refused_hint = "ask an operator for a new activation: opsctl activation create"
        # Two hosts with one name registering at the same instant collide on the unique name;
        # the loser retries once and gets a suffixed name.
        for attempt in range(2):
            try:
                async with self._sessions() as session, session.begin():
                    row = await session.get(ActivationRow, activation_id)
                    # Unknown id and wrong code get the same answer: no oracle for valid ids.
                    if row is None or not hmac.compare_digest(row.code_sha256, _hash_code(activation_code)):
                        raise Unauthenticated("activation id or code is wrong", refused_hint)
                    if datetime.now(UTC) >= row.expires_at:
                        raise Unauthenticated(
                            f"activation {activation_id} expired at {row.expires_at:%Y-%m-%d %H:%M}Z", refused_hint
                        )
                    # Claim one registration atomically: two hosts racing for the last slot cannot both win.
                    claimed = await session.execute(
                        update(ActivationRow)
                        .where(ActivationRow.id == activation_id)
                        .where(ActivationRow.registrations_count < ActivationRow.registration_limit)
                        .values(registrations_count=ActivationRow.registrations_count + 1)
                    )
                    if claimed.rowcount != 1:  # type: ignore[attr-defined]
                        raise Unauthenticated(
                            f"activation {activation_id} reached its registration limit of {row.registration_limit}",
                            refused_hint,
                        )
                    host_id = new_host_id()
                    cert = self._authority.issue_host_certificate(csr, host_id, self._host_lifetime)
                    host_tags = dict(row.default_tags or {}) | tags
                    host = await self._fleet.add_host(
                        session,
                        host_id=host_id,
                        hostname=name or str(inventory.get("hostname", "")),
                        unique_suffix=attempt > 0,
                        tags=host_tags,
                        inventory=inventory,
                        activation_id=activation_id,
                        certificate_serial=format(cert.serial_number, "x"),
                        certificate_expires_at=cert.not_valid_after_utc,
                    )
                break
            except IntegrityError:
                if attempt:
                    raise
        self._fleet.host_added(host_id)
        return Registration(
            host_id=host_id,
            hostname=host.name,
            tags=host_tags,
            certificate_pem=pki.cert_pem(cert),
            ca_pem=pki.cert_pem(self._authority.cert),
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


def _to_activation(row: ActivationRow) -> Activation:
    return Activation(
        id=row.id,
        description=row.description,
        default_tags=dict(row.default_tags or {}),
        registration_limit=row.registration_limit,
        registrations_count=row.registrations_count,
        created_at=row.created_at,
        expires_at=row.expires_at,
        created_by=row.created_by,
    )
