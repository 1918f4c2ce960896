"""``opsctl hosts``: list, show, tag, deregister.

Names, inventory and host-set tags are what hosts reported: the text views print them through
``output.host_text`` (control characters escaped; ``--raw`` to opt out). JSON is escaped anyway.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from fleetops.common.selectors import parse_tag_assignments
from fleetops.opsctl import output
from fleetops.opsctl.client import OperatorClient
from fleetops.v1 import operator_pb2

STATUS = {
    operator_pb2.HOST_STATUS_ONLINE: "online",
    operator_pb2.HOST_STATUS_OFFLINE: "offline",
    operator_pb2.HOST_STATUS_DEREGISTERED: "deregistered",
}


def add_target_arguments(p: argparse.ArgumentParser, *, required: bool) -> None:
    """--target / --host / --all, shared by every command that picks hosts."""
    p.add_argument(
        "--target", "-t", default="", metavar="SELECTOR", help="tag selector, e.g. 'env=prod,role in (web,api)'"
    )
    p.add_argument("--host", action="append", default=[], metavar="NAME", help="a host by name or id (repeatable)")
    p.add_argument("--all", action="store_true", help="every registered host")
    p.set_defaults(target_required=required)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    hosts = sub.add_parser("hosts", help="registered hosts")
    hsub = hosts.add_subparsers(dest="hosts_command", required=True)

    p = hsub.add_parser("list", help="list hosts (all, or those matching a target)")
    add_target_arguments(p, required=False)
    p.add_argument("--include-deregistered", action="store_true")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.set_defaults(func=list_hosts)
    output.add_raw_argument(p)

    p = hsub.add_parser("show", help="one host with its inventory")
    p.add_argument("host")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=show_host)
    output.add_raw_argument(p)

    p = hsub.add_parser("tag", help="set (k=v) and remove (k-) tags")
    p.add_argument("host")
    p.add_argument("changes", nargs="+", metavar="k=v|k-")
    p.set_defaults(func=tag_host)

    p = hsub.add_parser("deregister", help="revoke a host: its link drops and it can no longer connect")
    p.add_argument("host")
    p.set_defaults(func=deregister_host)


def list_hosts(client: OperatorClient, args: argparse.Namespace) -> int:
    hosts = client.list_hosts(
        selector=args.target, hosts=args.host, all_hosts=args.all, include_deregistered=args.include_deregistered
    )
    if args.output == "json":
        output.as_json(hosts)
        return 0
    text = output.host_text
    rows = [
        [
            text(h.name),
            h.id,
            STATUS.get(h.status, "?"),
            text(f"{h.inventory.os_name} {h.inventory.os_version}".strip()) or "-",
            text(h.inventory.ip_addresses[0]) if h.inventory.ip_addresses else "-",
            output.ago(h.last_seen_at),
            tag_text(h.tags, h.host_tags, ","),
        ]
        for h in hosts
    ]
    output.table(["NAME", "ID", "STATUS", "OS", "ADDRESS", "LAST SEEN", "TAGS"], rows)
    if not hosts:
        print("(no hosts match)")
    return 0


def show_host(client: OperatorClient, args: argparse.Namespace) -> int:
    h = client.get_host(args.host)
    if args.output == "json":
        output.as_json(h)
        return 0
    inv = h.inventory
    text = output.host_text
    lines = [
        ("name", text(h.name)),
        ("id", h.id),
        ("status", STATUS.get(h.status, "?")),
        ("tags", tag_text(h.tags, h.host_tags, ", ")),
        ("registered", output.when(h.registered_at)),
        ("last seen", f"{output.when(h.last_seen_at)} ({output.ago(h.last_seen_at)})"),
        ("connected from", h.peer_address or "-"),
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
    return 0


def tag_text(tags: Mapping[str, str], host_tags: Mapping[str, str], sep: str) -> str:
    """``k=v`` pairs; a tag the host set itself is marked ``*`` (it never counts for access)."""
    return sep.join(f"{k}={output.host_text(v)}{'*' if k in host_tags else ''}" for k, v in sorted(tags.items())) or "-"


def tag_host(client: OperatorClient, args: argparse.Namespace) -> int:
    set_tags, remove = parse_tag_assignments(args.changes)
    h = client.tag_host(args.host, set_tags, remove)
    print(f"{output.host_text(h.name)}: " + (tag_text(h.tags, h.host_tags, ",") if h.tags else "(no tags)"))
    return 0


def deregister_host(client: OperatorClient, args: argparse.Namespace) -> int:
    h = client.deregister_host(args.host)
    print(f"deregistered {h.name} ({h.id}); its certificate is revoked")
    return 0
