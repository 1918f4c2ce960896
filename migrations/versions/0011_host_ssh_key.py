"""SSH sessions through the agent's built-in SSH server: hosts' SSH host keys, sessions' kind.

``hosts.ssh_host_key`` holds the OpenSSH public key line the agent sent in its last Hello; the
controller certifies it with the fleet's SSH host CA for each SSH session (docs/ssh.md). Hosts
registered before this revision have none until their agent next connects. ``sessions.kind``
is ``terminal`` (a program on a pty, recorded) or ``ssh`` (an SSH connection, not recorded by the
relay); sessions before this revision are terminal sessions.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("ssh_host_key", sa.String(512), nullable=False, server_default=""))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="terminal"))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("kind")
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("ssh_host_key")
