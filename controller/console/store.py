"""One-time links into the console and the browser sessions they become.

``opsctl console`` asks for a link (``CreateConsoleLink``, authenticated by the operator's
certificate); the controller keeps the SHA-256 of a random token with that certificate. Opening
the link redeems it, once, before it expires (:data:`LINK_SECONDS`), for a session: a new random
token in an HttpOnly cookie and a form token against cross-site requests. The session acts with
the operator's certificate and ends when it expires, at logout, or when the operator may no
longer act (every page is checked as an operator call is).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import Unauthenticated
from fleetops.controller.store.models import ConsoleLinkRow, ConsoleSessionRow

#: The browser session's cookie (HttpOnly, Secure, SameSite=Strict: see web.py).
SESSION_COOKIE = "fleetops_console"
#: How long a link may wait to be opened.
LINK_SECONDS = 120
LINK_HINT = "ask for a new link: opsctl console"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ConsoleSession:
    """A browser's session: who it acts as (with which certificate), until when."""

    operator: str
    certificate_pem: str
    csrf_token: str
    expires_at: datetime

    def csrf_ok(self, given: str) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), self.csrf_token.encode())


class ConsoleStore:
    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self._db = db

    async def create_link(
        self, operator: str, certificate_pem: str, certificate_expires: datetime
    ) -> tuple[str, datetime]:
        """A new one-time link token for *operator* and when it expires (never after the certificate)."""
        now = _now()
        token = secrets.token_urlsafe(32)
        expires = min(now + timedelta(seconds=LINK_SECONDS), certificate_expires)
        async with self._db.begin() as db:
            await self._purge(db, now)
            db.add(
                ConsoleLinkRow(
                    token_hash=_hash(token),
                    operator=operator,
                    certificate_pem=certificate_pem,
                    created_at=now,
                    expires_at=expires,
                )
            )
        return token, expires

    @staticmethod
    async def _purge(db: AsyncSession, now: datetime) -> None:
        """Forget links and sessions long expired (a day's grace keeps "used already" answers)."""
        await db.execute(delete(ConsoleLinkRow).where(ConsoleLinkRow.expires_at < now - timedelta(days=1)))
        await db.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at < now))

    async def redeem(self, token: str) -> tuple[str, ConsoleSession]:
        """Use the link *token*, once: a new session's token and the session (which expires with
        the certificate the link was asked for with).

        Raises:
            Unauthenticated: no such link, used already, or expired.
        """
        now = _now()
        digest = _hash(token)
        async with self._db.begin() as db:
            result = await db.execute(
                update(ConsoleLinkRow)
                .where(
                    ConsoleLinkRow.token_hash == digest,
                    ConsoleLinkRow.used_at.is_(None),
                    ConsoleLinkRow.expires_at > now,
                )
                .values(used_at=now)
            )
            row = await db.get(ConsoleLinkRow, digest)
            if result.rowcount != 1 or row is None:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
                raise Unauthenticated(self._refusal(row, now), LINK_HINT)
            session_token = secrets.token_urlsafe(32)
            session = ConsoleSession(
                operator=row.operator,
                certificate_pem=row.certificate_pem,
                csrf_token=secrets.token_urlsafe(32),
                expires_at=x509.load_pem_x509_certificate(row.certificate_pem.encode()).not_valid_after_utc,
            )
            db.add(
                ConsoleSessionRow(
                    session_hash=_hash(session_token),
                    operator=session.operator,
                    certificate_pem=session.certificate_pem,
                    csrf_token=session.csrf_token,
                    created_at=now,
                    expires_at=session.expires_at,
                )
            )
        return session_token, session

    @staticmethod
    def _refusal(row: ConsoleLinkRow | None, now: datetime) -> str:
        if row is None:
            return "this console link is not valid"
        if row.used_at is not None:
            return "this console link was used already: a link signs in once"
        return "this console link has expired"

    async def session(self, token: str) -> ConsoleSession | None:
        """The live session of the cookie *token*; ``None`` when there is none (or it expired)."""
        if not token:
            return None
        async with self._db() as db:
            row = await db.scalar(
                select(ConsoleSessionRow).where(
                    ConsoleSessionRow.session_hash == _hash(token), ConsoleSessionRow.expires_at > _now()
                )
            )
        if row is None:
            return None
        return ConsoleSession(row.operator, row.certificate_pem, row.csrf_token, row.expires_at)

    async def end(self, token: str) -> None:
        """Log out: the session is gone."""
        async with self._db.begin() as db:
            await db.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.session_hash == _hash(token)))
