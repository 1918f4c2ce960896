"""``fleetops-controller``: init, serve, migrate, dev, ca fingerprint, operator issue."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from datetime import timedelta
from pathlib import Path

from fleetops.common import pki
from fleetops.common.durations import parse_duration
from fleetops.common.errors import FleetopsError, InvalidInput
from fleetops.common.logsetup import configure_logging
from fleetops.common.profile import profile_dir, write_profile
from fleetops.controller.app import Controller, ensure_server_certificate
from fleetops.controller.audit.service import AuditVerification
from fleetops.controller.settings import DEFAULT_ENROLL_PORT, DEFAULT_METRICS_PORT, DEFAULT_PORT, ControllerSettings
from fleetops.controller.store import database

log = logging.getLogger("fleetops.controller")

DEFAULT_STATE_DIR = Path("/var/lib/fleetops-controller")


def _duration(text: str) -> timedelta:
    if text.strip() == "0":
        return timedelta(0)
    try:
        return parse_duration(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(f"{exc.message} ({exc.hint})") from exc


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="CA, server certificate, SQLite database")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")


def _sans(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--san",
        action="append",
        default=[],
        metavar="NAME|IP",
        help="DNS name or IP address agents use to reach the controller (repeatable; default localhost, 127.0.0.1)",
    )


def _server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", default=f"0.0.0.0:{DEFAULT_PORT}", help="mutual-TLS gRPC for agents and operators")
    p.add_argument("--enroll-listen", default=f"0.0.0.0:{DEFAULT_ENROLL_PORT}", help="server-TLS gRPC for enrollment")
    p.add_argument("--metrics-listen", default=f"127.0.0.1:{DEFAULT_METRICS_PORT}", help="Prometheus /metrics")
    p.add_argument("--database-url", default="", help="default: SQLite in the state directory")
    p.add_argument(
        "--object-store",
        default="",
        metavar="URL",
        help="where command output and transcripts go: default a directory in the state dir; "
        "s3://BUCKET/PREFIX?endpoint=URL&region=R&path_style=true for S3 (credentials from the AWS chain)",
    )
    p.add_argument("--no-migrate", action="store_true", help="refuse to start on an out-of-date schema")
    p.add_argument("--heartbeat-interval", type=_duration, default=timedelta(seconds=10))
    p.add_argument("--host-cert-lifetime", type=_duration, default=timedelta(hours=24))
    p.add_argument("--ready-file", type=Path, help="write the bound ports here as JSON once serving")
    p.add_argument(
        "--session-idle-timeout",
        type=_duration,
        default=timedelta(minutes=20),
        help="end a session after this long without operator input (0: never; default 20m)",
    )
    p.add_argument(
        "--session-max-duration",
        type=_duration,
        default=timedelta(hours=12),
        help="end a session this long after it started (0: never; default 12h)",
    )
    p.add_argument(
        "--transcript-upload-interval",
        type=_duration,
        default=timedelta(seconds=30),
        help="how often transcripts spooled while the object store was down are retried (default 30s)",
    )
    p.add_argument(
        "--window-min-duration",
        type=_duration,
        default=timedelta(hours=1),
        help="shortest maintenance window accepted (default 1h, as AWS; tests use seconds)",
    )
    _sans(p)


def _split_sans(values: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    import ipaddress

    if not values:
        return ("localhost",), ("127.0.0.1",)
    dns, ips = [], []
    for v in values:
        try:
            ips.append(str(ipaddress.ip_address(v)))
        except ValueError:
            dns.append(v)
    return tuple(dns), tuple(ips)


def settings_from(args: argparse.Namespace) -> ControllerSettings:
    dns, ips = _split_sans(args.san)
    if args.heartbeat_interval < timedelta(seconds=1):
        raise InvalidInput("--heartbeat-interval must be at least 1s", "the default is 10s")
    if args.host_cert_lifetime < timedelta(seconds=3):
        raise InvalidInput("--host-cert-lifetime must be at least 3s", "the default is 24h")
    return ControllerSettings(
        state_dir=args.state_dir,
        listen=args.listen,
        enroll_listen=args.enroll_listen,
        metrics_listen=args.metrics_listen,
        database_url=args.database_url,
        object_store_url=args.object_store,
        migrate=not args.no_migrate,
        heartbeat_interval=args.heartbeat_interval.total_seconds(),
        host_certificate_lifetime=args.host_cert_lifetime,
        session_idle_timeout=args.session_idle_timeout.total_seconds(),
        session_max_duration=args.session_max_duration.total_seconds(),
        transcript_upload_interval=max(args.transcript_upload_interval.total_seconds(), 1.0),
        window_min_duration=max(args.window_min_duration.total_seconds(), 1.0),
        server_dns_names=dns,
        server_ip_addresses=ips,
    )


def init_state(settings: ControllerSettings) -> pki.CertificateAuthority:
    """Create the CA and server certificate unless they exist; returns the CA."""
    if (settings.ca_dir / "ca.pem").exists():
        authority = pki.CertificateAuthority.load(settings.ca_dir)
    else:
        authority = pki.CertificateAuthority.create()
        authority.save(settings.ca_dir)
    ensure_server_certificate(settings, authority)
    return authority


def issue_operator_profile(
    authority: pki.CertificateAuthority, operator: str, controller: str, directory: Path, lifetime: timedelta
) -> Path:
    key = pki.generate_private_key()
    csr = pki.load_csr(pki.build_csr(key, operator))
    cert = authority.issue_operator_certificate(csr, operator, lifetime)
    write_profile(
        directory,
        controller=controller,
        operator=operator,
        key_pem=pki.private_key_pem(key),
        cert_pem=pki.cert_pem(cert),
        ca_pem=pki.cert_pem(authority.cert),
    )
    return directory


async def ensure_user(settings: ControllerSettings, name: str, roles: list[str]) -> None:
    """Create the operator ``name`` with ``roles`` unless it exists (init and ``operator issue``)."""
    from fleetops.controller.users.service import UserService

    engine = database.create_engine(settings.effective_database_url)
    try:
        await database.upgrade(engine)
        authority = pki.CertificateAuthority.load(settings.ca_dir)
        await UserService(database.session_factory(engine), authority).ensure("controller", name, roles)
    finally:
        await engine.dispose()


async def serve(settings: ControllerSettings, ready_file: Path | None) -> None:
    controller = Controller(settings)
    ports = await controller.start()
    info = {"listen": ports.listen, "enroll": ports.enroll, "metrics": ports.metrics}
    log.info("serving: mTLS on %s, enrollment on %s, metrics on %s", ports.listen, ports.enroll, ports.metrics)
    if ready_file:
        pki.write_public_file(ready_file, json.dumps(info).encode())
    print("fleetops-controller ready " + json.dumps(info), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await controller.stop()


def verify_export_command(url: str, state_dir: Path, prefix: str) -> int:
    """``audit verify-export``: 0 when the exported chain verifies, 1 when it does not (or is empty)."""
    from fleetops.controller.audit.export import verify_export
    from fleetops.controller.objects.factory import store_from_url

    objects = store_from_url(url, state_dir)

    async def run() -> AuditVerification:
        try:
            return await verify_export(objects, prefix)
        finally:
            await objects.close()

    result = asyncio.run(run())
    if not result.ok:
        print(f"audit export BROKEN at event {result.first_bad_event_id}: {result.problem}")
        print(f"({result.events_checked} events before it verified, in {result.chunks} chunk(s) of {objects!r})")
        return 1
    if result.chunks == 0:
        print(f"no exported audit chunks under {prefix!r} in {objects!r}")
        return 1
    print(
        f"audit export intact: {result.events_checked} events in {result.chunks} chunks verified "
        f"(ends with hash {result.last_hash})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fleetops-controller", description="The fleetops controller.")
    sub = parser.add_subparsers(dest="command", required=True)

    p_init = sub.add_parser("init", help="create the CA, server certificate, database and first admin profile")
    _common(p_init)
    _sans(p_init)
    p_init.add_argument("--database-url", default="")
    p_init.add_argument("--admin", default="admin", help="name of the first operator")
    p_init.add_argument(
        "--controller-address", default=f"localhost:{DEFAULT_PORT}", help="address written into the profile"
    )
    p_init.add_argument("--profile", type=Path, help="profile directory (default: the default opsctl profile)")
    p_init.add_argument("--operator-cert-lifetime", type=_duration, default=timedelta(hours=12))

    p_serve = sub.add_parser("serve", help="run the controller")
    _common(p_serve)
    _server_options(p_serve)

    p_migrate = sub.add_parser("migrate", help="upgrade the database schema to this release")
    _common(p_migrate)
    p_migrate.add_argument("--database-url", default="")

    p_ca = sub.add_parser("ca", help="CA information")
    ca_sub = p_ca.add_subparsers(dest="ca_command", required=True)
    p_fp = ca_sub.add_parser("fingerprint", help="print the CA's SHA-256 fingerprint (for --ca-fingerprint)")
    _common(p_fp)

    p_op = sub.add_parser("operator", help="operator certificates (bootstrap, on the controller host)")
    op_sub = p_op.add_subparsers(dest="op_command", required=True)
    p_issue = op_sub.add_parser("issue", help="issue an operator profile signed by the local CA")
    _common(p_issue)
    p_issue.add_argument("name")
    p_issue.add_argument("--controller-address", default=f"localhost:{DEFAULT_PORT}")
    p_issue.add_argument("--profile", type=Path, required=True, help="directory to write the profile to")
    p_issue.add_argument("--lifetime", type=_duration, default=timedelta(hours=12))
    p_issue.add_argument(
        "--role",
        action="append",
        default=[],
        help="roles of the user when it does not exist yet (default: admin); break-glass on the controller host",
    )
    p_issue.add_argument("--database-url", default="", help="default: SQLite in the state directory")

    p_audit = sub.add_parser("audit", help="the audit log's copy in the object store")
    audit_sub = p_audit.add_subparsers(dest="audit_command", required=True)
    p_vex = audit_sub.add_parser(
        "verify-export",
        help="verify the exported audit chunks using only the object store (not the database)",
    )
    _common(p_vex)
    p_vex.add_argument(
        "--object-store", default="", metavar="URL", help="as for serve (default: the directory in the state dir)"
    )
    p_vex.add_argument("--prefix", default="audit/", help="key prefix of the chunks (default audit/)")

    p_dev = sub.add_parser("dev", help="controller + one local agent + admin profile, on embedded defaults")
    _common(p_dev)
    p_dev.set_defaults(state_dir=Path(".dev"))
    p_dev.add_argument("--port", type=int, default=DEFAULT_PORT, help="mTLS port; enrollment is PORT+1")
    p_dev.add_argument("--metrics-port", type=int, default=DEFAULT_METRICS_PORT)
    p_dev.add_argument("--profile", type=Path, help="profile directory (default: the default opsctl profile)")

    args = parser.parse_args(argv)
    configure_logging(args.log_format, args.log_level)
    try:
        return _run(args)
    except FleetopsError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command == "init":
        dns, ips = _split_sans(args.san)
        settings = ControllerSettings(
            state_dir=args.state_dir, database_url=args.database_url, server_dns_names=dns, server_ip_addresses=ips
        )
        authority = init_state(settings)

        async def migrate() -> None:
            engine = database.create_engine(settings.effective_database_url)
            try:
                await database.upgrade(engine)
            finally:
                await engine.dispose()

        asyncio.run(migrate())
        asyncio.run(ensure_user(settings, args.admin, ["admin"]))
        directory = issue_operator_profile(
            authority, args.admin, args.controller_address, args.profile or profile_dir(), args.operator_cert_lifetime
        )
        print(f"CA created in {settings.ca_dir}")
        print(
            f"CA fingerprint (for fleetops-agent register --ca-fingerprint): {pki.fingerprint_sha256(authority.cert)}"
        )
        print(f"operator profile for {args.admin!r} written to {directory}")
        return 0
    if args.command == "serve":
        asyncio.run(serve(settings_from(args), args.ready_file))
        return 0
    if args.command == "migrate":
        settings = ControllerSettings(state_dir=args.state_dir, database_url=args.database_url)

        async def migrate_only() -> str:
            engine = database.create_engine(settings.effective_database_url)
            try:
                await database.upgrade(engine)
                return str(await database.current_revision(engine))
            finally:
                await engine.dispose()

        print(f"database schema at revision {asyncio.run(migrate_only())}")
        return 0
    if args.command == "ca":
        authority = pki.CertificateAuthority.load(args.state_dir / "ca")
        print(pki.fingerprint_sha256(authority.cert))
        return 0
    if args.command == "operator":
        authority = pki.CertificateAuthority.load(args.state_dir / "ca")
        settings = ControllerSettings(state_dir=args.state_dir, database_url=args.database_url)
        asyncio.run(ensure_user(settings, args.name, args.role or ["admin"]))
        issue_operator_profile(authority, args.name, args.controller_address, args.profile, args.lifetime)
        print(f"operator profile for {args.name!r} written to {args.profile}")
        return 0
    if args.command == "audit":
        return verify_export_command(args.object_store, args.state_dir, args.prefix)
    if args.command == "dev":
        from fleetops.controller.dev import run_dev

        return asyncio.run(run_dev(args.state_dir.resolve(), args.port, args.metrics_port, args.profile))
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
