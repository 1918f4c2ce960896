"""``fleetops-controller``: init, serve, migrate, dev, ca fingerprint, operator issue."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

from fleetops.common import pki
from fleetops.common.durations import parse_duration
from fleetops.common.errors import FleetopsError, InvalidInput
from fleetops.common.files import write_public_file
from fleetops.common.logsetup import configure_logging
from fleetops.common.profile import profile_dir
from fleetops.controller.app import Controller, add_agent_releases, split_address
from fleetops.controller.audit.models import AuditVerification
from fleetops.controller.bootstrap import ensure_user, init_state, issue_operator_profile
from fleetops.controller.dev import run_dev
from fleetops.controller.events.senders import SmtpSettings
from fleetops.controller.events.service import DeliverySettings
from fleetops.controller.settings import (
    DEFAULT_CONSOLE_PORT,
    DEFAULT_ENROLL_PORT,
    DEFAULT_METRICS_PORT,
    DEFAULT_PORT,
    ControllerSettings,
)
from fleetops.controller.store import database
from fleetops.controller.throttle import Rate, ThrottleSettings

log = logging.getLogger("fleetops.controller")

DEFAULT_STATE_DIR = Path("/var/lib/fleetops-controller")


def _duration(text: str) -> timedelta:
    if text.strip() == "0":
        return timedelta(0)
    try:
        return parse_duration(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(f"{exc.message} ({exc.hint})") from exc


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _size(text: str) -> int:
    """``"4G"``, ``"512M"``, ``"1048576"``: a byte count (binary units, an optional trailing B or iB)."""
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    number, unit = (raw[:-1], raw[-1]) if raw[-1:] in _SIZE_UNITS and raw[-1:] else (raw, "")
    if not number.isdigit() or len(number) > 15:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: use a whole number with K, M, G or T, e.g. 4G")
    return int(number) * _SIZE_UNITS[unit]


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
    p.add_argument(
        "--console-listen",
        default=f"0.0.0.0:{DEFAULT_CONSOLE_PORT}",
        metavar="HOST:PORT|off",
        help="the web console over HTTPS (docs/console.md); off: no console",
    )
    p.add_argument("--database-url", default="", help="default: SQLite in the state directory")
    p.add_argument(
        "--object-store",
        default="",
        metavar="URL",
        help="where command output and transcripts go: default a directory in the state dir; "
        "s3://BUCKET/PREFIX?endpoint=URL&region=R&path_style=true for S3 (credentials from the AWS chain)",
    )
    p.add_argument("--no-migrate", action="store_true", help="refuse to start on an out-of-date schema")
    p.add_argument(
        "--allow-degraded-storage",
        action="store_true",
        help="start even when the object store check fails (command output is spooled in the state directory "
        "and uploaded once the store works); without it serve refuses to start (exit 78 for a configuration "
        "problem, 6 for an unreachable store)",
    )
    p.add_argument(
        "--output-spool-max",
        type=_size,
        default=4 << 30,
        metavar="SIZE",
        help="bound of the command output spool (<state-dir>/output-spool) while the object store is degraded "
        "(default 4G; at least 1M)",
    )
    p.add_argument(
        "--object-store-retry-interval",
        type=_duration,
        default=timedelta(seconds=30),
        help="how often a degraded object store is checked again and spooled output uploaded (default 30s)",
    )
    p.add_argument("--ready-file", type=Path, help="write the bound ports here as JSON once serving")
    p.add_argument(
        "--replica-id",
        default="",
        metavar="ID",
        help="this replica's name among controllers sharing one database (default: the host name); unique "
        "per replica, also when several run on one machine",
    )
    p.add_argument(
        "--advertise-address",
        default="",
        metavar="HOST:PORT",
        help="where the other replicas reach this one's --listen port (default: the --listen host, or the "
        "host name when it listens on all addresses, with the bound port); HOST must be one of the --san names",
    )
    p.add_argument(
        "--replica-dead-after",
        type=_duration,
        default=timedelta(seconds=15),
        metavar="DURATION",
        help="a replica silent this long is dead: the others clear its routes and adopt its commands; each "
        "replica heartbeats every third of it (default 15s; 3s to 10m)",
    )
    _controller_settings(p)
    _sans(p)


def _controller_settings(p: argparse.ArgumentParser) -> None:
    """Timeouts and limits a person trying things changes too: shared by ``serve`` and ``dev``."""
    g = p.add_argument_group("timeouts and limits")
    g.add_argument(
        "--heartbeat-interval",
        type=_duration,
        default=timedelta(seconds=10),
        help="how often agents send a heartbeat; a host is offline after 3 missed (default 10s; at least 1s)",
    )
    g.add_argument(
        "--host-cert-lifetime",
        type=_duration,
        default=timedelta(hours=24),
        help="lifetime of host certificates; agents renew at two thirds of it (default 24h; at least 3s)",
    )
    g.add_argument(
        "--command-ack-timeout",
        type=_duration,
        default=timedelta(minutes=2),
        help="end an invocation failed when its connected host has not acknowledged it this long after "
        "it was sent (default 2m)",
    )
    g.add_argument(
        "--session-idle-timeout",
        type=_duration,
        default=timedelta(minutes=20),
        help="end a session after this long without operator input (0: never; default 20m)",
    )
    g.add_argument(
        "--session-max-duration",
        type=_duration,
        default=timedelta(hours=12),
        help="end a session this long after it started (0: never; default 12h)",
    )
    g.add_argument(
        "--transcript-upload-interval",
        type=_duration,
        default=timedelta(seconds=30),
        help="how often transcripts spooled while the object store was down are retried (default 30s)",
    )
    g.add_argument(
        "--window-min-duration",
        type=_duration,
        default=timedelta(hours=1),
        help="shortest maintenance window accepted (default 1h, as AWS; tests use seconds)",
    )
    g.add_argument(
        "--audit-checkpoint-interval",
        type=_duration,
        default=timedelta(hours=1),
        help="how often the audit chain head is signed into the object store (default 1h; at least 1s)",
    )
    _enrollment_throttle_arguments(p)
    _event_arguments(p)


def _event_arguments(p: argparse.ArgumentParser) -> None:
    """Delivery of events to subscriptions, and the SMTP server email goes through (docs/events.md)."""
    g = p.add_argument_group("event delivery (docs/events.md)")
    g.add_argument(
        "--event-retry-base",
        type=_duration,
        default=timedelta(seconds=10),
        help="first retry of a failed delivery after this long, doubling each time up to 1h (default 10s)",
    )
    g.add_argument(
        "--event-retry-for",
        type=_duration,
        default=timedelta(days=1),
        help="retry a delivery this long after its event, then dead-letter it (default 1d)",
    )
    g.add_argument(
        "--event-delivery-timeout",
        type=_duration,
        default=timedelta(seconds=10),
        help="how long a webhook receiver or SMTP server has to answer one try (default 10s)",
    )
    g.add_argument(
        "--event-retention",
        type=_duration,
        default=timedelta(days=7),
        help="keep delivered events this long (opsctl events watch --after reads them; default 7d)",
    )
    g.add_argument("--smtp-server", default="", metavar="HOST:PORT", help="send email subscriptions through it")
    g.add_argument("--smtp-from", default="", metavar="ADDRESS", help="the From address of event email")
    g.add_argument(
        "--smtp-security",
        choices=("starttls", "tls", "none"),
        default="starttls",
        help="starttls (default: refuse a server that does not offer it), tls (port 465), or none",
    )
    g.add_argument("--smtp-user", default="", metavar="NAME", help="authenticate to the SMTP server as NAME")
    g.add_argument(
        "--smtp-password-file", type=Path, metavar="FILE", help="the SMTP password (first line), for --smtp-user"
    )
    g.add_argument(
        "--smtp-ca-file", type=Path, metavar="FILE", help="verify the SMTP server against this CA (default: system)"
    )


def _event_settings(args: argparse.Namespace) -> DeliverySettings:
    smtp = SmtpSettings(
        server=args.smtp_server,
        sender=args.smtp_from,
        security=args.smtp_security,
        username=args.smtp_user,
        password_file=args.smtp_password_file,
        ca_file=args.smtp_ca_file,
        timeout=max(args.event_delivery_timeout.total_seconds(), 1.0),
    )
    if smtp.server:
        split_address(smtp.server)  # InvalidInput: not HOST:PORT
        if "@" not in smtp.sender:
            raise InvalidInput("--smtp-server needs --smtp-from ADDRESS", "e.g. --smtp-from fleetops@example.com")
    if smtp.password_file and not smtp.password_file.is_file():
        raise InvalidInput(f"no file {smtp.password_file}", "--smtp-password-file names a file holding the password")
    if smtp.ca_file and not smtp.ca_file.is_file():
        raise InvalidInput(f"no file {smtp.ca_file}", "--smtp-ca-file names a PEM file of CA certificates")
    return DeliverySettings(
        retry_base=max(args.event_retry_base.total_seconds(), 0.1),
        retry_for=max(args.event_retry_for.total_seconds(), 1.0),
        timeout=max(args.event_delivery_timeout.total_seconds(), 1.0),
        retention=max(args.event_retention.total_seconds(), 60.0),
        smtp=smtp,
    )


def _enrollment_throttle_arguments(p: argparse.ArgumentParser) -> None:
    """The enrollment port's throttle and lockout (docs/enrollment.md#throttling-and-lockout)."""
    g = p.add_argument_group("enrollment port throttle")
    g.add_argument(
        "--enroll-burst",
        type=int,
        default=10,
        metavar="N",
        help="registration and login attempts one address may make at once (default 10)",
    )
    g.add_argument(
        "--enroll-rate",
        type=float,
        default=1.0,
        metavar="PER_SECOND",
        help="attempts per second an address regains after its burst (default 1)",
    )
    g.add_argument(
        "--lockout-after",
        type=int,
        default=10,
        metavar="N",
        help="wrong codes that lock an activation, and wrong secrets that lock a login token (default 10; 0: never)",
    )
    g.add_argument(
        "--refusal-audit-interval",
        type=_duration,
        default=timedelta(minutes=1),
        help="refusals of one address beyond the first 5 per interval are audited as one counted event (default 1m)",
    )


def _enrollment_throttle(args: argparse.Namespace) -> ThrottleSettings:
    if not 1 <= args.enroll_burst <= 100_000:
        raise InvalidInput(f"--enroll-burst {args.enroll_burst} is out of range", "give 1 to 100000; the default is 10")
    if not 0.001 <= args.enroll_rate <= 10_000:
        raise InvalidInput(f"--enroll-rate {args.enroll_rate} is out of range", "give 0.001 to 10000; the default is 1")
    if not 0 <= args.lockout_after <= 1_000_000:
        raise InvalidInput(f"--lockout-after {args.lockout_after} is out of range", "give 0 (never) to 1000000")
    if not timedelta(seconds=1) <= args.refusal_audit_interval <= timedelta(days=1):
        raise InvalidInput("--refusal-audit-interval must be from 1s to 1d", "the default is 1m")
    return ThrottleSettings(
        per_source=Rate(args.enroll_burst, args.enroll_rate),
        # Wrong answers per activation or login token: never fewer than the lockout lets through.
        per_subject=Rate(max(10, args.lockout_after), 0.1),
        lockout_after=args.lockout_after,
        refusal_interval=args.refusal_audit_interval.total_seconds(),
    )


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


def controller_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ``ControllerSettings`` fields the shared timeouts and limits give (see :func:`_controller_settings`).

    Raises:
        InvalidInput: a value is out of range, naming its flag.
    """
    if args.heartbeat_interval < timedelta(seconds=1):
        raise InvalidInput("--heartbeat-interval must be at least 1s", "the default is 10s")
    if args.host_cert_lifetime < timedelta(seconds=3):
        raise InvalidInput("--host-cert-lifetime must be at least 3s", "the default is 24h")
    if not timedelta(seconds=1) <= args.command_ack_timeout <= timedelta(hours=1):
        raise InvalidInput("--command-ack-timeout must be from 1s to 1h", "the default is 2m")
    return {
        "heartbeat_interval": args.heartbeat_interval.total_seconds(),
        "host_certificate_lifetime": args.host_cert_lifetime,
        "command_ack_timeout": args.command_ack_timeout.total_seconds(),
        "session_idle_timeout": args.session_idle_timeout.total_seconds(),
        "session_max_duration": args.session_max_duration.total_seconds(),
        "transcript_upload_interval": max(args.transcript_upload_interval.total_seconds(), 1.0),
        "window_min_duration": max(args.window_min_duration.total_seconds(), 1.0),
        "audit_checkpoint_interval": max(args.audit_checkpoint_interval.total_seconds(), 1.0),
        "enroll_throttle": _enrollment_throttle(args),
        "events": _event_settings(args),
    }


def _replica_id(text: str) -> str:
    """``--replica-id``: "" (the host name) or a name that fits a certificate.

    Raises:
        InvalidInput: not 1-64 letters, digits and . _ @ + -.
    """
    return pki.check_name(text, "--replica-id") if text else ""


def _replica_dead_after(value: timedelta) -> float:
    """``--replica-dead-after`` in seconds.

    Raises:
        InvalidInput: outside 3s..10m.
    """
    if not timedelta(seconds=3) <= value <= timedelta(minutes=10):
        raise InvalidInput("--replica-dead-after must be from 3s to 10m", "the default is 15s")
    return value.total_seconds()


def _console_listen(value: str) -> str:
    """``--console-listen``: ``off``, or HOST:PORT (checked)."""
    value = value.strip()
    if value.lower() == "off":
        return "off"
    split_address(value)
    return value


def settings_from(args: argparse.Namespace) -> ControllerSettings:
    dns, ips = _split_sans(args.san)
    tuning = controller_settings(args)
    if args.output_spool_max < 1 << 20:
        raise InvalidInput("--output-spool-max must be at least 1M", "the default is 4G")
    return ControllerSettings(
        state_dir=args.state_dir,
        listen=args.listen,
        enroll_listen=args.enroll_listen,
        metrics_listen=args.metrics_listen,
        console_listen=_console_listen(args.console_listen),
        database_url=args.database_url,
        object_store_url=args.object_store,
        migrate=not args.no_migrate,
        allow_degraded_storage=args.allow_degraded_storage,
        output_spool_max_bytes=args.output_spool_max,
        object_store_retry_interval=max(args.object_store_retry_interval.total_seconds(), 1.0),
        server_dns_names=dns,
        server_ip_addresses=ips,
        replica_id=_replica_id(args.replica_id),
        advertise_address=args.advertise_address,
        replica_dead_after=_replica_dead_after(args.replica_dead_after),
        **tuning,
    )


async def serve(settings: ControllerSettings, ready_file: Path | None) -> None:
    controller = Controller(settings)
    ports = await controller.start()
    info = {"listen": ports.listen, "enroll": ports.enroll, "metrics": ports.metrics, "console": ports.console}
    log.info("serving: mTLS on %s, enrollment on %s, metrics on %s", ports.listen, ports.enroll, ports.metrics)
    if ready_file:
        write_public_file(ready_file, json.dumps(info).encode())
    print("fleetops-controller ready " + json.dumps(info), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await controller.stop()


def verify_export_command(url: str, state_dir: Path, prefix: str) -> int:
    """``audit verify-export``: 0 when the exported chain verifies and agrees with the newest
    signed checkpoint; 1 when either does not (or the export is empty)."""
    from fleetops.controller.audit.checkpoint import CheckpointCheck, check_export
    from fleetops.controller.audit.export import verify_export
    from fleetops.controller.audit.signing import load_trusted
    from fleetops.controller.objects.factory import store_from_url

    objects = store_from_url(url, state_dir)
    try:  # the checkpoint's public keys, beside the CA
        trusted = load_trusted(state_dir / "ca")
    except FleetopsError as exc:
        trusted, note = None, f"checkpoints not checked: {exc.message}"

    async def run() -> tuple[AuditVerification, CheckpointCheck]:
        try:
            if trusted is None:
                return await verify_export(objects, prefix), CheckpointCheck("none", note)
            return await check_export(objects, trusted, prefix)
        finally:
            await objects.close()

    result, check = asyncio.run(run())
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
    label = "check FAILED" if check.failed else "verified" if check.status == "ok" else "note"
    print(f"checkpoint {label}: {check.message}")
    return 1 if check.failed else 0


def checkpoint_command(args: argparse.Namespace) -> int:
    """``audit checkpoint``: 0 once written; a refusal is an error (Conflict, exit 4) naming why."""
    import getpass

    from fleetops.controller.app import take_audit_checkpoint

    settings = ControllerSettings(
        state_dir=args.state_dir, database_url=args.database_url, object_store_url=args.object_store
    )
    written = asyncio.run(take_audit_checkpoint(settings, getpass.getuser()))
    covers = f"events 1..{written.head_id}" if written.head_id else "an empty log"
    print(f"audit checkpoint {written.key} written: it covers {covers} (head hash {written.head_hash})")
    return 0


def release_command(args: argparse.Namespace) -> int:
    """``release add PKG`` (sign and store an agent package, audited) and ``release list``."""
    import getpass

    from fleetops.controller.objects.factory import store_from_url
    from fleetops.controller.releases.service import AgentReleases
    from fleetops.controller.releases.signing import load_release_signer

    if args.release_command == "add":
        settings = ControllerSettings(
            state_dir=args.state_dir, database_url=args.database_url, object_store_url=args.object_store
        )
        for line in asyncio.run(add_agent_releases(settings, [Path(p) for p in args.package], getpass.getuser())):
            print(line)
        return 0
    objects = store_from_url(args.object_store, args.state_dir)
    releases = AgentReleases(objects, load_release_signer(args.state_dir / "ca", create=True))

    async def run() -> int:
        try:
            for release in await releases.list_releases():
                m = release.manifest
                print(f"{m.version}\t{m.arch}\t{m.file_name}\t{m.sha256}\t{release.added_at:%Y-%m-%d %H:%M}Z")
            return 0
        finally:
            await objects.close()

    return asyncio.run(run())


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
    p_cp = audit_sub.add_parser(
        "checkpoint", help="sign the audit chain head into the object store now (as the controller does hourly)"
    )
    _common(p_cp)
    p_cp.add_argument("--database-url", default="", help="default: SQLite in the state directory")
    p_cp.add_argument("--object-store", default="", metavar="URL", help="as for serve")

    p_rel = sub.add_parser("release", help="agent releases hosts install and update to (docs/install.md)")
    rel_sub = p_rel.add_subparsers(dest="release_command", required=True)
    p_radd = rel_sub.add_parser("add", help="sign agent packages with the release key and store them")
    _common(p_radd)
    p_radd.add_argument("package", nargs="+", help="fleetops-agent_VERSION_ARCH.deb (scripts/build_agent_deb.py)")
    p_radd.add_argument("--object-store", default="", metavar="URL", help="as for serve")
    p_radd.add_argument(
        "--database-url", default="", help="where release.add is audited (default: SQLite in the state directory)"
    )
    p_rlist = rel_sub.add_parser("list", help="list the stored agent releases")
    _common(p_rlist)
    p_rlist.add_argument("--object-store", default="", metavar="URL", help="as for serve")

    p_dev = sub.add_parser(
        "dev",
        help="controller + one local agent + admin profile, on embedded defaults",
        description="A whole system on this machine: a controller on SQLite and a local object store, one "
        "local agent enrolled through a real activation, and an admin opsctl profile. It takes the same "
        "timeouts and limits as serve (e.g. --window-min-duration 1m to try windows without waiting an hour).",
    )
    _common(p_dev)
    p_dev.set_defaults(state_dir=Path(".dev"))
    p_dev.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="mTLS port; enrollment is PORT+1 (0: any free ports, in the banner)",
    )
    p_dev.add_argument("--metrics-port", type=int, default=DEFAULT_METRICS_PORT)
    p_dev.add_argument("--profile", type=Path, help="profile directory (default: the default opsctl profile)")
    _controller_settings(p_dev)

    args = parser.parse_args(argv)
    configure_logging(args.log_format, args.log_level)
    try:
        return _run(args)
    except FleetopsError as exc:
        return _report(exc)
    except KeyboardInterrupt:
        return 130


def _report(exc: FleetopsError) -> int:
    print(f"error: {exc.message}", file=sys.stderr)
    if exc.hint:
        print(f"hint: {exc.hint}", file=sys.stderr)
    return exc.exit_code


def _run_then_leave(command: Callable[[], int | None]) -> NoReturn:
    """Run a command that talks to the object store through obstore, then end the process
    without the interpreter's finalization (see :func:`_leave`)."""
    try:
        code = command() or 0
    except FleetopsError as exc:
        code = _report(exc)
    except KeyboardInterrupt:
        code = 130
    _leave(code)


def _leave(code: int) -> NoReturn:
    """End the process with *code*, without the interpreter's finalization.

    An obstore call hands its result to the event loop from a tokio thread
    (``call_soon_threadsafe``), which may still be waiting for the GIL to finish that hand-off
    when the awaiting code has already moved on. If the interpreter finalizes then, that thread
    is made to exit inside Rust and the process aborts (SIGABRT: seen as exit -6 instead of 78
    when serve refuses a missing bucket, about one start in ten under load). By now everything
    the command opened is closed; what is left to do is flushing output.
    """
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


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
        settings = settings_from(args)
        _run_then_leave(lambda: asyncio.run(serve(settings, args.ready_file)))
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
    if args.command == "audit" and args.audit_command == "checkpoint":
        _run_then_leave(lambda: checkpoint_command(args))
    if args.command == "audit":
        _run_then_leave(lambda: verify_export_command(args.object_store, args.state_dir, args.prefix))
    if args.command == "release":
        _run_then_leave(lambda: release_command(args))
    if args.command == "dev":
        tuning = controller_settings(args)
        return asyncio.run(run_dev(args.state_dir.resolve(), args.port, args.metrics_port, args.profile, tuning))
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
