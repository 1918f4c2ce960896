"""``fleetops-agent``: register, run, status."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

import grpc

from fleetops.agent.app import Agent, AgentSettings
from fleetops.agent.link import EXIT_REVOKED, HostRevoked
from fleetops.agent.state import AgentState, default_state_dir
from fleetops.common.errors import AuthError, FleetopsError, InvalidInput
from fleetops.common.logsetup import configure_logging
from fleetops.common.rpc_client import is_revocation

# EXIT_REVOKED (78, EX_CONFIG): the controller explicitly revoked this host (a Disconnect with
# revoked set, or a refusal carrying its revocation marker: the host was deregistered, is unknown
# to it, or its state directory contradicts its certificate), or the host's certificate expired
# before it could be renewed. Nothing else exits 78: an UNAUTHENTICATED answer without the marker
# is retried. The systemd unit lists 78 in RestartPreventExitStatus so a revoked host does not
# restart in a loop.
__all__ = ["EXIT_REVOKED", "main"]


def _tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"bad tag {text!r}: use KEY=VALUE")
    return key.strip(), value.strip()


def _serve_as_windows_service(state: AgentState, log_format: str, log_level: str) -> int:
    """Run the agent as the service the Windows Service Control Manager started (fleetops.agent.winservice).

    Raises:
        InvalidInput: not on Windows, or this process was not started by the SCM.
    """
    if os.name != "nt":
        raise InvalidInput(
            "`fleetops-agent service` runs the agent as a Windows service",
            "on Linux and macOS, systemd or launchd start `fleetops-agent run` (docs/install.md)",
        )
    from fleetops.agent.winservice import pywin32

    # A service has no console: its log is a file beside the state it describes.
    state.directory.mkdir(parents=True, exist_ok=True)
    configure_logging(log_format, log_level, path=state.directory / "agent.log")
    try:
        pywin32.dispatch(lambda: Agent(AgentSettings(state.directory)))
    except RuntimeError as exc:
        raise InvalidInput(
            f"{exc}", "start the service with Start-Service fleetops-agent; in a console use fleetops-agent run"
        ) from exc
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fleetops-agent", description="The fleetops host agent (dials out; never listens)."
    )
    parser.add_argument("--state-dir", type=Path, default=None, help=f"default: {default_state_dir()}")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    sub = parser.add_subparsers(dest="command", required=True)

    reg = sub.add_parser("register", help="enroll this host with an activation")
    reg.add_argument("--controller", required=True, metavar="HOST:PORT", help="the controller's mTLS address")
    reg.add_argument("--enroll-port", type=int, help="enrollment port (default: the controller port + 1)")
    reg.add_argument("--activation-id", required=True)
    reg.add_argument("--activation-code", required=True)
    reg.add_argument("--tag", type=_tag, action="append", default=[], metavar="KEY=VALUE")
    pin = reg.add_mutually_exclusive_group(required=True)
    pin.add_argument("--ca-cert", type=Path, help="the controller's CA certificate (PEM)")
    pin.add_argument("--ca-fingerprint", metavar="SHA256", help="SHA-256 of the controller's CA certificate")
    reg.add_argument("--name", default="", help="display name (default: this machine's host name)")
    reg.add_argument("--force", action="store_true", help="replace an existing registration")

    run = sub.add_parser("run", help="connect to the controller and serve it until stopped")
    run.add_argument(
        "--reboot-command",
        default="",
        metavar="CMD",
        help="run CMD instead of rebooting when a command exits 194 (POSIX) / 3010 (Windows)",
    )
    sub.add_parser(
        "service",
        help="run as the Windows service fleetops-agent (the Service Control Manager starts this; "
        "logs go to agent.log in the state directory; docs/install.md)",
    )
    sub.add_parser("renew", help="renew this host's certificate now (the agent does it by itself)")
    sub.add_parser("status", help="show this host's registration")
    patch = sub.add_parser(
        "patch", help="scan for updates or install approved ones (the agent runs this for `opsctl patch`)"
    )
    patch.add_argument("operation", choices=("scan", "install"))
    sub.add_parser(
        "update",
        help="install the agent release the controller asked for (the agent runs this for `opsctl agent update`)",
    )

    args = parser.parse_args(argv)
    configure_logging(args.log_format, args.log_level)
    state = AgentState(args.state_dir or default_state_dir())
    try:
        if args.command == "register":
            from fleetops.agent.enroll import register

            tags = dict(args.tag)
            if len(tags) != len(args.tag):
                raise InvalidInput("a tag key is given twice", "give each --tag key once")
            host_id, name, host_tags = register(
                state,
                controller=args.controller,
                activation_id=args.activation_id,
                activation_code=args.activation_code,
                tags=tags,
                ca_cert=args.ca_cert,
                ca_fingerprint=args.ca_fingerprint,
                enroll_port=args.enroll_port,
                force=args.force,
                name=args.name,
            )
            tag_text = ",".join(f"{k}={v}" for k, v in sorted(host_tags.items())) or "(none)"
            print(f"registered as {name} ({host_id}), tags {tag_text}")
            print(f"start the agent: fleetops-agent --state-dir {state.directory} run")
            return 0
        if args.command == "run":
            asyncio.run(Agent(AgentSettings(state.directory, reboot_command=args.reboot_command)).run())
            return 0
        if args.command == "service":
            return _serve_as_windows_service(state, args.log_format, args.log_level)
        if args.command == "patch":
            from fleetops.agent.patching.task import main as patch_main

            return patch_main(args.operation)
        if args.command == "update":
            from fleetops.agent.update.task import main as update_main

            return update_main(state.directory)
        if args.command == "renew":
            from fleetops.agent.renew import renew

            try:
                cert = renew(state)
            except AuthError as exc:
                # Exit 78 (the running agent then stops for good) only on the controller's explicit
                # revocation marker; any other refusal exits 5 and the agent retries with backoff.
                if isinstance(exc.__cause__, grpc.RpcError) and is_revocation(exc.__cause__):
                    raise HostRevoked(exc.message, exc.hint) from exc
                raise
            print(f"valid until {cert.not_valid_after_utc.isoformat()}")
            return 0
        if args.command == "status":
            from fleetops.common import pki

            identity = state.load()
            cert = pki.load_cert(identity.cert_pem)
            print(
                json.dumps(
                    {
                        "host_id": identity.host_id,
                        "name": identity.hostname,
                        "controller": identity.controller,
                        "certificate_expires_at": cert.not_valid_after_utc.isoformat(),
                        "renews_at": pki.renewal_time(cert).isoformat(),
                    },
                    indent=2,
                )
            )
            return 0
    except HostRevoked as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        print(f"hint: {exc.hint}", file=sys.stderr)
        return EXIT_REVOKED
    except FleetopsError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
