"""``opsctl automation``: runbook executions (docs/automation.md#runbooks).

``start`` prints the execution id and, unless ``--detach``, follows it as ``watch`` does: a line
per step as it starts and ends, the approval it waits for and who may give it. ``watch`` and a
followed ``start`` exit 0 when the execution succeeded, 1 when it failed or was cancelled.
"""

from __future__ import annotations

import argparse
import json
import sys

from fleetops.opsctl import output
from fleetops.opsctl.client import OperatorClient
from fleetops.opsctl.command import key_values
from fleetops.v1 import operator_pb2

FINAL = ("success", "failed", "cancelled")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    auto = sub.add_parser(
        "automation",
        help="runbooks: start, list, show, watch, cancel, approve, deny",
        description="Runbooks are documents with steps (docs/automation.md#runbooks). Executions survive a "
        "controller restart and resume at the step they were in.",
    )
    asub = auto.add_subparsers(dest="automation_command", required=True)
    p = asub.add_parser("start", help="start a runbook and follow it (--detach: print the id and return)")
    p.add_argument("runbook", metavar="NAME[:VERSION]")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="a runbook parameter (repeatable)")
    p.add_argument("--comment", default="")
    p.add_argument("--detach", action="store_true", help="print the execution id and return")
    output.add_output_argument(p)
    p.set_defaults(func=start)

    p = asub.add_parser("list", help="recent executions")
    p.add_argument("--limit", type=int, default=50)
    output.add_output_argument(p)
    p.set_defaults(func=list_executions)

    p = asub.add_parser("show", help="an execution and its steps")
    p.add_argument("id", metavar="ID")
    output.add_output_argument(p)
    p.set_defaults(func=show)

    p = asub.add_parser("watch", help="follow an execution to its end (exit 1 when it failed or was cancelled)")
    p.add_argument("id", metavar="ID")
    p.add_argument(
        "--until-approval",
        action="store_true",
        help="return (exit 0) as soon as it waits for an approval, e.g. to approve it in a script",
    )
    p.set_defaults(func=watch)

    p = asub.add_parser("cancel", help="stop an execution (the running step's commands are cancelled)")
    p.add_argument("id", metavar="ID")
    p.set_defaults(func=cancel)

    for verb, helptext in (("approve", "approve the step an execution waits on"), ("deny", "deny it (the step fails)")):
        p = asub.add_parser(verb, help=helptext)
        p.add_argument("id", metavar="ID")
        p.add_argument("--comment", default="", help="why (kept in the step and the audit log)")
        p.set_defaults(func=decide, approve=verb == "approve")


def start(client: OperatorClient, args: argparse.Namespace) -> int:
    execution = client.start_automation(args.runbook, key_values(args.param, "--param"), args.comment)
    if args.detach or args.output == "json":
        output.emit(args, execution, lambda: print(execution.id))
        return 0
    print(f"automation {execution.id} ({execution.runbook})", flush=True)
    return follow(client, execution.id)


def list_executions(client: OperatorClient, args: argparse.Namespace) -> int:
    executions = client.list_automations(args.limit)

    def text() -> None:
        rows = [
            [e.id, output.when(e.created_at), e.started_by, e.runbook, e.status, e.current_step or "-"]
            for e in executions
        ]
        output.table(["ID", "STARTED", "BY", "RUNBOOK", "STATUS", "STEP"], rows, out=sys.stdout)

    output.emit(args, executions, text)
    return 0


def show(client: OperatorClient, args: argparse.Namespace) -> int:
    execution = client.get_automation(args.id)
    output.emit(args, execution, lambda: print_execution(execution))
    return 0


def print_execution(e: operator_pb2.AutomationExecution) -> None:
    print(f"automation {e.id}  ({e.status})")
    print(f"runbook    {e.runbook}, started by {e.started_by} via {e.started_via} at {output.when(e.created_at)}")
    if e.parameters:
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(e.parameters.items()))
        print(f"params     {output.neutralize(shown)}")
    if e.reason:
        print(f"reason     {output.neutralize(e.reason)}")
    if e.approvers:
        print(f"waiting    for approval by {', '.join(e.approvers)}: opsctl automation approve|deny {e.id}")
        if e.approval_message:
            print(f"message    {output.neutralize(e.approval_message)}")
    rows = [
        [
            s.name + (f" ({s.attempt})" if s.attempt > 1 else ""),
            s.kind,
            s.status,
            output.neutralize(s.detail)[:80] or "-",
            ", ".join(s.command_ids) or "-",
        ]
        for s in e.steps
    ]
    print()
    output.table(["STEP", "KIND", "STATUS", "DETAIL", "COMMANDS"], rows, out=sys.stdout)


def _step_line(s: operator_pb2.AutomationStep) -> str:
    detail = f": {output.neutralize(s.detail)}" if s.detail else ""
    return f"── {s.name} ({s.kind}) {s.status}{detail}"


def follow(client: OperatorClient, execution_id: str, *, until_approval: bool = False) -> int:
    """Print each step's changes until the execution ends (or, *until_approval*, waits for an
    approval); 0 when it succeeded (or waits)."""
    seen: dict[int, str] = {}
    last: operator_pb2.AutomationExecution | None = None
    try:
        for execution in client.watch_automation(execution_id):
            last = execution
            for i, step in enumerate(execution.steps):
                line = _step_line(step)
                if seen.get(i) != line:
                    seen[i] = line
                    print(line, flush=True)
            if execution.approvers and seen.get(-1) != execution.steps[-1].name:
                seen[-1] = execution.steps[-1].name
                message = f" ({output.neutralize(execution.approval_message)})" if execution.approval_message else ""
                print(
                    f"   waiting for {', '.join(execution.approvers)}{message}: "
                    f"opsctl automation approve {execution.id}",
                    flush=True,
                )
            if until_approval and execution.approvers:
                return 0
    except KeyboardInterrupt:
        print(f"\nstopped following; it goes on: opsctl automation watch {execution_id}", file=sys.stderr)
        return 130
    if last is None:
        return 1
    reason = f": {output.neutralize(last.reason)}" if last.reason else ""
    print(f"automation {last.id} {last.status}{reason}")
    return 0 if last.status == "success" else 1


def watch(client: OperatorClient, args: argparse.Namespace) -> int:
    return follow(client, args.id, until_approval=args.until_approval)


def cancel(client: OperatorClient, args: argparse.Namespace) -> int:
    execution = client.cancel_automation(args.id)
    print(f"automation {execution.id}: cancel requested (see opsctl automation watch {execution.id})")
    return 0


def decide(client: OperatorClient, args: argparse.Namespace) -> int:
    execution = client.decide_automation_approval(args.id, args.approve, args.comment)
    print(f"automation {execution.id}: {'approved' if args.approve else 'denied'} ({execution.status})")
    return 0
