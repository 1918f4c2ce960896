"""``opsctl agent``: agent releases and rolling them out (docs/install.md#updating-agents).

``agent update`` is a command (the agent task ``agent.update``) with run command's rate control:
each host downloads the release over its own link, checks the controller's signature, installs
it keeping the previous version, and rolls back when the new agent does not reconnect in time.
It is followed like ``opsctl run``: each host's result says updated, rolled back (why) or refused.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from fleetops.opsctl import command, output
from fleetops.opsctl.client import OperatorClient
from fleetops.opsctl.hosts import add_target_arguments
from fleetops.opsctl.operation_request import add_rate_arguments, check_target, rate_limits
from fleetops.v1 import operator_pb2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agent = sub.add_parser("agent", help="agent releases and updates")
    asub = agent.add_subparsers(dest="agent_command", required=True)

    p = asub.add_parser("releases", help="the agent releases the controller holds, newest first")
    output.add_output_argument(p)
    p.set_defaults(func=list_releases)

    p = asub.add_parser(
        "update",
        help="update the agent on hosts to a release (rolled back on a host where it does not reconnect)",
        description="Update the agents of the targeted hosts, at a rate, to a release the controller holds "
        "(fleetops-controller release add). Each host verifies the release's signature before it installs it, "
        "keeps the previous version, and rolls back when the new agent does not reconnect in time.",
    )
    add_target_arguments(p, required=True)
    p.add_argument("--version", default="", help="the agent version to install (default: the newest release)")
    add_rate_arguments(p)
    p.add_argument("--timeout", default=None, metavar="DURATION", help="the whole update on one host (default 15m)")
    p.add_argument(
        "--reconnect-timeout",
        default=None,
        metavar="DURATION",
        help="how long the new agent has to reconnect before the host rolls back (default 2m)",
    )
    p.add_argument("--comment", default="")
    p.add_argument("--detach", action="store_true", help="print the command id and return; see opsctl run watch")
    output.add_output_argument(p)
    p.set_defaults(func=update)


def list_releases(client: OperatorClient, args: argparse.Namespace) -> int:
    response = client.list_agent_releases()
    output.emit(args, response, lambda: print_releases(response.releases, response.key_id))
    return 0


def print_releases(releases: Sequence[operator_pb2.AgentRelease], key_id: str) -> None:
    rows = [
        [r.version, r.arch, r.file_name, output.size(r.size), r.sha256[:16], output.when(r.added_at)] for r in releases
    ]
    output.table(["VERSION", "ARCH", "FILE", "SIZE", "SHA256", "ADDED"], rows)
    if not releases:
        print("(no releases: add one on the controller with fleetops-controller release add PKG)")
    print(f"release key: {key_id}")


def update_request(args: argparse.Namespace) -> operator_pb2.UpdateAgentsRequest:
    """The request ``agent update`` sends, checked.

    Raises:
        InvalidInput: no target or more than one kind, bad rates or durations.
    """
    check_target(args)
    max_concurrency, max_errors = rate_limits(args)
    return operator_pb2.UpdateAgentsRequest(
        target=operator_pb2.Target(selector=args.target, hosts=args.host, all=args.all),
        version=args.version,
        max_concurrency=max_concurrency,
        max_errors=max_errors,
        timeout_seconds=command.positive_seconds(args.timeout, "--timeout") if args.timeout else 0,
        reconnect_timeout_seconds=(
            command.positive_seconds(args.reconnect_timeout, "--reconnect-timeout") if args.reconnect_timeout else 0
        ),
        comment=args.comment,
    )


def update(client: OperatorClient, args: argparse.Namespace) -> int:
    response = client.update_agents(update_request(args))
    info = command.announce(response, args.output)
    if args.detach:
        print(response.command.id)
        return 0
    print(f"command {response.command.id} (agent update)", file=info, flush=True)
    return command.follow(client, response.command.id, args.output)
