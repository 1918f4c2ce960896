"""Configuration as code: which objects ``opsctl apply`` applied, from which source (docs/apply.md).

``opsctl apply --prune`` deletes only objects that an earlier apply of the same source recorded
here, never objects made by hand or applied from another source. A row is removed when its
object is deleted by an apply; an object deleted by hand leaves a row that the next prune of its
source skips (nothing to delete).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fleetops.controller.store.models import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "applied_objects",
        sa.Column("kind", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("applied_by", sa.String(255), nullable=False),
        sa.Column("applied_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_applied_objects_source", "applied_objects", ["source"])


def downgrade() -> None:
    op.drop_index("ix_applied_objects_source", "applied_objects")
    op.drop_table("applied_objects")
