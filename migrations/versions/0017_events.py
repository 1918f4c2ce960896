"""Events and subscriptions (docs/events.md): the outbox, subscriptions, deliveries and their attempts.

Events are written in the transaction of the change they describe; the dispatcher gives each
committed event a position (the order watchers and subscriptions follow) and a delivery per
matching subscription, retried until delivered or dead-lettered.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fleetops.controller.store.models import UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("host_name", sa.String(255), nullable=True),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=True, unique=True),
        sa.Column("only_subscription", sa.String(32), nullable=True),
    )
    op.create_index("ix_events_unplaced", "events", ["position", "id"])
    op.create_index("ix_events_time", "events", ["time"])
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("endpoint", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("types", sa.JSON(), nullable=False),
        sa.Column("target", sa.String(1024), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "event_deliveries",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column(
            "subscription_id", sa.String(32), sa.ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("event_id", _id(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(1024), nullable=False),
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_event_deliveries_subscription_event"),
    )
    op.create_index("ix_event_deliveries_due", "event_deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "event_delivery_attempts",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("delivery_id", _id(), sa.ForeignKey("event_deliveries.id", ondelete="CASCADE"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("result", sa.String(1024), nullable=False),
    )
    op.create_index("ix_event_delivery_attempts_delivery", "event_delivery_attempts", ["delivery_id"])


def downgrade() -> None:
    op.drop_index("ix_event_delivery_attempts_delivery", "event_delivery_attempts")
    op.drop_table("event_delivery_attempts")
    op.drop_index("ix_event_deliveries_due", "event_deliveries")
    op.drop_table("event_deliveries")
    op.drop_table("subscriptions")
    op.drop_index("ix_events_time", "events")
    op.drop_index("ix_events_unplaced", "events")
    op.drop_table("events")
