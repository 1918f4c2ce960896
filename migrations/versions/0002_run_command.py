"""Commands and their per-host invocations (run command).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fleetops.controller.store.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "commands",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("argv", sa.JSON(), nullable=False),
        sa.Column("script", sa.LargeBinary(), nullable=True),
        sa.Column("cwd", sa.String(1024), nullable=False),
        sa.Column("env", sa.JSON(), nullable=False),
        sa.Column("run_as", sa.String(64), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("max_concurrency", sa.String(16), nullable=False),
        sa.Column("max_errors", sa.String(16), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=False),
        sa.Column("error_limit", sa.Integer(), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("delivery_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("kill_grace_seconds", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_commands_created_at", "commands", ["created_at"])
    op.create_table(
        "invocations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("command_id", sa.String(40), sa.ForeignKey("commands.id", ondelete="CASCADE"), nullable=False),
        sa.Column("host_id", sa.String(32), nullable=False),
        sa.Column("host_name", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("send_count", sa.Integer(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("rebooted", sa.Boolean(), nullable=False),
        sa.Column("stdout_tail", sa.LargeBinary(), nullable=False),
        sa.Column("stderr_tail", sa.LargeBinary(), nullable=False),
        sa.Column("stdout_bytes", sa.BigInteger(), nullable=False),
        sa.Column("stderr_bytes", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("command_id", "host_id", name="uq_invocations_command_host"),
    )
    op.create_index("ix_invocations_host_state", "invocations", ["host_id", "state"])
    op.create_index("ix_invocations_command_state", "invocations", ["command_id", "state"])


def downgrade() -> None:
    op.drop_table("invocations")
    op.drop_table("commands")
