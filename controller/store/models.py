"""The controller's durable state as SQLAlchemy 2 declarative models.

The schema is only ever changed by an alembic migration (``migrations/versions``);
``tests/integration/test_store.py`` fails when these models and the migrated schema drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(timezone.utc)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite keeps no zone; everything stored is UTC
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class HostRow(Base):
    __tablename__ = "hosts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    # "active" or "deregistered"; presence (online/offline) is derived from connected + last_seen_at.
    state: Mapped[str] = mapped_column(String(16), default="active")
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    inventory: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    activation_id: Mapped[str] = mapped_column(String(64), default="")
    registered_at: Mapped[datetime]
    deregistered_at: Mapped[datetime | None] = mapped_column(default=None)
    certificate_serial: Mapped[str] = mapped_column(String(64), default="")
    certificate_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    connected: Mapped[bool] = mapped_column(Boolean, default=False)
    connected_at: Mapped[datetime | None] = mapped_column(default=None)
    connected_replica: Mapped[str] = mapped_column(String(128), default="")
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    peer_address: Mapped[str] = mapped_column(String(128), default="")


class ActivationRow(Base):
    __tablename__ = "activations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # SHA-256 of the code: codes are 160 random bits, so a fast hash is enough and the code itself
    # is never stored.
    code_sha256: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    default_tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    registration_limit: Mapped[int] = mapped_column(Integer)
    registrations_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255), default="")


class AuditEventRow(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_time", "time"), Index("ix_audit_events_actor", "actor"))

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    time: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(128))
    target: Mapped[str] = mapped_column(String(512), default="")
    outcome: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    previous_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
