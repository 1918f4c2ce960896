"""Patch management: baselines, patch groups, operations, per-host reports; agent tasks on commands.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fleetops.controller.store.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("commands") as batch:
        batch.add_column(sa.Column("agent_task", sa.String(32), nullable=False, server_default=""))
        batch.add_column(sa.Column("task_input", sa.LargeBinary(), nullable=True))
    op.create_table(
        "patch_baselines",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("os_family", sa.String(16), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
    )
    op.create_table(
        "patch_groups",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("selector", sa.Text(), nullable=False),
        sa.Column("baseline", sa.String(64), sa.ForeignKey("patch_baselines.name"), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
    )
    op.create_table(
        "patch_operations",
        sa.Column("command_id", sa.String(40), sa.ForeignKey("commands.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("reboot", sa.String(16), nullable=False),
        sa.Column("snapshots", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "patch_reports",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("invocation_id", sa.String(40), nullable=False),
        sa.Column("command_id", sa.String(40), nullable=False),
        sa.Column("host_id", sa.String(32), nullable=False),
        sa.Column("host_name", sa.String(255), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("reported_at", UTCDateTime(), nullable=False),
        sa.Column("os_family", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("baseline", sa.String(64), nullable=False),
        sa.Column("patch_group", sa.String(64), nullable=False),
        sa.Column("reboot_pending", sa.Boolean(), nullable=False),
        sa.Column("compliant", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.UniqueConstraint("invocation_id", name="uq_patch_reports_invocation"),
    )
    op.create_index("ix_patch_reports_host_reported", "patch_reports", ["host_id", "reported_at"])
    op.create_table(
        "patch_versions_seen",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("version", sa.String(255), primary_key=True),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("patch_versions_seen", "patch_reports", "patch_operations", "patch_groups", "patch_baselines"):
        op.drop_table(table)
    with op.batch_alter_table("commands") as batch:
        batch.drop_column("task_input")
        batch.drop_column("agent_task")
