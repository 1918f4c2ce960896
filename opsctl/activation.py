"""``opsctl activation``: create, list, delete (AWS SSM hybrid-activation semantics)."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence

from fleetops.common import pki
from fleetops.common.durations import parse_duration
from fleetops.common.errors import InvalidInput
from fleetops.common.selectors import parse_tag_assignments, validate_tag_key
from fleetops.opsctl import output
from fleetops.opsctl.client import OperatorClient
from fleetops.v1 import operator_pb2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    act = sub.add_parser("activation", help="activations that let new hosts register")
    asub = act.add_subparsers(dest="activation_command", required=True)

    p = asub.add_parser("create", help="create an activation; prints its id and code once")
    p.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="tag every host registered with it gets; authoritative: hosts cannot override it (repeatable)",
    )
    p.add_argument(
        "--allow-host-tag",
        action="append",
        default=[],
        metavar="KEY",
        help="a tag key hosts may set themselves with `fleetops-agent register --tag KEY=VALUE` (repeatable; "
        "such tags select hosts for --target but never grant access)",
    )
    p.add_argument("--limit", type=int, default=1, help="how many hosts may register with it (default 1)")
    p.add_argument("--expires", default="24h", help="lifetime, e.g. 1h, 24h, 7d (at most 30d; default 24h)")
    p.add_argument("--description", default="")
    p.add_argument(
        "--print-install",
        action="store_true",
        help="print only the one-line command that installs the agent on a Debian/Ubuntu host and registers it "
        "with this activation (for cloud-init or a root shell; docs/install.md#one-line-install)",
    )
    output.add_output_argument(p)
    p.set_defaults(func=create)

    p = asub.add_parser("list", help="list activations")
    output.add_output_argument(p)
    p.set_defaults(func=list_activations)

    p = asub.add_parser("delete", help="delete an activation (registered hosts stay)")
    p.add_argument("id")
    p.set_defaults(func=delete)


def create(client: OperatorClient, args: argparse.Namespace) -> int:
    tags, removed = parse_tag_assignments(args.tag)
    if removed:
        raise InvalidInput("--tag takes KEY=VALUE", "e.g. --tag env=prod")
    if args.limit < 1 or args.limit > 100_000:
        raise InvalidInput(f"--limit {args.limit} is out of range", "use 1 to 100000")
    expires = parse_duration(args.expires)
    if expires.total_seconds() < 1:
        raise InvalidInput(f"--expires {args.expires} is too short", "use at least 1s, e.g. --expires 24h")
    allowed = list(dict.fromkeys(k.strip() for k in args.allow_host_tag))
    for key in allowed:
        validate_tag_key(key)
    response = client.create_activation(
        default_tags=tags,
        limit=args.limit,
        expires_in_seconds=int(expires.total_seconds()),
        description=args.description,
        allowed_host_tags=allowed,
    )
    a = response.activation
    fingerprint = pki.fingerprint_sha256(pki.load_cert(client.profile.ca_pem))
    register_line = output.command_line(
        [
            "fleetops-agent",
            "register",
            "--controller",
            client.profile.controller,
            "--activation-id",
            a.id,
            "--activation-code",
            response.code,
            "--ca-fingerprint",
            fingerprint,
        ]
    )
    if args.print_install:
        if not response.download_url:
            raise InvalidInput(
                "the controller serves no agent downloads: its console listener is off",
                "start it with --console-listen HOST:PORT (docs/install.md#one-line-install)",
            )
        print(install_line(response.download_url, a.id, response.code, fingerprint))
        return 0
    # -o json: the activation's record (as ``activation list -o json`` shows it) with the code, shown only now.
    doc = output.message_dict(a) | {"code": response.code, "register_command": register_line}
    output.emit(args, doc, lambda: print_created(response, register_line))
    return 0


def install_line(base_url: str, activation_id: str, code: str, fingerprint: str) -> str:
    """The one-line install: fetch the CA, check its fingerprint, then fetch the installer pinned to it.

    Plain POSIX sh with curl, sha256sum and base64 (coreutils): the CA's DER is checked against the
    fingerprint before anything else is trusted, turned into PEM, and every later download
    (install.sh, the package) is made with only that CA trusted.
    """
    q = shlex.quote
    ca = '"$c"'
    return (
        f"c=$(mktemp) && curl -fsSk {q(base_url + '/ca.der')} -o {ca}.der && "
        f'echo "{fingerprint}  $c.der" | sha256sum -c --quiet && '
        f"{{ echo -----BEGIN CERTIFICATE-----; base64 -w64 {ca}.der; echo -----END CERTIFICATE-----; }} > {ca} && "
        f"curl -fsS --cacert {ca} {q(base_url + '/install.sh')} | FLEETOPS_CA_FILE={ca} sh -s -- "
        f"--activation-id {q(activation_id)} --activation-code {q(code)} --ca-fingerprint {fingerprint}"
    )


def print_created(response: operator_pb2.CreateActivationResponse, register_line: str) -> None:
    """The new activation, its code (shown only now) and the command each host runs."""
    a = response.activation
    print(f"activation id:   {a.id}")
    print(f"activation code: {response.code}")
    print(f"expires:         {output.when(a.expires_at)}   registrations allowed: {a.registration_limit}")
    if a.allowed_host_tags:
        print(f"hosts may set:   {', '.join(a.allowed_host_tags)} (any other --tag on a host is refused)")
    print("The code is shown only now. On each host run:")
    print(f"  {register_line}")


def list_activations(client: OperatorClient, args: argparse.Namespace) -> int:
    activations = client.list_activations()
    output.emit(args, activations, lambda: print_activations(activations))
    return 0


def print_activations(activations: Sequence[operator_pb2.Activation]) -> None:
    """The activation table, then which ones are locked and what to do about them."""
    rows = [
        [
            a.id,
            f"{a.registrations_count}/{a.registration_limit}",
            status(a),
            output.when(a.expires_at),
            ",".join(f"{k}={v}" for k, v in sorted(a.default_tags.items())) or "-",
            ",".join(a.allowed_host_tags) or "-",
            a.created_by,
            a.description,
        ]
        for a in activations
    ]
    output.table(
        ["ID", "USED", "STATUS", "EXPIRES", "DEFAULT TAGS", "HOSTS MAY SET", "CREATED BY", "DESCRIPTION"], rows
    )
    locked = [a.id for a in activations if a.locked]
    if locked:
        print(
            f"locked after too many wrong codes: {', '.join(locked)}; create a new activation for the hosts "
            "still to register and delete the locked one (opsctl activation delete ID)"
        )


def status(a: operator_pb2.Activation) -> str:
    """active | locked (N wrong codes) | expired | used up."""
    if a.locked:
        return f"locked ({output.plural(a.failed_codes, 'wrong code')})"
    if a.expired:
        return "expired"
    if a.registrations_count >= a.registration_limit:
        return "used up"
    return "active"


def delete(client: OperatorClient, args: argparse.Namespace) -> int:
    client.delete_activation(args.id)
    print(f"deleted activation {args.id}")
    return 0
