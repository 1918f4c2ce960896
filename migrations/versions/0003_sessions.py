"""Interactive sessions and their transcripts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fleetops.controller.store.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("host_id", sa.String(32), nullable=False),
        sa.Column("host_name", sa.String(255), nullable=False),
        sa.Column("operator", sa.String(255), nullable=False),
        sa.Column("run_as", sa.String(64), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("term", sa.String(64), nullable=False),
        sa.Column("cols", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("record_input", sa.Boolean(), nullable=False),
        sa.Column("broker", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("end_reason", sa.String(32), nullable=False),
        sa.Column("end_message", sa.Text(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("transcript_key", sa.String(512), nullable=False),
        sa.Column("transcript_state", sa.String(16), nullable=False),
        sa.Column("transcript_sha256", sa.String(64), nullable=False),
        sa.Column("transcript_size", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_sessions_started_at", "sessions", ["started_at"])
    op.create_index("ix_sessions_state", "sessions", ["state"])
    op.create_index("ix_sessions_host_started", "sessions", ["host_id", "started_at"])


def downgrade() -> None:
    op.drop_table("sessions")
