"""Throwaway databases for tests."""

from __future__ import annotations

import os

_db_counter = 0


def new_postgres_database(server_url: str) -> str:
    """CREATE DATABASE on the server; returns its URL."""
    import asyncio

    import asyncpg

    global _db_counter
    _db_counter += 1
    name = f"fleetops_test_{os.getpid()}_{_db_counter}"
    dsn = server_url.replace("postgresql+asyncpg://", "postgresql://") + "/postgres"

    async def create() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return f"{server_url}/{name}"
