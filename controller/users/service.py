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
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cryptography import x509
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common import pki
from fleetops.common.errors import InvalidInput, PermissionDenied, Unauthenticated
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.throttle import EnrollmentThrottle
from fleetops.controller.users.models import (
    CLOCK_SKEW,
    DEFAULT_TOKEN_TTL,
    MAX_TOKEN_TTL,
    TOKEN_SEPARATOR,
    LoginToken,
    StoredToken,
    TokenHolder,
    User,
    check_user_name,
)
from fleetops.controller.users.store import UserStore


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


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
        self._store = UserStore(db)
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
        user = User(name, tuple(dict.fromkeys(roles)), False, now, actor, now - CLOCK_SKEW)
        token, stored = self._new_token(token_ttl)
        return await self._store.create(user, stored), token

    async def ensure(self, actor: str, name: str, roles: list[str]) -> User:
        """Create ``name`` with ``roles`` unless it exists (bootstrap on the controller host)."""
        check_user_name(name)
        now = self._clock()
        return await self._store.ensure(User(name, tuple(roles), False, now, actor, now - CLOCK_SKEW))

    async def issue_token(self, name: str, token_ttl: timedelta = DEFAULT_TOKEN_TTL) -> LoginToken:
        """A new one-time token for ``name`` (any pending one is replaced).

        Raises: InvalidInput (a lifetime out of range), NotFound (no such user).
        """
        token, stored = self._new_token(token_ttl)
        await self._store.set_token(name, stored)
        return token

    def _new_token(self, ttl: timedelta) -> tuple[LoginToken, StoredToken]:
        if not timedelta(minutes=1) <= ttl <= MAX_TOKEN_TTL:
            raise InvalidInput(f"token lifetime {ttl} is out of range", "give between 1m and 7d, e.g. 24h")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(24).replace(TOKEN_SEPARATOR, "-")
        expires = self._clock() + ttl
        fingerprint = pki.fingerprint_sha256(self._authority.cert)
        token = LoginToken(TOKEN_SEPARATOR.join((token_id, secret, fingerprint)), expires)
        return token, StoredToken(token_id, _hash(secret), expires)

    async def update(self, name: str, *, roles: list[str] | None = None, disabled: bool | None = None) -> User:
        """Raises: NotFound (no such user)."""
        return await self._store.update(
            name,
            roles=None if roles is None else list(dict.fromkeys(roles)),
            disabled=disabled,
            # Re-enabled: certificates from before stay refused; the user logs in anew. X.509 times
            # have whole seconds, so a certificate issued later in this same second must still pass.
            valid_after=lambda: self._clock().replace(microsecond=0),
        )

    async def delete(self, name: str) -> None:
        await self._store.delete(name)

    async def list(self) -> list[User]:
        return await self._store.list()

    async def get(self, name: str) -> User:
        return await self._store.get(name)

    # -- authentication -------------------------------------------------------------------------
    async def check(self, name: str, certificate: x509.Certificate) -> User:
        """The user a verified operator certificate speaks for, if it may still act.

        Raises:
            Unauthenticated: no such user, or the certificate predates the user's valid_after.
            PermissionDenied: the user is disabled.
        """
        user = await self._store.find(name)
        if user is None:
            raise Unauthenticated(f"operator {name!r} is not a user of this controller", "ask an admin to create you")
        if user.disabled:
            raise PermissionDenied(f"user {name!r} is disabled", "ask an admin to enable you, then opsctl login again")
        if certificate.not_valid_before_utc + CLOCK_SKEW < user.valid_after:
            raise Unauthenticated(
                f"this certificate of {name!r} was issued before the user was (re)created or re-enabled",
                "get a new login token from an admin: opsctl login --token ...",
            )
        return user

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
        issued: list[x509.Certificate] = []

        def redeem(holder: TokenHolder | None) -> datetime | None:
            if holder is None or not holder.sha256 or holder.disabled:
                raise refused
            self._throttle.check_subject(subject, "secrets for this login token")
            if not hmac.compare_digest(holder.sha256, _hash(secret)):
                return None
            if holder.expires_at is None or holder.expires_at <= self._clock():
                raise refused
            issued.append(self._authority.issue_operator_certificate(csr, holder.user, self._lifetime))
            return issued[0].not_valid_after_utc

        name = await self._store.redeem_token(token_id, redeem, self._clock())
        if name is not None:
            self._token_failures.pop(token_id, None)
            return name, issued[0]
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
        name = await self._store.withdraw_token(token_id)
        if name is None:  # spent or replaced meanwhile
            return refused
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
        await self._store.record_login(user.name, self._clock(), certificate.not_valid_after_utc)
        return certificate
