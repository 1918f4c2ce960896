"""Associations, and window tasks that run a document or a runbook (docs/automation.md).

``associations`` keep a document applied to a target on a schedule; ``association_hosts`` is each
host's compliance with one (the last application and the last check), ``association_runs`` the
commands each application made. ``window_tasks.document``/``parameters`` hold what a ``document``
or ``automation`` task runs; tasks before this revision run none.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fleetops.controller.store.models import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("window_tasks") as batch:
        batch.add_column(sa.Column("document", sa.String(160), nullable=False, server_default=""))
        batch.add_column(sa.Column("parameters", sa.JSON(), nullable=False, server_default="{}"))
    op.create_table(
        "associations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(128), nullable=True, unique=True),
        sa.Column("document", sa.String(160), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("schedule", sa.String(255), nullable=False),
        sa.Column("max_concurrency", sa.String(16), nullable=False),
        sa.Column("max_errors", sa.String(16), nullable=False),
        sa.Column("check_interval_seconds", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("next_run_at", UTCDateTime(), nullable=False),
        sa.Column("last_run_at", UTCDateTime(), nullable=True),
        sa.Column("next_check_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "association_hosts",
        sa.Column(
            "association_id", sa.String(40), sa.ForeignKey("associations.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("host_id", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("last_applied_at", UTCDateTime(), nullable=True),
        sa.Column("last_command_id", sa.String(40), nullable=False),
        sa.Column("last_check_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "association_runs",
        sa.Column("command_id", sa.String(40), primary_key=True),
        sa.Column(
            "association_id", sa.String(40), sa.ForeignKey("associations.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("hosts", sa.Integer(), nullable=False),
        sa.Column("recorded", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_association_runs_association", "association_runs", ["association_id", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_association_runs_association", "association_runs")
    op.drop_table("association_runs")
    op.drop_table("association_hosts")
    op.drop_table("associations")
    with op.batch_alter_table("window_tasks") as batch:
        batch.drop_column("parameters")
        batch.drop_column("document")
