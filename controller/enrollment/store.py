"""Activations in the database: the one place their rows become :class:`Activation` objects.

A registration runs in one transaction (:meth:`ActivationStore.registering`): the activation is
read, one of its registrations claimed atomically, and the host added, or nothing is.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import NotFound
from fleetops.controller.enrollment.models import Activation
from fleetops.controller.store.models import ActivationRow


def _activation(row: ActivationRow) -> Activation:
    return Activation(
        id=row.id,
        description=row.description,
        default_tags=dict(row.default_tags or {}),
        registration_limit=row.registration_limit,
        registrations_count=row.registrations_count,
        created_at=row.created_at,
        expires_at=row.expires_at,
        created_by=row.created_by,
        allowed_host_tags=tuple(row.allowed_host_tags or ()),
        failed_codes=row.failed_codes or 0,
        locked_at=row.locked_at,
    )


@dataclass(frozen=True)
class PendingRegistration:
    """One registration's transaction: the activation as it is now, and the claim of one of its slots."""

    activation: Activation
    code_sha256: str
    #: The open transaction; the fleet adds the host in it (``FleetService.add_host``).
    transaction: AsyncSession

    async def claim(self) -> bool:
        """Count one registration, unless the limit is reached (two hosts racing cannot both win)."""
        claimed = await self.transaction.execute(
            update(ActivationRow)
            .where(ActivationRow.id == self.activation.id)
            .where(ActivationRow.registrations_count < ActivationRow.registration_limit)
            .values(registrations_count=ActivationRow.registrations_count + 1)
        )
        return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]  # CursorResult of an UPDATE


class ActivationStore:
    """Activations over one database."""

    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self._db = db

    async def create(self, activation: Activation, code_sha256: str) -> Activation:
        row = ActivationRow(
            id=activation.id,
            code_sha256=code_sha256,
            description=activation.description,
            default_tags=dict(activation.default_tags),
            registration_limit=activation.registration_limit,
            registrations_count=activation.registrations_count,
            created_at=activation.created_at,
            expires_at=activation.expires_at,
            created_by=activation.created_by,
            allowed_host_tags=list(activation.allowed_host_tags),
            failed_codes=activation.failed_codes,
        )
        async with self._db() as session, session.begin():
            session.add(row)
        return _activation(row)

    async def list(self) -> list[Activation]:
        async with self._db() as session:
            rows = (await session.execute(select(ActivationRow).order_by(ActivationRow.created_at))).scalars().all()
        return [_activation(r) for r in rows]

    async def delete(self, activation_id: str) -> None:
        """Raises: NotFound (no such activation)."""
        async with self._db() as session, session.begin():
            row = await session.get(ActivationRow, activation_id)
            if row is None:
                raise NotFound(f"no such activation: {activation_id}", "see opsctl activation list")
            await session.delete(row)

    @contextlib.asynccontextmanager
    async def registering(self, activation_id: str) -> AsyncIterator[PendingRegistration | None]:
        """A transaction over ``activation_id`` (``None``: no such activation), committed unless the body raises."""
        async with self._db() as session, session.begin():
            row = await session.get(ActivationRow, activation_id)
            yield None if row is None else PendingRegistration(_activation(row), row.code_sha256, session)

    async def count_wrong_code(self, activation_id: str, lockout_after: int, now: datetime) -> tuple[int, bool] | None:
        """Count a wrong code durably (across replicas); lock the activation at ``lockout_after`` (0: never).

        Returns:
            (wrong codes so far, whether this one locked it), or ``None`` when the activation is gone.
        """
        async with self._db() as session, session.begin():
            row = await session.get(ActivationRow, activation_id, with_for_update=True)
            if row is None:  # deleted meanwhile
                return None
            row.failed_codes = (row.failed_codes or 0) + 1
            locked_now = bool(lockout_after and row.failed_codes >= lockout_after and row.locked_at is None)
            if locked_now:
                row.locked_at = now
            return row.failed_codes, locked_now
