"""Documents: named, versioned, parameterised operations (docs/automation.md).

``documents`` holds each document's default and latest version; ``document_versions`` each
immutable version's text. Commands record the document they ran (``NAME:VERSION``) with the
parameters the hosts got, and a document's PowerShell script when it has one per platform
(``commands.windows_script``; ``script`` is then the shell one). Commands before this revision ran
no document.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fleetops.controller.store.models import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("default_version", sa.Integer(), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
    )
    op.create_table(
        "document_versions",
        sa.Column("name", sa.String(128), sa.ForeignKey("documents.name", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
    )
    with op.batch_alter_table("commands") as batch:
        batch.add_column(sa.Column("document", sa.String(160), nullable=False, server_default=""))
        batch.add_column(sa.Column("parameters", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("windows_script", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("commands") as batch:
        batch.drop_column("windows_script")
        batch.drop_column("parameters")
        batch.drop_column("document")
    op.drop_table("document_versions")
    op.drop_table("documents")
