"""Persistence of session records (one row per session; transcripts live in the object store)."""

from __future__ import annotations

import builtins
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import NotFound
from fleetops.common.states import SessionState, TranscriptState
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
