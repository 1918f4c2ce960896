"""``opsctl patch``: scans, installs, compliance, baselines and patch groups (docs/patching.md).

Scans and installs are commands (agent tasks ``patch.scan``/``patch.install``): they are followed
like ``opsctl run`` (progress bar, grouped results, exit status) and end with the compliance of the
hosts they targeted. Baselines are documents operators write as YAML or JSON files, or with flags.

This module holds the commands: their flags and handlers. The flags become requests in
:mod:`~fleetops.opsctl.patch_request` (which checks baselines with the shared model before sending);
results are printed by :mod:`~fleetops.opsctl.patch_render` (text) or :func:`fleetops.opsctl.output.emit`.
"""

from __future__ import annotations

import argparse
import sys

from fleetops.common.baselines import OS_FAMILIES
from fleetops.common.errors import InvalidInput
from fleetops.common.selectors import Selector
from fleetops.opsctl import command, output, patch_render
from fleetops.opsctl import patch_request as request
from fleetops.opsctl.client import OperatorClient
from fleetops.opsctl.hosts import add_target_arguments
from fleetops.opsctl.operation_request import add_rate_arguments
from fleetops.opsctl.patch_request import REBOOT_CHOICES, REJECTED_ACTIONS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    patch = sub.add_parser(
        "patch",
        help="patch scans, installs, compliance, baselines and patch groups",
        description="Patch management after AWS Patch Manager (docs/patching.md): scan hosts, install "
        "approved patches, see compliance, and manage the baselines that say what is approved.",
    )
    psub = patch.add_subparsers(dest="patch_command", required=True)

    for verb in ("scan", "install"):
        p = psub.add_parser(
            verb,
            help="scan hosts for missing patches" if verb == "scan" else "install the approved patches on hosts",
            description=(
                "Scan the targeted hosts' packages against their baselines, then show their compliance."
                if verb == "scan"
                else "Install the patches the hosts' baselines approve (fixed when the operation starts), "
                "rebooting where needed, then show their compliance."
            ),
        )
        add_target_arguments(p, required=True)
        if verb == "install":
            p.add_argument(
                "--reboot",
                choices=REBOOT_CHOICES,
                default="if-needed",
                help="reboot hosts whose patches need it (default if-needed)",
            )
        add_rate_arguments(p)
        p.add_argument("--timeout", default=None, metavar="DURATION", help="per host, e.g. 30m (default 1h)")
        p.add_argument("--no-refresh", action="store_true", help="do not refresh the package index before scanning")
        p.add_argument("--comment", default="")
        p.add_argument("--detach", action="store_true", help="print the command id and return; see opsctl run watch")
        output.add_output_argument(p)
        p.set_defaults(func=scan if verb == "scan" else install)

    p = psub.add_parser(
        "compliance",
        help="patch compliance of the fleet, or of one host (--host NAME) with its findings",
        description="Without a target: every host. With exactly one --host: that host's findings and history.",
    )
    add_target_arguments(p, required=False)
    p.add_argument(
        "--all-findings",
        action="store_true",
        help="one host: also list every installed_other package and every update pending approval",
    )
    output.add_output_argument(p)
    p.set_defaults(func=compliance)

    baseline = psub.add_parser("baseline", help="patch baselines: which patches hosts should have")
    bsub = baseline.add_subparsers(dest="baseline_command", required=True)
    p = bsub.add_parser(
        "create",
        help="create a baseline from a YAML/JSON file and/or flags",
        description="Create a baseline. The rule flags (--classification, --severity, --approve-after-days) "
        "make one approval rule; a --file can hold several. Flags change what the file says.",
    )
    p.add_argument("name")
    _add_document_flags(p, update=False)
    p.set_defaults(func=create_baseline)
    p = bsub.add_parser("list", help="stored and built-in baselines")
    output.add_output_argument(p)
    p.set_defaults(func=list_baselines)
    p = bsub.add_parser("show", help="one baseline (-o yaml writes a file for --file)")
    p.add_argument("name")
    output.add_output_argument(p, extra=("yaml",))
    p.set_defaults(func=show_baseline)
    p = bsub.add_parser(
        "update",
        help="change a baseline: --file replaces its document, flags change fields",
        description="Change a baseline. --file replaces the whole document; flags change single fields "
        "(--approve/--reject add patterns, --unapprove/--unreject remove them).",
    )
    p.add_argument("name")
    _add_document_flags(p, update=True)
    p.set_defaults(func=update_baseline)
    p = bsub.add_parser("delete", help="delete a stored baseline")
    p.add_argument("name")
    p.set_defaults(func=delete_baseline)
    p = bsub.add_parser(
        "assign",
        help="register a patch group: hosts matching a selector use this baseline",
        description="Hosts whose tags match --target use baseline NAME; among matching groups of a host's OS "
        "family the lowest --priority wins.",
    )
    p.add_argument("name", metavar="NAME", help="the baseline")
    p.add_argument("--group", required=True, help="the patch group's name")
    p.add_argument("--target", "-t", required=True, metavar="SELECTOR", help="tag selector, e.g. 'env=prod,role=web'")
    p.add_argument("--priority", type=int, default=None, help="the lowest number wins (default 100)")
    p.set_defaults(func=assign_baseline)

    group = psub.add_parser("group", help="patch groups: which hosts use which baseline")
    gsub = group.add_subparsers(dest="group_command", required=True)
    p = gsub.add_parser("list", help="registered patch groups")
    output.add_output_argument(p)
    p.set_defaults(func=list_groups)
    p = gsub.add_parser("delete", help="unregister a patch group (its hosts fall back to other groups or defaults)")
    p.add_argument("group")
    p.set_defaults(func=delete_group)


def _add_document_flags(p: argparse.ArgumentParser, *, update: bool) -> None:
    p.add_argument("--file", "-f", metavar="FILE", help="a YAML or JSON baseline document ('-': standard input)")
    p.add_argument("--os", choices=OS_FAMILIES, help="the OS family the baseline is for")
    p.add_argument("--description", default=None, metavar="TEXT")
    p.add_argument(
        "--classification",
        default=None,
        metavar="LIST",
        help="rule: classifications, comma-separated (security,bugfix,enhancement,other; 'any')",
    )
    p.add_argument(
        "--severity",
        default=None,
        metavar="LIST",
        help="rule: vendor severities, comma-separated (critical,important,moderate,low,unspecified; 'any')",
    )
    p.add_argument("--approve-after-days", type=int, default=None, metavar="N", help="rule: days after release (0-360)")
    p.add_argument(
        "--compliance-level",
        default=None,
        metavar="LEVEL",
        help="level of approved patches and rules (critical,high,medium,low,informational,unspecified)",
    )
    p.add_argument(
        "--approve",
        action="append",
        default=[],
        metavar="PATTERN",
        help="add a pattern to the approved list (repeatable)",
    )
    p.add_argument(
        "--reject",
        action="append",
        default=[],
        metavar="PATTERN",
        help="add a pattern to the rejected list (repeatable)",
    )
    if update:
        p.add_argument("--unapprove", action="append", default=[], metavar="PATTERN", help="drop an approved pattern")
        p.add_argument("--unreject", action="append", default=[], metavar="PATTERN", help="drop a rejected pattern")
    p.add_argument("--rejected-action", choices=REJECTED_ACTIONS, default=None)
    p.add_argument(
        "--default",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the default baseline of its OS family",
    )


# ---- scan and install -------------------------------------------------------------------------


def scan(client: OperatorClient, args: argparse.Namespace) -> int:
    return _operation(client, args, install=False)


def install(client: OperatorClient, args: argparse.Namespace) -> int:
    return _operation(client, args, install=True)


def _operation(client: OperatorClient, args: argparse.Namespace, *, install: bool) -> int:
    operation = request.operation_request(args, install=install)
    response = client.install_patches(operation) if install else client.scan_patches(operation)
    info = command.announce(response, args.output)
    command_id = response.command.id
    if args.detach:
        print(command_id)
        return 0
    print(f"command {command_id} ({'install' if install else 'scan'})", file=info, flush=True)
    if not command.wait(client, command_id, args.output):
        return 130
    detail = client.get_command(command_id, include_output=True)
    status = command.exit_status(detail)
    result = client.patch_compliance(selector=args.target, hosts=args.host, all_hosts=args.all)
    output.emit(
        args, lambda: patch_render.operation_doc(detail, result), lambda: patch_render.print_operation(detail, result)
    )
    return status


# ---- compliance -------------------------------------------------------------------------------


def compliance(client: OperatorClient, args: argparse.Namespace) -> int:
    one_host = len(args.host) == 1 and not args.target and not args.all
    if one_host:
        result = client.patch_compliance(host=args.host[0])
    else:
        result = client.patch_compliance(selector=args.target, hosts=args.host, all_hosts=args.all)

    def text() -> None:
        if one_host:
            patch_render.print_host(result, args.host[0], sys.stdout, all_findings=args.all_findings)
        else:
            patch_render.print_fleet(result, sys.stdout)

    output.emit(args, result, text)
    return 0


# ---- baselines --------------------------------------------------------------------------------


def create_baseline(client: OperatorClient, args: argparse.Namespace) -> int:
    doc = request.creation_document(args)
    patch_render.note_if_empty(doc)
    created = client.create_patch_baseline(args.name, request.document_json(doc))
    patch_render.print_baseline_saved("created", created, args.name, doc)
    return 0


def update_baseline(client: OperatorClient, args: argparse.Namespace) -> int:
    current = None if args.file or not request.document_flags_given(args) else client.get_patch_baseline(args.name)
    doc = request.update_document(args, current)
    patch_render.note_if_empty(doc)
    updated = client.update_patch_baseline(args.name, request.document_json(doc))
    patch_render.print_baseline_saved("updated", updated, args.name, doc)
    return 0


def list_baselines(client: OperatorClient, args: argparse.Namespace) -> int:
    baselines = client.list_patch_baselines()
    output.emit(
        args,
        lambda: [patch_render.baseline_doc(b) for b in baselines],
        lambda: patch_render.print_baselines(baselines),
    )
    return 0


def show_baseline(client: OperatorClient, args: argparse.Namespace) -> int:
    b = client.get_patch_baseline(args.name)
    output.emit(
        args,
        lambda: patch_render.baseline_doc(b),
        lambda: patch_render.print_baseline(b, request.stored_document(b)),
        yaml=lambda: patch_render.print_baseline_yaml(request.stored_document(b)),
    )
    return 0


def delete_baseline(client: OperatorClient, args: argparse.Namespace) -> int:
    client.delete_patch_baseline(args.name)
    print(f"deleted baseline {args.name}")
    return 0


# ---- patch groups -----------------------------------------------------------------------------


def assign_baseline(client: OperatorClient, args: argparse.Namespace) -> int:
    if args.priority is not None and args.priority < 1:
        raise InvalidInput("--priority must be 1 or more", "the lowest number wins; without --priority a group has 100")
    Selector.parse(args.target)  # a bad selector is reported here, with a pointer to the bad character
    group = client.assign_patch_baseline(
        group=args.group, selector=args.target, baseline=args.name, priority=args.priority or 0
    )
    print(
        f"patch group {group.name}: hosts matching {group.selector!r} use baseline {group.baseline} "
        f"(priority {group.priority or 100})"
    )
    return 0


def list_groups(client: OperatorClient, args: argparse.Namespace) -> int:
    groups = client.list_patch_groups()
    output.emit(args, groups, lambda: patch_render.print_groups(groups))
    return 0


def delete_group(client: OperatorClient, args: argparse.Namespace) -> int:
    client.delete_patch_group(args.group)
    print(f"deleted patch group {args.group}")
    return 0
