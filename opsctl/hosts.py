"""``opsctl hosts``: list, show, tag, deregister.

Names, inventory and host-set tags are what hosts reported: the text views print them through
``output.host_text`` (control characters escaped; ``--raw`` to opt out). JSON is escaped anyway.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

from fleetops.common.errors import InvalidInput
from fleetops.common.selectors import parse_tag_assignments
from fleetops.opsctl import output
from fleetops.opsctl.client import OperatorClient
from fleetops.v1 import operator_pb2


def status_word(status: int) -> str:
    """A host status as opsctl prints it, text and JSON alike (``online``; output.enum_word)."""
    return str(output.enum_word(operator_pb2.HostStatus.DESCRIPTOR, status))


def add_target_arguments(p: argparse.ArgumentParser, *, required: bool) -> None:
    """--target / --host / --all, shared by every command that picks hosts."""
    p.add_argument(
        "--target", "-t", default="", metavar="SELECTOR", help="tag selector, e.g. 'env=prod,role in (web,api)'"
    )
    p.add_argument("--host", action="append", default=[], metavar="NAME", help="a host by name or id (repeatable)")
    p.add_argument("--all", action="store_true", help="every registered host")
    p.set_defaults(target_required=required)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hosts = sub.add_parser("hosts", help="registered hosts")
    hsub = hosts.add_subparsers(dest="hosts_command", required=True)

    p = hsub.add_parser("list", help="list hosts (all, or those matching a target)")
    add_target_arguments(p, required=False)
    p.add_argument("--include-deregistered", action="store_true")
    output.add_output_argument(p)
    p.set_defaults(func=list_hosts)
    output.add_raw_argument(p)

    p = hsub.add_parser("show", help="one host with its inventory")
    p.add_argument("host")
    output.add_output_argument(p)
    p.set_defaults(func=show_host)
    output.add_raw_argument(p)

    p = hsub.add_parser(
        "tag",
        help="set and remove tags on one host, or on every host of a target at once",
        description="Set (KEY=VALUE) and remove (KEY- or --remove KEY) operator-set tags, on HOST or on "
        "every host of --target/--host/--all, all or nothing. Needs hosts.tag on each host, on its tags "
        "both before and after the change (docs/access.md#tagging-hosts).",
        usage="opsctl hosts tag [-h] (HOST | --target SELECTOR | --host NAME | --all) [KEY=VALUE | KEY-]... "
        "[--remove KEY] [--dry-run] [-o {text,json}]",
    )
    p.add_argument(
        "words", nargs="*", metavar="HOST|KEY=VALUE|KEY-", help="the host (unless a target is given), then the changes"
    )
    add_target_arguments(p, required=False)
    p.add_argument(
        "--remove", action="append", default=[], metavar="KEY", help="remove this tag (repeatable); same as KEY-"
    )
    p.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    output.add_output_argument(p)
    p.set_defaults(func=tag_hosts)

    p = hsub.add_parser("deregister", help="revoke a host: its link drops and it can no longer connect")
    p.add_argument("host")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation (needed without a terminal)")
    output.add_output_argument(p)
    p.set_defaults(func=deregister_host)


def list_hosts(client: OperatorClient, args: argparse.Namespace) -> int:
    hosts = client.list_hosts(
        selector=args.target, hosts=args.host, all_hosts=args.all, include_deregistered=args.include_deregistered
    )
    output.emit(args, hosts, lambda: print_hosts(hosts))
    return 0


def print_hosts(hosts: Sequence[operator_pb2.Host]) -> None:
    """The host table (names and inventory as the hosts reported them, escaped)."""
    text = output.host_text
    rows = [
        [
            text(h.name),
            h.id,
            status_word(h.status),
            h.replica or "-",
            text(f"{h.inventory.os_name} {h.inventory.os_version}".strip()) or "-",
            text(h.inventory.ip_addresses[0]) if h.inventory.ip_addresses else "-",
            output.ago(h.last_seen_at),
            text(h.inventory.agent_version) or "-",
            tag_text(h.tags, h.host_tags, ","),
        ]
        for h in hosts
    ]
    output.table(["NAME", "ID", "STATUS", "REPLICA", "OS", "ADDRESS", "LAST SEEN", "AGENT", "TAGS"], rows)
    if not hosts:
        print("(no hosts match)")


def show_host(client: OperatorClient, args: argparse.Namespace) -> int:
    h = client.get_host(args.host)
    output.emit(args, h, lambda: print_host(h))
    return 0


def print_host(h: operator_pb2.Host) -> None:
    """One host's fields and inventory, then its disks."""
    inv = h.inventory
    text = output.host_text
    lines = [
        ("name", text(h.name)),
        ("id", h.id),
        ("status", status_word(h.status)),
        ("tags", tag_text(h.tags, h.host_tags, ", ")),
        ("registered", output.when(h.registered_at)),
        ("last seen", f"{output.when(h.last_seen_at)} ({output.ago(h.last_seen_at)})"),
        ("connected from", h.peer_address or "-"),
        ("replica", h.replica or "-"),
        ("certificate expires", output.when(h.certificate_expires_at)),
        ("hostname", text(inv.hostname)),
        ("os", text(f"{inv.os_name} {inv.os_version} ({inv.os_family})")),
        ("kernel", text(inv.kernel)),
        ("arch", text(inv.arch)),
        ("cpus", str(inv.cpu_count)),
        ("memory", output.size(inv.memory_bytes)),
        ("addresses", text(", ".join(inv.ip_addresses)) or "-"),
        ("booted", output.when(inv.boot_time)),
        ("agent", text(inv.agent_version)),
    ]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {value}")
    if h.host_tags:
        print(f"{'':<{width}}  (* set by the host itself: used for targeting, never for access)")
    if inv.disks:
        print("disks:")
        for d in inv.disks:
            print(f"  {text(d.mountpoint):<20} {text(d.device):<24} {text(d.fstype):<8} {output.size(d.total_bytes)}")
    if h.associations:
        print("associations (opsctl association show ID):")
        for a in h.associations:
            applied = output.when(a.status.last_applied_at) if output.is_set(a.status.last_applied_at) else "never"
            detail = f"  {text(a.status.detail)}" if a.status.detail else ""
            print(
                f"  {a.name or a.association_id:<24} {a.document:<24} {a.status.status:<14} applied {applied}{detail}"
            )


def tag_text(tags: Mapping[str, str], host_tags: Mapping[str, str], sep: str) -> str:
    """``k=v`` pairs; a tag the host set itself is marked ``*`` (it never counts for access)."""
    return sep.join(f"{k}={output.host_text(v)}{'*' if k in host_tags else ''}" for k, v in sorted(tags.items())) or "-"


def tag_hosts(client: OperatorClient, args: argparse.Namespace) -> int:
    words = list(args.words)
    targeted = bool(args.target or args.host or args.all)
    host = ""
    if not targeted:
        if not words or "=" in words[0] or words[0].endswith("-"):
            raise InvalidInput(
                "which hosts? give a host name first, or a target",
                "opsctl hosts tag HOST KEY=VALUE..., or opsctl hosts tag --target SELECTOR KEY=VALUE... [--dry-run]",
            )
        host = words.pop(0)
    set_tags, remove = parse_tag_assignments([*words, *(f"{key}-" for key in args.remove)])
    if not set_tags and not remove:
        raise InvalidInput("no tag change given", "set a tag with KEY=VALUE and remove one with KEY- or --remove KEY")
    if host and not args.dry_run:
        # One host, changed now: print it as it is after, host-set tags included (as hosts show does).
        h = client.tag_host(host, set_tags, remove)
        output.emit(
            args,
            h,
            lambda: print(
                f"{output.host_text(h.name)}: " + (tag_text(h.tags, h.host_tags, ",") if h.tags else "(no tags)")
            ),
        )
        return 0
    result = client.tag_hosts(
        set_tags,
        remove,
        selector=args.target,
        hosts=[host] if host else args.host,
        all_hosts=args.all,
        dry_run=args.dry_run,
    )
    output.emit(args, result, lambda: print_tag_changes(result))
    return 0


def print_tag_changes(result: operator_pb2.TagHostsResponse) -> None:
    """``changed the tags of 2 hosts`` (or ``would change``, for a dry run), then each host before and after."""
    changed = [c for c in result.hosts if c.changed]
    same = len(result.hosts) - len(changed)
    verb = "would change" if result.dry_run else "changed"
    line = f"{verb} the tags of {output.plural(len(changed), 'host')}"
    if same:
        line += f"; {output.plural(same, 'host')} already as asked"
    if result.dry_run:
        line += " (dry run: nothing was changed)"
    print(line)
    rows = [
        [
            output.host_text(c.host_name),
            _tags(c.before),
            _tags(c.after) if c.changed else "(unchanged)",
        ]
        for c in result.hosts
    ]
    output.table(["HOST", "TAGS BEFORE", "TAGS AFTER"], rows, out=sys.stdout)


def _tags(tags: Mapping[str, str]) -> str:
    return ",".join(f"{k}={output.host_text(v)}" for k, v in sorted(tags.items())) or "-"


def deregister_host(client: OperatorClient, args: argparse.Namespace) -> int:
    if not args.yes:
        if not output.is_terminal(sys.stdin):
            raise InvalidInput(
                f"not deregistering {output.host_text(args.host)} without confirmation: there is no terminal to ask on",
                f"pass --yes to deregister without asking: opsctl hosts deregister {output.host_text(args.host)} --yes",
            )
        h = client.get_host(args.host)
        print(
            f"Deregister {output.host_text(h.name)} ({h.id}, {status_word(h.status)})? Its certificate is "
            "revoked and its link dropped at once; it can only come back by registering again with a new activation.",
            file=sys.stderr,
        )
        try:
            answer = input(f"Type the host name ({output.host_text(h.name)}) to confirm: ")
        except EOFError:
            answer = ""
        if answer.strip() not in (h.name, h.id):
            print("not deregistered", file=sys.stderr)
            return 1
    h = client.deregister_host(args.host)
    output.emit(args, h, lambda: print(f"deregistered {output.host_text(h.name)} ({h.id}); its certificate is revoked"))
    return 0
