"""Controller replicas sharing one database: the replica registry and each command's owner.

``replicas`` holds every controller replica's peer address and heartbeat (the routing table's
other half is ``hosts.connected_replica``); ``commands.owner_replica`` names the replica running a
command's fan-out, so a surviving replica can adopt the commands of one that died. Commands
created before this revision have no owner: the first replica to start adopts them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fleetops.controller.store.models import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replicas",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.Column("stopped_at", UTCDateTime(), nullable=True),
    )
    with op.batch_alter_table("commands") as batch:
        batch.add_column(sa.Column("owner_replica", sa.String(128), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("commands") as batch:
        batch.drop_column("owner_replica")
    op.drop_table("replicas")
