"""Which objects ``opsctl apply`` applied from which source (the ``applied_objects`` table).

``--prune`` deletes only what an earlier apply of the same source recorded here: never an
object made by hand, nor one another source applied last.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.controller.store.models import AppliedObjectRow


class AppliedObjects:
    """The provenance of applied objects, one row per ``(kind, name)``."""

    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self._db = db

    async def of_source(self, source: str) -> list[tuple[str, str]]:
        """``(kind, name)`` of every object last applied from *source*, sorted."""
        async with self._db() as db:
            rows = await db.execute(
                select(AppliedObjectRow.kind, AppliedObjectRow.name)
                .where(AppliedObjectRow.source == source)
                .order_by(AppliedObjectRow.kind, AppliedObjectRow.name)
            )
            return [(kind, name) for kind, name in rows.all()]

    async def record(self, source: str, actor: str, applied: Iterable[tuple[str, str]]) -> None:
        """*applied* objects now come from *source* (an object applied from another source moves here)."""
        now = datetime.now(UTC)
        async with self._db.begin() as db:
            for kind, name in applied:
                row = await db.get(AppliedObjectRow, (kind, name))
                if row is None:
                    row = AppliedObjectRow(kind=kind, name=name)
                row.source, row.applied_by, row.applied_at = source, actor, now
                db.add(row)

    async def forget(self, kind: str, name: str) -> None:
        async with self._db.begin() as db:
            await db.execute(
                delete(AppliedObjectRow).where(AppliedObjectRow.kind == kind, AppliedObjectRow.name == name)
            )
