"""Fixtures the controller's unit tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetops.controller.store import database


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database, on SQLite and on PostgreSQL (``database_url``)."""
    engine = database.create_engine(database_url)
    await database.ensure_schema(engine, migrate=True)
    yield engine
    await engine.dispose()
