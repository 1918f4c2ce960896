"""Controller settings: one frozen object built from the command line, read only by ``app.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from fleetops.controller.events.service import DeliverySettings
from fleetops.controller.throttle import ThrottleSettings

DEFAULT_PORT = 7443
DEFAULT_ENROLL_PORT = 7444
DEFAULT_METRICS_PORT = 9464
DEFAULT_CONSOLE_PORT = 7445


@dataclass(frozen=True)
class ControllerSettings:
    """Everything the controller needs to start.

    The state directory holds the CA (``ca/``), the server certificate (``server/``), the SQLite
    database (unless ``database_url`` says otherwise) and the local object store (``objects/``).
    """

    state_dir: Path
    listen: str = f"0.0.0.0:{DEFAULT_PORT}"
    enroll_listen: str = f"0.0.0.0:{DEFAULT_ENROLL_PORT}"
    metrics_listen: str = f"127.0.0.1:{DEFAULT_METRICS_PORT}"
    # The web console's HTTPS port (docs/console.md); "off": no console.
    console_listen: str = f"0.0.0.0:{DEFAULT_CONSOLE_PORT}"
    database_url: str = ""
    # "" = a local directory (state_dir/objects); s3://bucket/prefix?endpoint=...&region=...&path_style=true
    object_store_url: str = ""
    # Start even when the object store check fails (docs/operations.md "Object store"): output is
    # spooled and uploaded once the store works. Off: serve refuses to start on a failing store.
    allow_degraded_storage: bool = False
    # Bound of the command output spool (<state_dir>/output-spool), in bytes.
    output_spool_max_bytes: int = 4 << 30
    # Seconds between checks of a degraded object store (and uploads of the spooled output).
    object_store_retry_interval: float = 30.0
    migrate: bool = True
    heartbeat_interval: float = 10.0
    inventory_interval: float = 3600.0
    host_certificate_lifetime: timedelta = timedelta(hours=24)
    operator_certificate_lifetime: timedelta = timedelta(hours=12)
    server_dns_names: tuple[str, ...] = ("localhost",)
    server_ip_addresses: tuple[str, ...] = ("127.0.0.1",)
    # This replica's name among controllers sharing one database ("" = the host name) and where the
    # other replicas reach its --listen port ("" = derived from --listen; see docs/operations.md).
    replica_id: str = ""
    advertise_address: str = ""
    # Seconds after which a silent replica is dead (its routes cleared, its commands adopted); each
    # replica heartbeats every third of it.
    replica_dead_after: float = 15.0
    # The unauthenticated enrollment port (Register, OperatorLogin): rate per source address, lockout of
    # activations and login tokens after wrong answers, bounded refusal audit (docs/enrollment.md).
    enroll_throttle: ThrottleSettings = field(default_factory=ThrottleSettings)
    # Write-behind period of presence updates (see fleet/presence.py).
    presence_flush_interval: float = 0.2
    # Seconds a connected host has to acknowledge a sent invocation before it ends failed (docs/run-command.md).
    command_ack_timeout: float = 120.0
    # Interactive sessions (docs/sessions.md): seconds; 0 = no limit.
    session_idle_timeout: float = 20 * 60.0
    session_max_duration: float = 12 * 3600.0
    # Seconds between passes of the uploader over transcripts spooled while the store was down.
    transcript_upload_interval: float = 30.0
    # Shortest maintenance window accepted (AWS: 1 hour); tests lower it to seconds.
    window_min_duration: float = 3600.0
    # Seconds between signed checkpoints of the audit chain head in the object store (docs/operations.md).
    audit_checkpoint_interval: float = 3600.0
    # Delivery of events to subscriptions and the SMTP server (docs/events.md).
    events: DeliverySettings = field(default_factory=DeliverySettings)

    @property
    def ca_dir(self) -> Path:
        return self.state_dir / "ca"

    @property
    def server_dir(self) -> Path:
        return self.state_dir / "server"

    @property
    def transcript_spool_dir(self) -> Path:
        return self.state_dir / "transcripts"

    @property
    def output_spool_dir(self) -> Path:
        return self.state_dir / "output-spool"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.state_dir / 'fleetops.db'}"
