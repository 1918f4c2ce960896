"""Trust boundaries: window task authors, activation host-tag rules and lockout, invocation acknowledgement.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401  (used by the sections below)
from alembic import op  # noqa: F401

from fleetops.controller.store.models import UTCDateTime  # noqa: F401

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _upgrade_windows()
    _upgrade_enrollment()
    _upgrade_commands()


def downgrade() -> None:
    _downgrade_commands()
    _downgrade_enrollment()
    _downgrade_windows()


# --- maintenance windows: the operator each task acts for -------------------------------------------------


def _upgrade_windows() -> None:
    # Each task acts for an operator; tasks from before act for the operator who made their window.
    with op.batch_alter_table("window_tasks") as batch:
        batch.add_column(sa.Column("author", sa.String(255), nullable=False, server_default=""))
    tasks, windows = (
        sa.table("window_tasks", sa.column("window"), sa.column("author")),
        sa.table("maintenance_windows", sa.column("name"), sa.column("created_by")),
    )
    made_by = sa.select(windows.c.created_by).where(windows.c.name == tasks.c.window).scalar_subquery()
    op.execute(tasks.update().values(author=sa.func.coalesce(made_by, "")))
    with op.batch_alter_table("window_task_executions") as batch:
        batch.add_column(sa.Column("author", sa.String(255), nullable=False, server_default=""))
        batch.add_column(sa.Column("refused_hosts", sa.JSON(), nullable=False, server_default="[]"))


def _downgrade_windows() -> None:
    with op.batch_alter_table("window_task_executions") as batch:
        batch.drop_column("refused_hosts")
        batch.drop_column("author")
    with op.batch_alter_table("window_tasks") as batch:
        batch.drop_column("author")


# --- enrollment: which host tags an activation lets a host set, wrong-code lockout -------------------------


def _upgrade_enrollment() -> None:
    with op.batch_alter_table("activations") as batch:
        batch.add_column(sa.Column("allowed_host_tags", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("failed_codes", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_at", UTCDateTime(), nullable=True))
    # Tags hosts registered before this revision stay operator-set: the controller cannot tell any more
    # which of them a host chose (docs/enrollment.md says how to review them).
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("host_tags", sa.JSON(), nullable=False, server_default="{}"))


def _downgrade_enrollment() -> None:
    # Host-chosen tags go back into the one tags column they were kept apart from.
    hosts = sa.table(
        "hosts", sa.column("id", sa.String()), sa.column("tags", sa.JSON()), sa.column("host_tags", sa.JSON())
    )
    conn = op.get_bind()
    for host_id, tags, host_tags in conn.execute(sa.select(hosts.c.id, hosts.c.tags, hosts.c.host_tags)).all():
        if host_tags:
            conn.execute(hosts.update().where(hosts.c.id == host_id).values(tags={**(tags or {}), **host_tags}))
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("host_tags")
    with op.batch_alter_table("activations") as batch:
        batch.drop_column("locked_at")
        batch.drop_column("failed_codes")
        batch.drop_column("allowed_host_tags")


# --- run command: wire limits and unacknowledged invocations ------------------------------------------------


def _upgrade_commands() -> None:
    pass


def _downgrade_commands() -> None:
    pass
