"""Persistence of session records (one row per session; transcripts live in the object store)."""

from __future__ import annotations

import builtins
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import NotFound
from fleetops.common.states import SessionState, TranscriptState
from fleetops.controller.events.outbox import record_event
from fleetops.controller.sessions.models import Session, SessionKind
from fleetops.controller.store.models import SessionRow


def _to_session(row: SessionRow) -> Session:
    return Session(
        id=row.id,
        host_id=row.host_id,
        host_name=row.host_name,
        operator=row.operator,
        run_as=row.run_as,
        command=row.command,
        term=row.term,
        cols=row.cols,
        rows=row.rows,
        record_input=row.record_input,
        broker=row.broker,
        state=SessionState(row.state),
        started_at=row.started_at,
        ended_at=row.ended_at,
        end_reason=row.end_reason,
        end_message=row.end_message,
        exit_code=row.exit_code,
        transcript_key=row.transcript_key,
        transcript_state=TranscriptState(row.transcript_state),
        transcript_sha256=row.transcript_sha256,
        transcript_size=row.transcript_size,
        kind=SessionKind.SSH if row.kind == SessionKind.SSH else SessionKind.TERMINAL,
    )


def _data(row: SessionRow) -> dict[str, Any]:
    """What every session event carries (docs/events.md)."""
    return {
        "session_id": row.id,
        "host": row.host_name,
        "host_id": row.host_id,
        "operator": row.operator,
        "run_as": row.run_as,
        "kind": row.kind,
    }


class SessionStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, **fields: Any) -> Session:
        row = SessionRow(state=SessionState.STARTING.value, started_at=datetime.now(UTC), **fields)
        async with self._sessions.begin() as db:
            db.add(row)
        return _to_session(row)

    async def update(self, session_id: str, **fields: Any) -> None:
        async with self._sessions.begin() as db:
            await db.execute(update(SessionRow).where(SessionRow.id == session_id).values(**fields))

    async def activate(self, session_id: str) -> bool:
        """Starting -> active, with the ``session.started`` event; False when it was not starting."""
        async with self._sessions.begin() as db:
            result = await db.execute(
                update(SessionRow)
                .where(SessionRow.id == session_id, SessionRow.state == SessionState.STARTING.value)
                .values(state=SessionState.ACTIVE.value)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult has rowcount
                return False
            row = await db.get(SessionRow, session_id)
            assert row is not None
            record_event(
                db, "fleetops.session.started", subject=f"session/{row.id}", host=row.host_name, data=_data(row)
            )
        return True

    async def end(self, session_id: str, **fields: Any) -> bool:
        """Mark the session ended (with *fields*: reason, message, exit code...); False when it had ended.

        An active session gets its ``session.ended`` event in the same transaction; one that never
        started (refused, or left starting by a stopped controller) gets none, as it had no
        ``session.started``.
        """
        async with self._sessions.begin() as db:
            row = await db.get(SessionRow, session_id, with_for_update=True)
            if row is None or row.state == SessionState.ENDED.value:
                return False
            was = row.state
            result = await db.execute(
                update(SessionRow)
                .where(SessionRow.id == session_id, SessionRow.state == was)
                .values(state=SessionState.ENDED.value, **fields)
                .execution_options(synchronize_session="fetch")
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult has rowcount
                return False  # ended meanwhile (where the row cannot be locked)
            if was == SessionState.ACTIVE.value:
                await db.refresh(row)
                duration = (row.ended_at - row.started_at).total_seconds() if row.ended_at else None
                data = {
                    **_data(row),
                    "reason": row.end_reason,
                    "message": row.end_message[:500],
                    "exit_code": row.exit_code,
                    "duration_seconds": None if duration is None else round(duration, 3),
                }
                record_event(db, "fleetops.session.ended", subject=f"session/{row.id}", host=row.host_name, data=data)
        return True

    async def get(self, session_id: str) -> Session:
        async with self._sessions() as db:
            row = await db.get(SessionRow, session_id)
        if row is None:
            raise NotFound(f"no session {session_id!r}", "list sessions with `opsctl session list`")
        return _to_session(row)

    async def list(self, *, active_only: bool = False, host_id: str = "", limit: int = 50) -> list[Session]:
        query = select(SessionRow).order_by(SessionRow.started_at.desc()).limit(limit)
        if active_only:
            query = query.where(SessionRow.state != SessionState.ENDED.value)
        if host_id:
            query = query.where(SessionRow.host_id == host_id)
        async with self._sessions() as db:
            rows = (await db.scalars(query)).all()
        return [_to_session(row) for row in rows]

    async def unfinished(self, broker: str) -> builtins.list[Session]:
        """Sessions this replica brokered that never ended (it stopped without ending them)."""
        query = select(SessionRow).where(SessionRow.broker == broker, SessionRow.state != SessionState.ENDED.value)
        async with self._sessions() as db:
            rows = (await db.scalars(query)).all()
        return [_to_session(row) for row in rows]
