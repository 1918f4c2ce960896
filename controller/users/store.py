"""Users in the database: the one place their rows become :class:`User` objects.

A login token is kept as its id and the SHA-256 of its secret; redeeming one locks its row, so a
token is spent at most once however many logins race for it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import Conflict, NotFound
from fleetops.controller.store.models import UserRow
from fleetops.controller.users.models import StoredToken, TokenHolder, User


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


async def _row(db: AsyncSession, name: str) -> UserRow:
    row = await db.get(UserRow, name)
    if row is None:
        raise NotFound(f"no user {name!r}", "list them with opsctl admin user list")
    return row


def _clear_token(row: UserRow) -> None:
    row.token_id, row.token_sha256, row.token_expires_at = "", "", None


class UserStore:
    """Users over one database."""

    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self._db = db

    async def create(self, user: User, token: StoredToken) -> User:
        """Raises: Conflict (the name is taken)."""
        row = UserRow(
            name=user.name,
            roles=list(user.roles),
            disabled=user.disabled,
            created_at=user.created_at,
            created_by=user.created_by,
            valid_after=user.valid_after,
            token_id=token.id,
            token_sha256=token.sha256,
            token_expires_at=token.expires_at,
        )
        try:
            async with self._db.begin() as db:
                db.add(row)
        except IntegrityError:
            raise Conflict(
                f"user {user.name!r} exists", f"give them a new login token: opsctl admin user token {user.name}"
            ) from None
        return _user(row)

    async def ensure(self, user: User) -> User:
        """``user`` unless a user of that name exists (then that one), without a login token."""
        async with self._db.begin() as db:
            row = await db.get(UserRow, user.name)
            if row is None:
                row = UserRow(
                    name=user.name,
                    roles=list(user.roles),
                    disabled=user.disabled,
                    created_at=user.created_at,
                    created_by=user.created_by,
                    valid_after=user.valid_after,
                    token_id="",
                    token_sha256="",
                )
                db.add(row)
            return _user(row)

    async def set_token(self, name: str, token: StoredToken) -> None:
        """Replace the user's pending login token. Raises: NotFound (no such user)."""
        async with self._db.begin() as db:
            row = await _row(db, name)
            row.token_id, row.token_sha256, row.token_expires_at = token.id, token.sha256, token.expires_at

    async def update(
        self, name: str, *, roles: list[str] | None, disabled: bool | None, valid_after: Callable[[], datetime]
    ) -> User:
        """Change roles and/or disabled; a re-enabled user's ``valid_after`` becomes ``valid_after()``.

        Raises: NotFound (no such user).
        """
        async with self._db.begin() as db:
            row = await _row(db, name)
            if roles is not None:
                row.roles = list(roles)
            if disabled is not None:
                if row.disabled and not disabled:
                    row.valid_after = valid_after()
                row.disabled = disabled
            return _user(row)

    async def delete(self, name: str) -> None:
        """Raises: NotFound (no such user)."""
        async with self._db.begin() as db:
            await db.delete(await _row(db, name))

    async def list(self) -> list[User]:
        async with self._db() as db:
            return [_user(r) for r in (await db.scalars(select(UserRow).order_by(UserRow.name))).all()]

    async def get(self, name: str) -> User:
        """Raises: NotFound (no such user)."""
        async with self._db() as db:
            return _user(await _row(db, name))

    async def find(self, name: str) -> User | None:
        async with self._db() as db:
            row = await db.get(UserRow, name)
        return None if row is None else _user(row)

    async def redeem_token(
        self, token_id: str, redeem: Callable[[TokenHolder | None], datetime | None], now: datetime
    ) -> str | None:
        """Offer the pending token ``token_id`` to ``redeem`` while its row is locked.

        ``redeem`` gets the token's holder (``None``: no such pending token) and returns the expiry of
        the certificate it issued, or ``None`` when the secret was wrong; it raises to refuse. When it
        issued one, the token is spent and the login recorded.

        Returns:
            The user's name when the token was redeemed, else ``None``.
        """
        async with self._db.begin() as db:
            row = await db.scalar(select(UserRow).where(UserRow.token_id == token_id).with_for_update())
            holder = None
            if row is not None:
                holder = TokenHolder(row.name, row.token_sha256, row.token_expires_at, row.disabled)
            certificate_expires_at = redeem(holder)
            if row is None or certificate_expires_at is None:
                return None
            _clear_token(row)
            row.last_login_at = now
            row.certificate_expires_at = certificate_expires_at
            return row.name

    async def withdraw_token(self, token_id: str) -> str | None:
        """Withdraw a pending token for good; the holder's name, or ``None`` if it was spent or replaced."""
        async with self._db.begin() as db:
            row = await db.scalar(select(UserRow).where(UserRow.token_id == token_id).with_for_update())
            if row is None:
                return None
            _clear_token(row)
            return row.name

    async def record_login(self, name: str, now: datetime, certificate_expires_at: datetime) -> None:
        """Raises: NotFound (no such user)."""
        async with self._db.begin() as db:
            row = await _row(db, name)
            row.last_login_at = now
            row.certificate_expires_at = certificate_expires_at
