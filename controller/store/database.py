"""Engine creation and schema migration for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from fleetops.common.errors import InvalidInput, Unavailable

log = logging.getLogger(__name__)


def create_engine(url: str) -> AsyncEngine:
    """Create the async engine for ``url``.

    SQLite gets WAL mode (readers never block the writer), a busy timeout and foreign keys;
    PostgreSQL URLs without an async driver get asyncpg.

    Raises:
        InvalidInput: the URL is not one fleetops supports.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidInput(
            f"cannot parse database URL {url!r}",
            "use sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST:PORT/DB",
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if backend == "sqlite" and parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    if backend not in ("sqlite", "postgresql"):
        raise InvalidInput(f"unsupported database {backend!r}", "fleetops supports SQLite and PostgreSQL")
    kwargs: dict[str, Any] = {}
    if backend == "postgresql":
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    engine = create_async_engine(parsed, **kwargs)
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    script_location = str(resources.files("fleetops.migrations"))
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    def read(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``; the only way the schema changes.

    On PostgreSQL the migration runs under an advisory lock so two controllers starting
    together do not migrate at once (see migrations/env.py).

    Raises:
        Unavailable: the database cannot be reached.
    """

    def run(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    except (TimeoutError, OperationalError, OSError) as exc:
        raise Unavailable(
            f"cannot reach the database to migrate it: {exc}",
            "check --database-url and that the database server is running",
        ) from exc


async def ensure_schema(engine: AsyncEngine, migrate: bool) -> None:
    """Upgrade to head, or with ``migrate=False`` refuse to run on an out-of-date schema."""
    head = head_revision()
    current = await current_revision(engine)
    if current == head:
        return
    if not migrate:
        raise Unavailable(
            f"database schema is at {current or 'empty'}, this controller needs {head}",
            "run `fleetops-controller migrate` (or start without --no-migrate)",
        )
    log.info("migrating database schema from %s to %s", current or "empty", head)
    await upgrade(engine)
