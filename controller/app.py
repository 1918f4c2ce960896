"""The controller's composition root: the one place that reads settings and builds services."""

from __future__ import annotations

import logging
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from cryptography import x509

from fleetops.common import pki
from fleetops.common.errors import Conflict, InvalidInput, NotFound
from fleetops.common.files import write_public_file, write_secret_file
from fleetops.controller.associations.service import AssociationService
from fleetops.controller.audit.checkpoint import AuditCheckpointer, Checkpoint
from fleetops.controller.audit.export import AuditExporter
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.audit.signing import load_signer
from fleetops.controller.authz.acting import Acting
from fleetops.controller.authz.store import RoleStore
from fleetops.controller.automation.service import AutomationService
from fleetops.controller.commands.output import OutputSpool
from fleetops.controller.commands.service import CommandService
from fleetops.controller.commands.store import InvocationStore
from fleetops.controller.config import AppliedObjects, ConfigService
from fleetops.controller.config.registry import default_kinds
from fleetops.controller.console.agent_downloads import AgentDownloads
from fleetops.controller.console.server import ConsoleServer
from fleetops.controller.console.store import ConsoleStore
from fleetops.controller.console.web import REFUSALS_ACTION as CONSOLE_REFUSALS_ACTION
from fleetops.controller.console.web import Console
from fleetops.controller.documents.service import DocumentService
from fleetops.controller.documents.store import DocumentStore
from fleetops.controller.enrollment.service import EnrollmentService
from fleetops.controller.events.service import EventService
from fleetops.controller.events.store import EventStore
from fleetops.controller.fleet.presence import PresenceTracker
from fleetops.controller.fleet.service import FleetService
from fleetops.controller.metrics import ControllerMetrics, MetricsInterceptor
from fleetops.controller.objects.factory import store_from_url
from fleetops.controller.objects.health import MonitoredStore, StoreHealth, check_store
from fleetops.controller.objects.interfaces import StoreUnavailable
from fleetops.controller.patching.service import PatchService
from fleetops.controller.releases.service import AgentReleases
from fleetops.controller.releases.signing import load_release_signer
from fleetops.controller.replicas.models import Route
from fleetops.controller.replicas.service import ReplicaRegistry
from fleetops.controller.replicas.store import ReplicaStore
from fleetops.controller.rpc import server as rpc_server
from fleetops.controller.rpc.agent_channel import GrpcAgentChannel
from fleetops.controller.rpc.agent_service import AgentServicer
from fleetops.controller.rpc.enrollment_service import EnrollmentServicer
from fleetops.controller.rpc.invocation_reports import InvocationReports
from fleetops.controller.rpc.operator import OperatorServicer
from fleetops.controller.rpc.peer_client import PeerClients
from fleetops.controller.rpc.peer_service import PeerServicer
from fleetops.controller.rpc.session_relay import PeerSessionRelay
from fleetops.controller.sessions.broker import SessionBroker
from fleetops.controller.sessions.models import SessionLimits
from fleetops.controller.sessions.store import SessionStore
from fleetops.controller.settings import ControllerSettings
from fleetops.controller.ssh import SshAuthority
from fleetops.controller.store import database, notify
from fleetops.controller.store.notify import ChangeListener
from fleetops.controller.throttle import EnrollmentThrottle, RefusalLog
from fleetops.controller.users.service import UserService
from fleetops.controller.windows.authority import TaskAuthority
from fleetops.controller.windows.service import WindowService
from fleetops.v1 import agent_pb2_grpc, enrollment_pb2_grpc, operator_pb2_grpc, peer_pb2_grpc

log = logging.getLogger(__name__)

SERVER_CERT_LIFETIME = timedelta(days=90)


def split_address(address: str) -> tuple[str, int]:
    """``"host:port"`` / ``"[::1]:port"`` -> (host, port).

    Raises:
        InvalidInput: no port, or a port that is not a number in 0..65535.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise InvalidInput(f"bad address {address!r}", "use HOST:PORT, e.g. 0.0.0.0:7443")
    return host.strip("[]") or "0.0.0.0", int(port)


def ensure_server_certificate(settings: ControllerSettings, authority: pki.CertificateAuthority) -> tuple[bytes, bytes]:
    """The TLS key and chain (leaf + CA) the listeners present; reissued when due or SANs changed."""
    key_path = settings.server_dir / "server.key"
    cert_path = settings.server_dir / "server.pem"
    if key_path.exists() and cert_path.exists():
        chain = pki.load_cert_chain(cert_path.read_bytes())
        leaf = chain[0]
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = set(san.get_values_for_type(x509.DNSName))
        ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
        if (
            not pki.renewal_due(leaf)
            and names == set(settings.server_dns_names)
            and ips == set(settings.server_ip_addresses)
        ):
            return key_path.read_bytes(), cert_path.read_bytes()
    key = pki.generate_private_key()
    cert = authority.issue_server_certificate(
        key.public_key(), settings.server_dns_names, settings.server_ip_addresses, SERVER_CERT_LIFETIME
    )
    chain_pem = pki.cert_pem(cert) + pki.cert_pem(authority.cert)
    write_secret_file(key_path, pki.private_key_pem(key))
    write_public_file(cert_path, chain_pem)
    return key_path.read_bytes(), chain_pem


async def take_audit_checkpoint(settings: ControllerSettings, requested_by: str) -> Checkpoint:
    """``fleetops-controller audit checkpoint``: sign the chain head into the object store now.

    Runs beside a serving controller (the checkpoint lock and the store keep them in order) and
    is audited as ``audit.checkpoint``, refused or not.

    Raises:
        NotFound: no checkpoint key in ``ca/`` (the controller makes it at its first start).
        Conflict: the log no longer matches the newest checkpoint, or that one does not verify.
        Unavailable: the store or the database is unreachable, or the schema is out of date.
    """
    signer = load_signer(settings.ca_dir)
    engine = database.create_engine(settings.effective_database_url)
    objects = store_from_url(settings.object_store_url, settings.state_dir)
    try:
        await database.ensure_schema(engine, migrate=False)
        audit = AuditLog(database.session_factory(engine))
        replica = settings.replica_id or default_replica_id()
        checkpointer = AuditCheckpointer(audit, objects, signer, controller=replica)
        actor, details = f"controller:{replica}", {"requested_by": requested_by}
        try:
            written = await checkpointer.checkpoint()
        except Conflict as exc:
            await audit.record(
                actor=actor, action="audit.checkpoint", outcome="refused", details={**details, "error": exc.message}
            )
            raise
        await audit.record(
            actor=actor, action="audit.checkpoint", target=written.key, details={**details, "head_id": written.head_id}
        )
        return written
    finally:
        await objects.close()
        await engine.dispose()


async def add_agent_releases(settings: ControllerSettings, packages: list[Path], requested_by: str) -> list[str]:
    """``fleetops-controller release add``: sign and store each package, each audited as ``release.add``.

    A package refused (not the agent's, or another package under an existing name) is audited
    with outcome ``refused`` and stops the run; those before it stay added. Returns a line per
    package added.

    Raises:
        InvalidInput, Conflict: a package was refused (see above).
        Unavailable: the store or the database is unreachable, or the schema is out of date.
    """
    engine = database.create_engine(settings.effective_database_url)
    objects = store_from_url(settings.object_store_url, settings.state_dir)
    try:
        await database.ensure_schema(engine, migrate=False)
        audit = AuditLog(database.session_factory(engine))
        releases = AgentReleases(objects, load_release_signer(settings.ca_dir, create=True))
        actor = f"controller:{settings.replica_id or default_replica_id()}"
        added = []
        for path in packages:
            details: dict[str, object] = {"requested_by": requested_by, "file": path.name}
            try:
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    raise InvalidInput(f"cannot read {path}: {exc.strerror}", "give the path of a .deb") from None
                stored = await releases.add(data)
            except (InvalidInput, Conflict) as exc:
                details["error"] = exc.message
                await audit.record(
                    actor=actor, action="release.add", target=path.name, outcome="refused", details=details
                )
                raise
            m = stored.manifest
            details.update(version=m.version, arch=m.arch, sha256=m.sha256, key_id=m.key_id)
            await audit.record(actor=actor, action="release.add", target=m.file_name, details=details)
            added.append(f"added {m.file_name}: agent {m.version} ({m.arch}), sha256 {m.sha256}, signed by {m.key_id}")
        return added
    finally:
        await objects.close()
        await engine.dispose()


def default_replica_id() -> str:
    """The host name as a replica id: what a certificate name allows of it (letters, digits, . _ - ...),
    at most 64 characters."""
    name = re.sub(r"[^A-Za-z0-9._@+-]", "-", socket.gethostname()).lstrip("._@+-")[:64]
    return name or "controller"


def advertise_address(settings: ControllerSettings, listen_host: str, listen_port: int) -> str:
    """Where the other replicas reach this one: --advertise-address, else the listen host (the
    machine's name when it listens on all addresses) with the bound port."""
    if settings.advertise_address:
        split_address(settings.advertise_address)  # InvalidInput when it is no HOST:PORT
        return settings.advertise_address
    host = socket.getfqdn() if listen_host in ("0.0.0.0", "::", "") else listen_host
    return f"[{host}]:{listen_port}" if ":" in host else f"{host}:{listen_port}"


@dataclass
class BoundPorts:
    listen: int
    enroll: int
    metrics: int
    console: int = 0  # 0: the console is off


class Controller:
    """A running controller replica. ``start`` builds everything from settings; ``stop`` undoes it."""

    def __init__(self, settings: ControllerSettings) -> None:
        self.settings = settings
        self.metrics = ControllerMetrics()
        self.replica_id = settings.replica_id or default_replica_id()

    async def start(self) -> BoundPorts:
        s = self.settings
        try:
            self.authority = pki.CertificateAuthority.load(s.ca_dir)
        except NotFound as exc:
            raise NotFound(
                f"no CA in {s.ca_dir}", f"create one first: fleetops-controller init --state-dir {s.state_dir}"
            ) from exc
        await self._open_object_store()
        self.engine = database.create_engine(s.effective_database_url)
        await database.ensure_schema(self.engine, migrate=s.migrate)
        self.sessions = database.session_factory(self.engine)
        self.audit = AuditLog(self.sessions)
        self.presence = PresenceTracker(self.sessions, self.replica_id, s.presence_flush_interval)
        self.fleet = FleetService(self.sessions, self.presence, heartbeat_interval=s.heartbeat_interval)
        # The enrollment port is unauthenticated: throttled per source, wrong answers locked out, its
        # refusals audited with a bound per source (docs/enrollment.md#throttling-and-lockout).
        self.enroll_throttle = EnrollmentThrottle(s.enroll_throttle)
        self.enroll_refusals = RefusalLog(
            self.audit,
            interval=s.enroll_throttle.refusal_interval,
            in_full=s.enroll_throttle.refusals_in_full,
        )
        self.enrollment = EnrollmentService(
            self.sessions,
            self.authority,
            self.fleet,
            self.audit,
            host_certificate_lifetime=s.host_certificate_lifetime,
            throttle=self.enroll_throttle,
        )
        self.users = UserService(
            self.sessions,
            self.authority,
            certificate_lifetime=s.operator_certificate_lifetime,
            throttle=self.enroll_throttle,
            audit=self.audit,
        )
        # Copies the audit log to the object store every minute (and on opsctl audit export).
        self.audit_exporter = AuditExporter(self.audit, self.objects)
        # Certifies hosts' SSH keys per SSH session and operators' SSH keys (made at the first start).
        self.ssh_authority = SshAuthority.load(s.ca_dir, create=True)
        # Signs the chain head into the object store at start, hourly and at stop (the key is in ca/).
        self.audit_checkpoints = AuditCheckpointer(
            self.audit,
            self.objects,
            load_signer(s.ca_dir, create=True),
            controller=self.replica_id,
            interval=s.audit_checkpoint_interval,
        )
        # Command output goes through the spool: the store's trouble never reaches an agent.
        self.commands = CommandService(
            InvocationStore(self.sessions),
            self.fleet,
            self.output,
            ack_timeout=s.command_ack_timeout,
            replica_id=self.replica_id,
        )
        # Agent releases in the object store, signed with the release key (made at the first start).
        self.releases = AgentReleases(self.objects, load_release_signer(s.ca_dir, create=True), self.commands)
        # Replicas sharing the database: the registry and routing table, wake-ups over LISTEN/NOTIFY,
        # and the peer clients that reach hosts held elsewhere (docs/architecture.md "Replicas").
        self.changes = ChangeListener(self.engine)
        self.registry = ReplicaRegistry(
            ReplicaStore(self.sessions),
            self.changes,
            self.replica_id,
            "",
            heartbeat_interval=s.replica_dead_after / 3,
            dead_after=s.replica_dead_after,
        )
        ca_pem = pki.cert_pem(self.authority.cert)
        replica_key = pki.generate_private_key()
        replica_cert = self.authority.issue_replica_certificate(
            replica_key.public_key(), self.replica_id, SERVER_CERT_LIFETIME
        )
        self.peers = PeerClients(
            self.registry,
            pki.private_key_pem(replica_key),
            pki.cert_pem(replica_cert) + ca_pem,
            ca_pem,
            self.metrics,
        )
        self.metrics.watch_replicas(self.registry.alive_count, self.registry.routed_elsewhere)
        self.commands.announce_changes = self.changes.enabled
        await self.fleet.start()
        self.presence.start()
        channel = GrpcAgentChannel(self.presence, self.peers)
        reports = InvocationReports(self.commands, self.peers, self.registry.fenced)
        self.patching = PatchService(self.sessions, self.fleet, self.commands)
        self.documents = DocumentService(DocumentStore(self.sessions))
        await self.patching.start()  # listens for results before commands resume
        await self.output.start()
        await self.commands.start(channel)

        key_pem, chain_pem = ensure_server_certificate(s, self.authority)
        interceptors = [MetricsInterceptor(self.metrics)]

        # Bind the port first: the session broker is named after it (a restart ends only its own sessions).
        self.server = grpc.aio.server(interceptors=interceptors, options=rpc_server.SERVER_OPTIONS)
        host, port = split_address(s.listen)
        listen_port = self.server.add_secure_port(
            f"{host}:{port}", rpc_server.mtls_credentials(key_pem, chain_pem, ca_pem)
        )
        self.registry.address = advertise_address(s, host, listen_port)
        await self.registry.start()  # Conflict: a live replica elsewhere has this id
        self.registry.on_host_moved(self.commands.host_moved)
        self.registry.on_replicas_dead(self._adopt)
        self.registry.on_rejoined(self.commands.after_silence)
        self.registry.on_routes_read(self._reassert_routes)
        self.changes.subscribe(notify.COMMANDS, self.commands.on_command_notice)
        self.changes.start()
        self.broker = SessionBroker(
            SessionStore(self.sessions),
            self.fleet,
            self.audit,
            self.objects,
            s.transcript_spool_dir,
            f"{self.replica_id}:{listen_port}",
            SessionLimits(idle_timeout=s.session_idle_timeout, max_duration=s.session_max_duration),
            upload_interval=s.transcript_upload_interval,
            ssh=self.ssh_authority,
        )
        # Spooled transcripts of sessions a crash interrupted are claimed before new sessions record.
        await self.broker.start(channel)
        self.windows = WindowService(
            self.sessions,
            self.commands,
            self.patching,
            f"{self.replica_id}:{listen_port}",
            # Each task run is authorized as its author, then (docs/maintenance-windows.md).
            authority=TaskAuthority(self.fleet, self.users, RoleStore(self.sessions), self.audit, self.documents),
            min_duration=int(s.window_min_duration),
        )
        # Associations and runbook executions act for their authors, decided again as they run.
        acting = Acting(self.users, RoleStore(self.sessions))
        replica = f"{self.replica_id}:{listen_port}"
        deps = (self.sessions, self.fleet, self.commands, self.patching, self.documents, acting, self.audit, replica)
        self.associations = AssociationService(*deps)
        self.automation = AutomationService(*deps)
        # Events out (docs/events.md): placed in one order, delivered to subscriptions as their authors.
        self.events = EventService(EventStore(self.sessions), self.fleet, acting, s.events)
        self.windows.executor.documents = self.documents
        self.windows.executor.runbooks = self.automation
        self.associations.runbooks = self.automation
        session_relay = PeerSessionRelay(self.broker, self.registry, self.peers)
        agent_servicer = AgentServicer(
            self.fleet,
            self.enrollment,
            self.audit,
            self.metrics,
            self.commands,
            self.broker,
            reports,
            session_relay,
            heartbeat_interval=s.heartbeat_interval,
            inventory_interval=s.inventory_interval,
        )
        agent_servicer.releases = self.releases
        agent_pb2_grpc.add_AgentServiceServicer_to_server(agent_servicer, self.server)
        operator_servicer = OperatorServicer(
            self.fleet,
            self.enrollment,
            self.audit,
            self.commands,
            self.broker,
            self.patching,
            self.windows,
            self.users,
            RoleStore(self.sessions),
            self.documents,
            self.associations,
            self.automation,
        )
        names = (*s.server_dns_names, *s.server_ip_addresses)
        operator_servicer.public_address = f"{names[0] if names else 'localhost'}:{listen_port}"
        operator_servicer.audit_exporter = self.audit_exporter
        operator_servicer.audit_checkpoints = self.audit_checkpoints
        operator_servicer.session_relay = session_relay
        operator_servicer.ssh_authority = self.ssh_authority
        operator_servicer.agent_releases = self.releases
        operator_servicer.events = self.events
        operator_servicer.configuration = ConfigService(
            default_kinds(
                RoleStore(self.sessions),
                self.patching,
                self.documents,
                self.windows,
                self.associations,
                self.events,
            ),
            AppliedObjects(self.sessions),
            self.audit,
        )
        self.operator_servicer = operator_servicer
        operator_pb2_grpc.add_OperatorServiceServicer_to_server(operator_servicer, self.server)
        peer_pb2_grpc.add_PeerServiceServicer_to_server(
            PeerServicer(
                self.presence, reports, self.broker, self.audit, self.authority, operator_servicer.operator_leg
            ),
            self.server,
        )
        health_main = rpc_server.add_health_and_reflection(self.server, rpc_server.MTLS_SERVICES)

        self.enroll_server = grpc.aio.server(interceptors=interceptors, options=rpc_server.ENROLL_SERVER_OPTIONS)
        enrollment_pb2_grpc.add_EnrollmentServiceServicer_to_server(
            EnrollmentServicer(self.enrollment, self.users, self.audit, self.enroll_throttle, self.enroll_refusals),
            self.enroll_server,
        )
        health_enroll = rpc_server.add_health_and_reflection(self.enroll_server, rpc_server.ENROLL_SERVICES)
        ehost, eport = split_address(s.enroll_listen)
        enroll_port = self.enroll_server.add_secure_port(
            f"{ehost}:{eport}", rpc_server.tls_credentials(key_pem, chain_pem)
        )

        self._agent_ports = (listen_port, enroll_port)  # what the console's installer registers against
        console_port = await self._start_console()  # first: a console port in use stops nothing started
        await self.server.start()
        await self.enroll_server.start()
        self.enroll_refusals.start()
        self.windows.start()
        self.associations.start()
        self.automation.start()
        self.events.start()
        await rpc_server.mark_serving(health_main, rpc_server.MTLS_SERVICES)
        await rpc_server.mark_serving(health_enroll, rpc_server.ENROLL_SERVICES)
        # The store's own health service: NOT_SERVING while degraded; the overall status stays SERVING.
        rpc_server.report_object_store(health_main, self.store_health)

        mhost, mport = split_address(s.metrics_listen)
        metrics_port = self.metrics.serve(mhost, mport)
        self.ports = BoundPorts(listen_port, enroll_port, metrics_port, console_port)
        await self.audit.record(
            actor=f"controller:{self.replica_id}",
            action="controller.start",
            details={"listen": listen_port, "enroll": enroll_port},
        )
        self.audit_exporter.start()
        self.audit_checkpoints.start()
        return self.ports

    async def _start_console(self) -> int:
        """Serve the web console (docs/console.md) on its own HTTPS port; the port (0: off)."""
        s = self.settings
        self.console_server: ConsoleServer | None = None
        if s.console_listen == "off":
            return 0
        chost, cport = split_address(s.console_listen)
        links = ConsoleStore(self.sessions)
        self.console_refusals = RefusalLog(self.audit, aggregate_action=CONSOLE_REFUSALS_ACTION)
        self.console_refusals.start()
        downloads = AgentDownloads(self.releases, self.authority.cert, *self._agent_ports)
        app = Console(self.operator_servicer, links, self.audit, self.console_refusals).app(downloads.routes())
        self.console_server = ConsoleServer(app, chost, cport, s.server_dir / "server.pem", s.server_dir / "server.key")
        port = await self.console_server.start()
        names = (*s.server_dns_names, *s.server_ip_addresses)
        host = names[0] if names else "localhost"
        self.operator_servicer.console_links = links
        self.operator_servicer.console_url = f"https://{'[' + host + ']' if ':' in host else host}:{port}"
        return port

    async def console_link(self, certificate_pem: bytes) -> str:
        """A one-time console link for the operator whose certificate this is (``""``: no console)."""
        links, url = self.operator_servicer.console_links, self.operator_servicer.console_url
        if links is None or not url:
            return ""
        cert = x509.load_pem_x509_certificate(certificate_pem)
        actor = f"operator:{pki.identity_from_cert(cert).name}"
        token, _ = await links.create_link(actor, certificate_pem.decode(), cert.not_valid_after_utc)
        return f"{url}/login?t={token}"

    def _reassert_routes(self, routes: dict[str, Route], read_at: float) -> None:
        """Hosts connected here whose route another replica cleared (it took this one for dead).
        Only hosts whose connect was written before the read began count (not a connect storm's
        hosts still on their way to the database)."""
        cleared = [host_id for host_id in self.presence.linked_and_written_before(read_at) if host_id not in routes]
        if cleared:
            log.warning("%d hosts connected here had no route; writing it again", len(cleared))
            self.presence.reassert(cleared)

    async def _adopt(self, gone: list[str]) -> None:
        before = datetime.now(UTC) - timedelta(seconds=self.settings.replica_dead_after)
        await self.commands.adopt(gone, before)

    async def _open_object_store(self) -> None:
        """Build the object store and check it (docs/operations.md "Object store").

        Raises:
            StoreUnavailable: the check failed and ``allow_degraded_storage`` is off; the message
                names the store and the step, the hint what to fix (exit 78 for configuration).
        """
        s = self.settings
        store = store_from_url(s.object_store_url, s.state_dir)
        self.store_health = StoreHealth(repr(store), f"command output is kept in {s.output_spool_dir} until then")
        self.objects = MonitoredStore(store, self.store_health)
        self.output = OutputSpool(
            self.objects,
            s.output_spool_dir,
            max_bytes=s.output_spool_max_bytes,
            retry_interval=s.object_store_retry_interval,
            tag=self.replica_id,
        )
        self.metrics.watch_object_store(self.store_health, self.output)
        try:
            await check_store(store, self.replica_id)
        except StoreUnavailable as exc:
            if not s.allow_degraded_storage:
                await store.close()
                raise StoreUnavailable(
                    f"refusing to start: {exc.message}",
                    f"{exc.hint}; or start with --allow-degraded-storage to serve anyway, keeping command output "
                    f"in {s.output_spool_dir} until the store works",
                    problem=exc.problem,
                ) from exc
            log.warning("starting with a degraded object store (--allow-degraded-storage)")
            self.store_health.failed(exc)

    async def stop(self, grace: float = 5.0) -> None:
        # Close agent links first so agents see a clean Disconnect and reconnect elsewhere.
        for link in self.presence.live_links():
            await link.close("controller is shutting down", revoked=False)
        await self.enroll_server.stop(grace)
        if self.console_server is not None:
            await self.console_server.stop()
            await self.console_refusals.stop()
        await self.enroll_refusals.stop()  # writes the refusals still being counted
        await self.events.stop()
        await self.automation.stop()
        await self.associations.stop()
        await self.windows.stop()
        await self.broker.stop()
        await self.server.stop(grace)
        await self.commands.stop()
        await self.changes.stop()
        await self.registry.stop()  # the others adopt what this replica left unfinished
        await self.peers.close()
        await self.output.stop()
        await self.fleet.stop()
        await self.presence.stop()
        await self.audit_exporter.stop()  # after the last events are recorded: one last pass
        await self.audit_checkpoints.stop()  # likewise: the last checkpoint covers the last event
        await self.objects.close()
        await self.engine.dispose()
