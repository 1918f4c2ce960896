"""``opsctl``: the entry module only assembles the command groups (one module per noun)."""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from fleetops.common.errors import FleetopsError
from fleetops.opsctl import (
    activation,
    admin,
    agent,
    apply,
    association,
    audit,
    automation,
    command,
    completion,
    console,
    copy,
    document,
    events,
    forward,
    hosts,
    login,
    output,
    patch,
    session,
    ssh,
    subscription,
    window,
)
from fleetops.opsctl.client import OperatorClient

# A command that sets ``needs_client=False`` (opsctl login: a first login has no profile yet) gets
# ``client=None`` instead of a connection built from the profile.
GROUPS = (
    hosts,
    command,
    document,
    association,
    automation,
    activation,
    agent,
    audit,
    session,
    ssh,
    copy,
    forward,
    patch,
    window,
    events,
    subscription,
    console,
    admin,
    apply,
    login,
    completion,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opsctl", description="Operate a fleetops fleet.")
    parser.add_argument("--profile", help="profile name or directory (default: $OPSCTL_PROFILE or 'default')")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    who = sub.add_parser("whoami", help="the operator this profile authenticates as")
    output.add_output_argument(who)
    who.set_defaults(func=whoami)
    return parser


def whoami(client: OperatorClient, args: argparse.Namespace) -> int:
    me = client.whoami()
    controller = client.profile.controller
    output.emit(
        args,
        lambda: output.message_dict(me) | {"controller": controller},
        lambda: print(f"{me.operator} at {controller} (certificate expires {output.when(me.certificate_expires_at)})"),
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(command.rewrite_argv(list(sys.argv[1:] if argv is None else argv)))
    debug = args.debug or bool(os.environ.get("OPSCTL_DEBUG"))
    try:
        if not getattr(args, "needs_client", True):
            return int(args.func(None, args))
        with OperatorClient.from_profile(args.profile) as client:
            return int(args.func(client, args))
    except FleetopsError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
