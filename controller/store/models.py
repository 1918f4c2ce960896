"""The controller's durable state as SQLAlchemy 2 declarative models.

The schema is only ever changed by an alembic migration (``migrations/versions``);
``tests/integration/test_store.py`` fails when these models and the migrated schema drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(timezone.utc)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite keeps no zone; everything stored is UTC
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class HostRow(Base):
    __tablename__ = "hosts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    # "active" or "deregistered"; presence (online/offline) is derived from connected + last_seen_at.
    state: Mapped[str] = mapped_column(String(16), default="active")
    # Operator-set tags (the activation's, then opsctl hosts tag): the only ones role selectors see.
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Tags the host chose at registration, under keys its activation allowed (targeting sees them,
    # access decisions never do). A key is in one of the two, never both.
    host_tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    inventory: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    activation_id: Mapped[str] = mapped_column(String(64), default="")
    registered_at: Mapped[datetime]
    deregistered_at: Mapped[datetime | None] = mapped_column(default=None)
    certificate_serial: Mapped[str] = mapped_column(String(64), default="")
    certificate_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    connected: Mapped[bool] = mapped_column(Boolean, default=False)
    connected_at: Mapped[datetime | None] = mapped_column(default=None)
    connected_replica: Mapped[str] = mapped_column(String(128), default="")
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    peer_address: Mapped[str] = mapped_column(String(128), default="")
    # The agent's SSH host public key (OpenSSH line, from its Hello): certified by the fleet's SSH
    # host CA for each SSH session to the host (docs/ssh.md). Empty for an agent that sent none.
    ssh_host_key: Mapped[str] = mapped_column(String(512), default="")


class ReplicaRow(Base):
    """A controller replica sharing this database: where its peers reach it, and whether it is alive."""

    __tablename__ = "replicas"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    # host:port of its mutual-TLS listener, dialled by the other replicas' peer clients.
    address: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime]
    # Written every heartbeat; a replica silent for longer than the dead-after period is swept:
    # its hosts' routes are cleared and its commands adopted.
    heartbeat_at: Mapped[datetime]
    # Set when it stopped cleanly (its routes were already cleared).
    stopped_at: Mapped[datetime | None] = mapped_column(default=None)


class ActivationRow(Base):
    __tablename__ = "activations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # SHA-256 of the code: codes carry about 119 random bits, so a fast hash is enough and the code itself
    # is never stored.
    code_sha256: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    default_tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    registration_limit: Mapped[int] = mapped_column(Integer)
    registrations_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255), default="")
    # Tag keys a registering host may set itself (its --tag); any other key is refused.
    allowed_host_tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Wrong codes presented for this activation; at the lockout threshold ``locked_at`` is set and
    # even the right code is refused from then on.
    failed_codes: Mapped[int] = mapped_column(Integer, default=0)
    locked_at: Mapped[datetime | None] = mapped_column(default=None)


class AuditEventRow(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_time", "time"), Index("ix_audit_events_actor", "actor"))

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    time: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(128))
    target: Mapped[str] = mapped_column(String(512), default="")
    outcome: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    previous_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditEventHostRow(Base):
    """The hosts an audit event concerns (``audit list --host``), derived from its hashed details."""

    __tablename__ = "audit_event_hosts"
    __table_args__ = (Index("ix_audit_event_hosts_host", "host", "event_id"),)

    event_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("audit_events.id", ondelete="CASCADE"),
        primary_key=True,
    )
    host: Mapped[str] = mapped_column(String(255), primary_key=True)


class CommandRow(Base):
    __tablename__ = "commands"
    __table_args__ = (Index("ix_commands_created_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))
    argv: Mapped[list[str]] = mapped_column(JSON, default=list)
    script: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    cwd: Mapped[str] = mapped_column(String(1024), default="")
    env: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    run_as: Mapped[str] = mapped_column(String(64), default="")
    target: Mapped[str] = mapped_column(Text, default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    # As typed ("50", "10%") and as resolved against the number of targets.
    max_concurrency: Mapped[str] = mapped_column(String(16))
    max_errors: Mapped[str] = mapped_column(String(16))
    concurrency_limit: Mapped[int] = mapped_column(Integer)
    error_limit: Mapped[int] = mapped_column(Integer)
    timeout_seconds: Mapped[int] = mapped_column(Integer)
    delivery_timeout_seconds: Mapped[int] = mapped_column(Integer)
    kill_grace_seconds: Mapped[int] = mapped_column(Integer, default=5)
    # in_progress | success | failed | cancelled
    status: Mapped[str] = mapped_column(String(16))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    total: Mapped[int] = mapped_column(Integer)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # An agent task instead of argv/script ("patch.scan", "patch.install") and its JSON request.
    agent_task: Mapped[str] = mapped_column(String(32), default="")
    task_input: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # The replica running the command's fan-out (its CommandRun); another replica adopts the command
    # when this one stops heartbeating (docs/architecture.md "Replicas"). "" before migration 0010.
    owner_replica: Mapped[str] = mapped_column(String(128), default="")
    # The document run (NAME:VERSION, "" for a plain command) and its parameters as the hosts got
    # them; ``windows_script`` is the document's PowerShell script when it has one for each platform
    # (``script`` is then the shell one). Migration 0012.
    document: Mapped[str] = mapped_column(String(160), default="")
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    windows_script: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)


class InvocationRow(Base):
    __tablename__ = "invocations"
    __table_args__ = (
        UniqueConstraint("command_id", "host_id", name="uq_invocations_command_host"),
        Index("ix_invocations_host_state", "host_id", "state"),
        Index("ix_invocations_command_state", "command_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    command_id: Mapped[str] = mapped_column(String(40), ForeignKey("commands.id", ondelete="CASCADE"))
    host_id: Mapped[str] = mapped_column(String(32))
    host_name: Mapped[str] = mapped_column(String(255))
    # pending | delivered | running | success | failed | timed_out | cancelled | undeliverable | not_started
    state: Mapped[str] = mapped_column(String(16))
    # Set (durably) before the invocation is first sent; pending + sent_at = in flight, not yet acknowledged.
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    send_count: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    exit_code: Mapped[int | None] = mapped_column(Integer, default=None)
    reason: Mapped[str] = mapped_column(Text, default="")
    rebooted: Mapped[bool] = mapped_column(Boolean, default=False)
    stdout_tail: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    stderr_tail: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    stdout_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    stderr_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # An agent task's report (patch scan/install: fleetops.common.patch_report.PatchReport.to_dict()).
    task_report: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    updated_at: Mapped[datetime]


class SessionRow(Base):
    """One interactive session: who, where, how it ended, and where its transcript is."""

    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_started_at", "started_at"),
        Index("ix_sessions_state", "state"),
        Index("ix_sessions_host_started", "host_id", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    host_id: Mapped[str] = mapped_column(String(32))
    host_name: Mapped[str] = mapped_column(String(255))
    operator: Mapped[str] = mapped_column(String(255))
    run_as: Mapped[str] = mapped_column(String(64), default="")
    command: Mapped[str] = mapped_column(Text, default="")
    term: Mapped[str] = mapped_column(String(64), default="")
    cols: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    record_input: Mapped[bool] = mapped_column(Boolean, default=False)
    # terminal (a program on a pty, recorded) | ssh (an SSH connection to the agent's SSH server)
    kind: Mapped[str] = mapped_column(String(16), default="terminal")
    # The controller replica brokering the session (host:port): a restart ends only its own sessions.
    broker: Mapped[str] = mapped_column(String(255))
    # starting | active | ended
    state: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    end_reason: Mapped[str] = mapped_column(String(32), default="")
    end_message: Mapped[str] = mapped_column(Text, default="")
    exit_code: Mapped[int | None] = mapped_column(Integer, default=None)
    transcript_key: Mapped[str] = mapped_column(String(512), default="")
    # recording | spooled | stored | none (the session never started on the host)
    transcript_state: Mapped[str] = mapped_column(String(16), default="recording")
    transcript_sha256: Mapped[str] = mapped_column(String(64), default="")
    transcript_size: Mapped[int | None] = mapped_column(BigInteger, default=None)


class PatchBaselineRow(Base):
    """A patch baseline (docs/patching.md); ``document`` is ``Baseline.to_dict()``."""

    __tablename__ = "patch_baselines"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    os_family: Mapped[str] = mapped_column(String(16))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(255))


class PatchGroupRow(Base):
    """A patch group: hosts whose tags match ``selector`` use ``baseline``."""

    __tablename__ = "patch_groups"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    selector: Mapped[str] = mapped_column(Text)
    baseline: Mapped[str] = mapped_column(String(64), ForeignKey("patch_baselines.name"))
    priority: Mapped[int] = mapped_column(Integer)


class PatchOperationRow(Base):
    """A scan or install fan-out; an install keeps the approved snapshots it was started with."""

    __tablename__ = "patch_operations"

    command_id: Mapped[str] = mapped_column(String(40), ForeignKey("commands.id", ondelete="CASCADE"), primary_key=True)
    operation: Mapped[str] = mapped_column(String(16))  # scan | install
    reboot: Mapped[str] = mapped_column(String(16), default="")
    snapshots: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]


class PatchReportRow(Base):
    """One host's patch state from one scan or install: compliance history, one row per report."""

    __tablename__ = "patch_reports"
    __table_args__ = (
        UniqueConstraint("invocation_id", name="uq_patch_reports_invocation"),
        Index("ix_patch_reports_host_reported", "host_id", "reported_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    invocation_id: Mapped[str] = mapped_column(String(40))
    command_id: Mapped[str] = mapped_column(String(40))
    host_id: Mapped[str] = mapped_column(String(32))
    host_name: Mapped[str] = mapped_column(String(255))
    operation: Mapped[str] = mapped_column(String(16))
    reported_at: Mapped[datetime]
    os_family: Mapped[str] = mapped_column(String(16), default="")
    provider: Mapped[str] = mapped_column(String(32), default="")
    baseline: Mapped[str] = mapped_column(String(64), default="")
    patch_group: Mapped[str] = mapped_column(String(64), default="")
    reboot_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    compliant: Mapped[bool] = mapped_column(Boolean, default=False)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    findings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    outcomes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Set when the report could not be used (malformed output): the host counts as not scanned.
    error: Mapped[str] = mapped_column(Text, default="")


class PatchSeenRow(Base):
    """When the controller first saw a package version offered (stands in for an unknown release date)."""

    __tablename__ = "patch_versions_seen"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[str] = mapped_column(String(255), primary_key=True)
    first_seen: Mapped[datetime]


class MaintenanceWindowRow(Base):
    """A maintenance window (docs/maintenance-windows.md)."""

    __tablename__ = "maintenance_windows"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    schedule: Mapped[str] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64))
    duration_seconds: Mapped[int] = mapped_column(Integer)
    cutoff_seconds: Mapped[int] = mapped_column(Integer)
    cutoff_behavior: Mapped[str] = mapped_column(String(16))  # continue | cancel
    start_date: Mapped[datetime | None] = mapped_column(default=None)
    end_date: Mapped[datetime | None] = mapped_column(default=None)
    offset_days: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))
    # Occurrences at or before this instant are never run (creation, re-enabling, a schedule change).
    considered_from: Mapped[datetime]


class WindowTaskRow(Base):
    __tablename__ = "window_tasks"
    __table_args__ = (Index("ix_window_tasks_window", "window"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    window: Mapped[str] = mapped_column(String(64), ForeignKey("maintenance_windows.name", ondelete="CASCADE"))
    priority: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16))  # patch-scan | patch-install | run
    target: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"selector": ..., "hosts": [...], "all": bool}
    max_concurrency: Mapped[str] = mapped_column(String(16), default="")
    max_errors: Mapped[str] = mapped_column(String(16), default="")
    reboot: Mapped[str] = mapped_column(String(16), default="")
    argv: Mapped[list[str]] = mapped_column(JSON, default=list)
    script: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    run_as: Mapped[str] = mapped_column(String(64), default="")
    timeout_seconds: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    # The operator the task acts for ("operator:NAME"): whoever added or last changed it. Each run is
    # authorized as this operator, then (docs/maintenance-windows.md#whose-rights-a-task-runs-with).
    author: Mapped[str] = mapped_column(String(255), default="")
    # A document or automation task: the document (NAME or NAME:VERSION) and its parameters as
    # given (migration 0013); checked again against the document at each run.
    document: Mapped[str] = mapped_column(String(160), default="")
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WindowExecutionRow(Base):
    """One occurrence of a window; the unique (window, scheduled_at) is what makes it run once."""

    __tablename__ = "window_executions"
    __table_args__ = (
        UniqueConstraint("window", "scheduled_at", name="uq_window_executions_occurrence"),
        Index("ix_window_executions_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    window: Mapped[str] = mapped_column(String(64))
    scheduled_at: Mapped[datetime]
    # in_progress | success | failed | timed_out | cancelled | skipped_overlapping | missed
    status: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    ends_at: Mapped[datetime]
    cutoff_at: Mapped[datetime]
    cutoff_behavior: Mapped[str] = mapped_column(String(16))
    controller: Mapped[str] = mapped_column(String(255), default="")
    # The running controller renews this; another one takes an execution over once it lapses.
    lease_until: Mapped[datetime | None] = mapped_column(default=None)


class WindowTaskExecutionRow(Base):
    __tablename__ = "window_task_executions"
    __table_args__ = (UniqueConstraint("execution_id", "task_id", name="uq_window_task_executions_task"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(String(40), ForeignKey("window_executions.id", ondelete="CASCADE"))
    task_id: Mapped[str] = mapped_column(String(40))
    priority: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(Text, default="")
    # pending | in_progress | success | failed | cancelled | timed_out | skipped
    status: Mapped[str] = mapped_column(String(16))
    command_id: Mapped[str] = mapped_column(String(40), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # Whom this run acted for, and the hosts its target matched that the author may not touch.
    author: Mapped[str] = mapped_column(String(255), default="")
    refused_hosts: Mapped[list[str]] = mapped_column(JSON, default=list)


class UserRow(Base):
    """An operator identity; certificates name it in their URI SAN (``fleetops://operator/<name>``)."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))
    # Certificates issued before this instant are refused (set on creation and on re-enabling).
    valid_after: Mapped[datetime]
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    certificate_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    # The pending one-time login token (only its hash), if any.
    token_id: Mapped[str] = mapped_column(String(32), default="")
    token_sha256: Mapped[str] = mapped_column(String(64), default="")
    token_expires_at: Mapped[datetime | None] = mapped_column(default=None)


class RoleRow(Base):
    """A role: allow and deny rules (``document`` is ``Role.to_dict()``, docs/access.md)."""

    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(255))


class DocumentRow(Base):
    """A document (docs/automation.md): its versions are ``document_versions`` rows."""

    __tablename__ = "documents"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    default_version: Mapped[int] = mapped_column(Integer)
    latest_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))


class DocumentVersionRow(Base):
    """One immutable version of a document: the text as given (``content``) and what it is."""

    __tablename__ = "document_versions"

    name: Mapped[str] = mapped_column(String(128), ForeignKey("documents.name", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    content: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # command | action | runbook
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))


class AssociationRow(Base):
    """A document kept applied to a target (docs/automation.md#associations)."""

    __tablename__ = "associations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(128), unique=True, default=None)
    document: Mapped[str] = mapped_column(String(160))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    target: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"selector": ..., "hosts": [...], "all": bool}
    schedule: Mapped[str] = mapped_column(String(255))
    max_concurrency: Mapped[str] = mapped_column(String(16), default="")
    max_errors: Mapped[str] = mapped_column(String(16), default="")
    check_interval_seconds: Mapped[int] = mapped_column(Integer, default=0)
    author: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    # The next application the schedule wants; claimed by moving it forward in one UPDATE (exactly
    # once across replicas).
    next_run_at: Mapped[datetime]
    last_run_at: Mapped[datetime | None] = mapped_column(default=None)
    next_check_at: Mapped[datetime | None] = mapped_column(default=None)


class AssociationHostRow(Base):
    """One host's compliance with one association: the last application and the last check."""

    __tablename__ = "association_hosts"

    association_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("associations.id", ondelete="CASCADE"), primary_key=True
    )
    host_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # pending | compliant | non_compliant | drifted | failed
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    last_applied_at: Mapped[datetime | None] = mapped_column(default=None)
    last_command_id: Mapped[str] = mapped_column(String(40), default="")
    last_check_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime]


class AssociationRunRow(Base):
    """One application (or check) of an association: the command it made."""

    __tablename__ = "association_runs"
    __table_args__ = (Index("ix_association_runs_association", "association_id", "started_at"),)

    command_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    association_id: Mapped[str] = mapped_column(String(40), ForeignKey("associations.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | new-host | manual | check
    started_at: Mapped[datetime]
    hosts: Mapped[int] = mapped_column(Integer)
    # Whether the command's results were taken into the hosts' compliance.
    recorded: Mapped[bool] = mapped_column(Boolean, default=False)


class AutomationExecutionRow(Base):
    """One execution of a runbook (docs/automation.md#runbooks)."""

    __tablename__ = "automation_executions"
    __table_args__ = (Index("ix_automation_executions_status", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    runbook: Mapped[str] = mapped_column(String(160))  # NAME:VERSION
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # in_progress | waiting_approval | success | failed | cancelled
    status: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text, default="")
    current_step: Mapped[str] = mapped_column(String(64), default="")
    # Steps run so far (the next step record's seq) and every step's outputs, for templates.
    steps_run: Mapped[int] = mapped_column(Integer, default=0)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_by: Mapped[str] = mapped_column(String(255))
    started_via: Mapped[str] = mapped_column(String(255), default="cli")
    comment: Mapped[str] = mapped_column(Text, default="")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # The replica advancing it renews this; another takes it over once it lapses.
    owner: Mapped[str] = mapped_column(String(128), default="")
    lease_until: Mapped[datetime | None] = mapped_column(default=None)


class AutomationStepRow(Base):
    """One step as it ran in an execution (a step run again by a goto is a new row)."""

    __tablename__ = "automation_steps"

    execution_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("automation_executions.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    # in_progress | waiting | success | failed | cancelled
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    # Where a run step is: {"batches": [[host ids]...], "batch": i, "commands": [...], "probes": [...]}
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # approve: when it times out
    deadline: Mapped[datetime | None] = mapped_column(default=None)


class AutomationApprovalRow(Base):
    """An operator's answer to an approve step."""

    __tablename__ = "automation_approvals"

    execution_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("automation_executions.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    operator: Mapped[str] = mapped_column(String(255), primary_key=True)
    approved: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]


class ConsoleLinkRow(Base):
    """A one-time link into the web console (docs/console.md): only its hash is kept."""

    __tablename__ = "console_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator: Mapped[str] = mapped_column(String(255))
    # The certificate the operator presented when asking for the link: the browser session acts
    # with it (every page is a call authenticated by it) and ends when it expires.
    certificate_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class ConsoleSessionRow(Base):
    """A browser's session in the web console, made by using a link (only hashes are kept)."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_expires", "expires_at"),)

    session_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator: Mapped[str] = mapped_column(String(255))
    certificate_pem: Mapped[str] = mapped_column(Text)
    # The form token of state-changing requests (kept as given: it is not a credential alone).
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class EventRow(Base):
    """The events outbox (docs/events.md): written in the transaction of the change it describes.

    ``position`` is given by the dispatcher, one replica at a time, in the order it first sees the
    committed events: watchers and subscriptions follow it (ids are given at insert, so a later id
    can commit first; positions are never given to an uncommitted event).
    """

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    # The CloudEvents id: the idempotency key every delivery of this event carries.
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(300))
    # The host the event is about, when it is about one host (``--target`` matches it).
    host_name: Mapped[str | None] = mapped_column(String(255), default=None)
    time: Mapped[datetime]
    data: Mapped[dict[str, Any]]
    position: Mapped[int | None] = mapped_column(BigInteger, default=None, unique=True)
    # Only for a subscription's test event: delivered to that subscription alone.
    only_subscription: Mapped[str | None] = mapped_column(String(32), default=None)

    __table_args__ = (Index("ix_events_unplaced", "position", "id"), Index("ix_events_time", "time"))


class SubscriptionRow(Base):
    """Where events go: a webhook (signed with ``secret``) or an email address (docs/events.md)."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # "webhook" | "email"
    endpoint: Mapped[str] = mapped_column(String(2048))  # the URL or the address
    secret: Mapped[str] = mapped_column(String(128))  # webhooks: the HMAC key ("" for email)
    types: Mapped[list[str]] = mapped_column(JSON)  # type patterns; empty: every type
    target: Mapped[str] = mapped_column(String(1024), default="")  # a host selector; "": any event
    author: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    # The position the subscription starts after: it gets the events placed after it was made.
    start_position: Mapped[int] = mapped_column(BigInteger, default=0)


class DeliveryRow(Base):
    """One event for one subscription: pending until delivered, retried, then dead-lettered."""

    __tablename__ = "event_deliveries"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    subscription_id: Mapped[str] = mapped_column(String(32), ForeignKey("subscriptions.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), ForeignKey("events.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(16))  # "pending" | "delivered" | "dead"
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(String(1024), default="")

    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_event_deliveries_subscription_event"),
        Index("ix_event_deliveries_due", "status", "next_attempt_at"),
    )


class DeliveryAttemptRow(Base):
    """One try of a delivery: when, how long, and what the receiver (or the network) said."""

    __tablename__ = "event_delivery_attempts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    delivery_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), ForeignKey("event_deliveries.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    duration_ms: Mapped[int] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    result: Mapped[str] = mapped_column(String(1024))  # "HTTP 200", "HTTP 500: ...", "connection refused"

    __table_args__ = (Index("ix_event_delivery_attempts_delivery", "delivery_id"),)
