"""Operator identities: users, one-time login tokens, short-lived certificates, revocation.

An operator's certificate names the user (``fleetops://operator/<name>``). A certificate alone is
not enough: every call also finds the user enabled, and issued no earlier than the user's
``valid_after`` (so deleting and re-creating a user, or re-enabling one, does not bring old
certificates back). Disabling a user refuses their next call at once, whatever their
certificate's remaining lifetime; every refusal is audited by the caller.

Login: an admin creates the user and hands over a one-time token (shown once, stored hashed,
expiring); ``opsctl login --token`` sends it with a CSR to the enrollment port and receives a
certificate (12 h by default). ``opsctl login`` with a still-valid certificate renews it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common import pki
from fleetops.common.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.store.models import UserRow
from fleetops.controller.throttle import EnrollmentThrottle

_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
DEFAULT_TOKEN_TTL = timedelta(hours=24)
MAX_TOKEN_TTL = timedelta(days=7)
TOKEN_SEPARATOR = "."
#: A login certificate is backdated this much (clock skew); valid_after checks allow the same.
CLOCK_SKEW = timedelta(minutes=5)


def check_user_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise InvalidInput(
            f"bad user name {name!r}", "use lower-case letters, digits, '.', '_' or '-', starting with a letter"
        )
    return name


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class User:
    name: str
    roles: tuple[str, ...]
    disabled: bool
    created_at: datetime
    created_by: str
    valid_after: datetime
    last_login_at: datetime | None = None
    certificate_expires_at: datetime | None = None


@dataclass(frozen=True)
class LoginToken:
    """A one-time token: ``<id>.<secret>.<CA fingerprint>``; the fingerprint lets opsctl pin the CA."""

    token: str
    expires_at: datetime


def _user(row: UserRow) -> User:
    return User(
        name=row.name,
        roles=tuple(row.roles or ()),
        disabled=row.disabled,
        created_at=row.created_at,
        created_by=row.created_by,
        valid_after=row.valid_after,
        last_login_at=row.last_login_at,
        certificate_expires_at=row.certificate_expires_at,
    )


def parse_token(token: str) -> tuple[str, str, str]:
    """``(id, secret, ca_fingerprint)`` of a login token.

    Raises:
        InvalidInput: not a token as ``opsctl admin user create`` prints it.
    """
    parts = token.strip().split(TOKEN_SEPARATOR)
    if len(parts) != 3 or not all(parts):
        raise InvalidInput(
            "that is not a fleetops login token", "copy the whole token `opsctl admin user create` printed"
        )
    return parts[0], parts[1], parts[2]


class UserService:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        authority: pki.CertificateAuthority,
        *,
        certificate_lifetime: timedelta = timedelta(hours=12),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        throttle: EnrollmentThrottle | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._db = db
        self._authority = authority
        self._lifetime = certificate_lifetime
        self._clock = clock
        self._throttle = throttle or EnrollmentThrottle()
        self._audit = audit
        # Wrong secrets per pending token id (only ids that exist are counted, so this stays small).
        self._token_failures: dict[str, int] = {}

    @property
    def ca(self) -> x509.Certificate:
        return self._authority.cert

    # -- administration -------------------------------------------------------------------------
    async def create(
        self, actor: str, name: str, roles: list[str], token_ttl: timedelta = DEFAULT_TOKEN_TTL
    ) -> tuple[User, LoginToken]:
        """Raises: InvalidInput, Conflict (the name is taken)."""
        check_user_name(name)
        now = self._clock()
        row = UserRow(
            name=name,
            roles=list(dict.fromkeys(roles)),
            disabled=False,
            created_at=now,
            created_by=actor,
            valid_after=now - CLOCK_SKEW,
        )
        token = self._new_token(row, token_ttl)
        try:
            async with self._db.begin() as db:
                db.add(row)
        except IntegrityError:
            raise Conflict(
                f"user {name!r} exists", f"give them a new login token: opsctl admin user token {name}"
            ) from None
        return _user(row), token

    async def ensure(self, actor: str, name: str, roles: list[str]) -> User:
        """Create ``name`` with ``roles`` unless it exists (bootstrap on the controller host)."""
        check_user_name(name)
        async with self._db.begin() as db:
            row = await db.get(UserRow, name)
            if row is None:
                now = self._clock()
                row = UserRow(
                    name=name,
                    roles=list(roles),
                    disabled=False,
                    created_at=now,
                    created_by=actor,
                    valid_after=now - CLOCK_SKEW,
                    token_id="",
                    token_sha256="",
                )
                db.add(row)
            return _user(row)

    async def issue_token(self, name: str, token_ttl: timedelta = DEFAULT_TOKEN_TTL) -> LoginToken:
        async with self._db.begin() as db:
            row = await self._row(db, name)
            return self._new_token(row, token_ttl)

    def _new_token(self, row: UserRow, ttl: timedelta) -> LoginToken:
        if not timedelta(minutes=1) <= ttl <= MAX_TOKEN_TTL:
            raise InvalidInput(f"token lifetime {ttl} is out of range", "give between 1m and 7d, e.g. 24h")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(24).replace(TOKEN_SEPARATOR, "-")
        expires = self._clock() + ttl
        row.token_id, row.token_sha256, row.token_expires_at = token_id, _hash(secret), expires
        fingerprint = pki.fingerprint_sha256(self._authority.cert)
        return LoginToken(TOKEN_SEPARATOR.join((token_id, secret, fingerprint)), expires)

    async def update(self, name: str, *, roles: list[str] | None = None, disabled: bool | None = None) -> User:
        async with self._db.begin() as db:
            row = await self._row(db, name)
            if roles is not None:
                row.roles = list(dict.fromkeys(roles))
            if disabled is not None:
                if row.disabled and not disabled:
                    # Re-enabled: certificates from before stay refused; the user logs in anew. X.509 times
                    # have whole seconds, so a certificate issued later in this same second must still pass.
                    row.valid_after = self._clock().replace(microsecond=0)
                row.disabled = disabled
            return _user(row)

    async def delete(self, name: str) -> None:
        async with self._db.begin() as db:
            await db.delete(await self._row(db, name))

    async def list(self) -> list[User]:
        async with self._db() as db:
            return [_user(r) for r in (await db.scalars(select(UserRow).order_by(UserRow.name))).all()]

    async def get(self, name: str) -> User:
        async with self._db() as db:
            return _user(await self._row(db, name))

    async def _row(self, db: AsyncSession, name: str) -> UserRow:
        row = await db.get(UserRow, name)
        if row is None:
            raise NotFound(f"no user {name!r}", "list them with opsctl admin user list")
        return row

    # -- authentication -------------------------------------------------------------------------
    async def check(self, name: str, certificate: x509.Certificate) -> User:
        """The user a verified operator certificate speaks for, if it may still act.

        Raises:
            Unauthenticated: no such user, or the certificate predates the user's valid_after.
            PermissionDenied: the user is disabled.
        """
        async with self._db() as db:
            row = await db.get(UserRow, name)
        if row is None:
            raise Unauthenticated(f"operator {name!r} is not a user of this controller", "ask an admin to create you")
        if row.disabled:
            raise PermissionDenied(f"user {name!r} is disabled", "ask an admin to enable you, then opsctl login again")
        if certificate.not_valid_before_utc + CLOCK_SKEW < row.valid_after:
            raise Unauthenticated(
                f"this certificate of {name!r} was issued before the user was (re)created or re-enabled",
                "get a new login token from an admin: opsctl login --token ...",
            )
        return _user(row)

    async def login(self, token_id: str, secret: str, csr_pem: bytes) -> tuple[str, x509.Certificate]:
        """Exchange a one-time token and a CSR for a certificate; the token is spent.

        Wrong secrets for a pending token are rate-limited, and after the throttle's
        ``lockout_after`` of them the token is withdrawn for good (audited as ``user.token.lock``):
        even the right secret is refused, and an admin issues a new token.

        Raises:
            Unauthenticated: unknown, spent, expired or locked token, or a disabled user (one message
                for all but the moment of locking).
            RateLimited: too many wrong secrets for this token lately.
            CertificateRequestError: an unusable CSR.
        """
        refused = Unauthenticated(
            "the login token is unknown, used, expired or locked",
            "ask an admin for a new one: opsctl admin user token NAME",
        )
        csr = pki.load_csr(csr_pem)
        if not 0 < len(token_id) <= 32:
            raise refused
        subject = f"login-token:{token_id}"
        async with self._db.begin() as db:
            row = await db.scalar(select(UserRow).where(UserRow.token_id == token_id).with_for_update())
            if row is None or not row.token_sha256 or row.disabled:
                raise refused
            self._throttle.check_subject(subject, "secrets for this login token")
            if hmac.compare_digest(row.token_sha256, _hash(secret)):
                if row.token_expires_at is None or row.token_expires_at <= self._clock():
                    raise refused
                row.token_id, row.token_sha256, row.token_expires_at = "", "", None
                certificate = self._authority.issue_operator_certificate(csr, row.name, self._lifetime)
                row.last_login_at = self._clock()
                row.certificate_expires_at = certificate.not_valid_after_utc
                self._token_failures.pop(token_id, None)
                return row.name, certificate
        raise await self._wrong_secret(token_id, subject, refused)

    async def _wrong_secret(self, token_id: str, subject: str, refused: Unauthenticated) -> Unauthenticated:
        """Count a wrong secret for a pending token; withdraw the token at the lockout threshold."""
        self._throttle.wrong_answer(subject)
        failures = self._token_failures.get(token_id, 0) + 1
        self._token_failures[token_id] = failures
        limit = self._throttle.lockout_after
        if not limit or failures < limit:
            return refused
        self._token_failures.pop(token_id, None)
        async with self._db.begin() as db:
            row = await db.scalar(select(UserRow).where(UserRow.token_id == token_id).with_for_update())
            if row is None:  # spent or replaced meanwhile
                return refused
            row.token_id, row.token_sha256, row.token_expires_at = "", "", None
            name = row.name
        if self._audit is not None:
            await self._audit.record(
                actor=f"login-token:{token_id}",
                action="user.token.lock",
                target=name,
                outcome="refused",
                details={"token_id": token_id, "wrong_secrets": failures, "lockout_after": limit},
            )
        return Unauthenticated(
            f"the login token is wrong; it is now locked after {failures} wrong secrets (the controller's "
            "--lockout-after)",
            f"ask an admin for a new one: opsctl admin user token {name}",
        )

    async def renew(self, user: User, csr_pem: bytes) -> x509.Certificate:
        """A fresh certificate for an operator whose current one is valid (already checked)."""
        csr = pki.load_csr(csr_pem)
        certificate = self._authority.issue_operator_certificate(csr, user.name, self._lifetime)
        async with self._db.begin() as db:
            row = await self._row(db, user.name)
            row.last_login_at = self._clock()
            row.certificate_expires_at = certificate.not_valid_after_utc
        return certificate
