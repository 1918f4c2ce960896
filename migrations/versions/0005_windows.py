"""Maintenance windows, their tasks, and each occurrence's execution (unique per window and time).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fleetops.controller.store.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "maintenance_windows",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("schedule", sa.String(255), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("cutoff_seconds", sa.Integer(), nullable=False),
        sa.Column("cutoff_behavior", sa.String(16), nullable=False),
        sa.Column("start_date", UTCDateTime(), nullable=True),
        sa.Column("end_date", UTCDateTime(), nullable=True),
        sa.Column("offset_days", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("considered_from", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "window_tasks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "window", sa.String(64), sa.ForeignKey("maintenance_windows.name", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("max_concurrency", sa.String(16), nullable=False),
        sa.Column("max_errors", sa.String(16), nullable=False),
        sa.Column("reboot", sa.String(16), nullable=False),
        sa.Column("argv", sa.JSON(), nullable=False),
        sa.Column("script", sa.LargeBinary(), nullable=True),
        sa.Column("run_as", sa.String(64), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_window_tasks_window", "window_tasks", ["window"])
    op.create_table(
        "window_executions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("window", sa.String(64), nullable=False),
        sa.Column("scheduled_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("cutoff_at", UTCDateTime(), nullable=False),
        sa.Column("cutoff_behavior", sa.String(16), nullable=False),
        sa.Column("controller", sa.String(255), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("window", "scheduled_at", name="uq_window_executions_occurrence"),
    )
    op.create_index("ix_window_executions_status", "window_executions", ["status"])
    op.create_table(
        "window_task_executions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "execution_id",
            sa.String(40),
            sa.ForeignKey("window_executions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("task_id", sa.String(40), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("command_id", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("execution_id", "task_id", name="uq_window_task_executions_task"),
    )


def downgrade() -> None:
    for table in ("window_task_executions", "window_executions", "window_tasks", "maintenance_windows"):
        op.drop_table(table)
