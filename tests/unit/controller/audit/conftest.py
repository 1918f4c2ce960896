"""Fixtures of the audit tests: an AuditLog on a fresh database, and a local object store.

The database is SQLite, and PostgreSQL too where one can be had (``database_url`` in
tests/conftest.py; skipped otherwise): the host filter and the export lock differ between them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetops.controller.audit.service import AuditLog
from fleetops.controller.objects.local import LocalDirectoryStore
from fleetops.controller.store import database


@pytest.fixture
def audit(engine: AsyncEngine) -> AuditLog:
    return AuditLog(database.session_factory(engine))


@pytest.fixture
def objects(tmp_path: Path) -> LocalDirectoryStore:
    return LocalDirectoryStore(tmp_path / "objects")
