"""The report of an agent task, kept with its invocation (``invocations.task_report``).

Patch scans and installs send their report (the ``fleetops.v1.PatchReport`` message) with the
invocation's result instead of printing JSON on stdout; the controller keeps it here, in the
JSON form of ``fleetops.common.patch_report.PatchReport``, so a result committed while the
patching service was not listening is still taken in after a restart. A nullable column: the
controller of the previous release ignores it (its agents print JSON, which this release no
longer reads: agents and controllers upgrade together, docs/patching.md).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invocations") as batch:
        batch.add_column(sa.Column("task_report", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invocations") as batch:
        batch.drop_column("task_report")
