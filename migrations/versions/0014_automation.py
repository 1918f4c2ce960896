"""Automation: executions of runbooks, the steps they ran, and approvals (docs/automation.md#runbooks).

An execution is advanced by one replica at a time (``owner``, ``lease_until``); each step it runs
is a row (a step run again by a goto is a new row), whose ``state`` records where a run step is
(its batches and the command of each) before that command is sent, so that a controller restarted
mid-step resumes the step without repeating what it already did.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fleetops.controller.store.models import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "automation_executions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("runbook", sa.String(160), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("current_step", sa.String(64), nullable=False),
        sa.Column("steps_run", sa.Integer(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("started_by", sa.String(255), nullable=False),
        sa.Column("started_via", sa.String(255), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_automation_executions_status", "automation_executions", ["status"])
    op.create_table(
        "automation_steps",
        sa.Column(
            "execution_id",
            sa.String(40),
            sa.ForeignKey("automation_executions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("deadline", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "automation_approvals",
        sa.Column(
            "execution_id",
            sa.String(40),
            sa.ForeignKey("automation_executions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("operator", sa.String(255), primary_key=True),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("automation_approvals")
    op.drop_table("automation_steps")
    op.drop_index("ix_automation_executions_status", "automation_executions")
    op.drop_table("automation_executions")
