"""Alembic environment: runs on the connection fleetops hands in (see controller/store/database.py)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from fleetops.controller.store.models import Base

# An arbitrary constant: the advisory lock every fleetops controller takes while migrating.
MIGRATION_LOCK_KEY = 0x666C6565746F7073  # "fleetops"

target_metadata = Base.metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("fleetops migrations run through `fleetops-controller migrate`, not the alembic CLI")
    is_postgres = connection.dialect.name == "postgresql"
    if is_postgres:
        # Two replicas starting together must not both migrate; the second waits, then sees head.
        connection.execute(text("SET LOCAL lock_timeout = '60s'"))
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
