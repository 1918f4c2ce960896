"""Migration 0007 gives tasks from before it an author: the operator who created their window."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from fleetops.controller.store import database

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC).isoformat()


async def test_existing_tasks_act_for_their_windows_creator(tmp_path: Path) -> None:
    engine = database.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        await database.upgrade(engine, "0006")
        async with engine.begin() as conn:
            for name, creator in (("w1", "operator:alice"), ("w2", "operator:bob")):
                await conn.execute(
                    text(
                        "INSERT INTO maintenance_windows (name, schedule, timezone, duration_seconds, cutoff_seconds,"
                        " cutoff_behavior, offset_days, enabled, description, created_at, created_by, considered_from)"
                        " VALUES (:n, 'rate(1 day)', 'UTC', 3600, 0, 'continue', 0, 1, '', :t, :c, :t)"
                    ),
                    {"n": name, "t": NOW, "c": creator},
                )
                await conn.execute(
                    text(
                        "INSERT INTO window_tasks (id, window, priority, type, target, max_concurrency, max_errors,"
                        " reboot, argv, run_as, timeout_seconds, description, created_at)"
                        " VALUES (:id, :n, 1, 'run', '{\"all\": true}', '', '', '', '[\"true\"]', '', 0, '', :t)"
                    ),
                    {"id": f"wt-{name}", "n": name, "t": NOW},
                )
        await database.upgrade(engine, "0007")
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, author FROM window_tasks ORDER BY id"))).all()
        assert [tuple(r) for r in rows] == [("wt-w1", "operator:alice"), ("wt-w2", "operator:bob")]
    finally:
        await engine.dispose()
