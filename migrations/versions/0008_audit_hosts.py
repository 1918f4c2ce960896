"""Audit events indexed by the hosts they concern (``opsctl audit list --host``).

The new table is derived from each event's details (which the hash chain covers): events recorded
before this revision are indexed here from their stored details, in batches. Nothing in
``audit_events`` changes, so every hash and checkpoint stays valid. Controllers of the previous
release sharing the database during a rolling upgrade keep working; the events they record are not
indexed by host (they stay findable by target, and by a command's invocations or a session's host,
as before).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BATCH = 5000


def upgrade() -> None:
    op.create_table(
        "audit_event_hosts",
        sa.Column(
            "event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("audit_events.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("host", sa.String(255), primary_key=True),
    )
    op.create_index("ix_audit_event_hosts_host", "audit_event_hosts", ["host", "event_id"])
    _backfill()


def downgrade() -> None:
    op.drop_index("ix_audit_event_hosts_host", table_name="audit_event_hosts")
    op.drop_table("audit_event_hosts")


def _backfill() -> None:
    events = sa.table("audit_events", sa.column("id", sa.BigInteger()), sa.column("details", sa.JSON()))
    index = sa.table("audit_event_hosts", sa.column("event_id", sa.BigInteger()), sa.column("host", sa.String()))
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.select(events.c.id, events.c.details).where(events.c.id > last).order_by(events.c.id).limit(_BATCH)
        ).all()
        if not rows:
            return
        values = [
            {"event_id": event_id, "host": host} for event_id, details in rows for host in _hosts_concerned(details)
        ]
        if values:
            conn.execute(index.insert(), values)
        last = rows[-1][0]


# A copy of fleetops.controller.audit.hosts.hosts_concerned as of this revision (a migration must not
# change meaning when that module does).
def _hosts_concerned(details: Any) -> list[str]:
    if isinstance(details, str):  # a driver that hands JSON back as text
        try:
            details = json.loads(details)
        except ValueError:
            return []
    return list(dict.fromkeys(_names(details)))[:1000]


def _names(details: Any) -> Iterator[str]:
    if not isinstance(details, dict):
        return
    for key in ("host", "host_id", "hostname"):
        yield from _valid([details.get(key)])
    places = [details]
    decisions = details.get("authz")
    places += [d for d in (decisions if isinstance(decisions, list) else [decisions]) if isinstance(d, dict)]
    for place in places:
        for key in ("hosts", "denied_hosts", "refused_hosts"):
            value = place.get(key)
            if isinstance(value, list):
                yield from _valid(value)


def _valid(values: list[Any]) -> Iterator[str]:
    for value in values:
        if isinstance(value, str) and value and len(value) <= 255:
            yield value
