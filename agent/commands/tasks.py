"""Tasks the agent implements itself (patch scans and installs), run like any other command.

The controller sends ``RunInvocation.agent_task`` with a JSON ``task_input`` instead of an argv;
:func:`expand_agent_task` turns it into the argv of a child process of the agent's own program
(``python -m fleetops.agent patch scan|install``) with the request in its environment, before the
invocation is journaled. From there on it is an ordinary invocation: exactly once, timeouts,
cancel, output spooled and streamed, exit 194 asking for a reboot. The task writes its report
(a serialized ``fleetops.v1.PatchReport``) to the file :data:`REPORT_ENV` names, inside the
invocation's journal entry; the result message carries it (``messages.result_message``), so a
restarted agent sends it again with the result. Its stdout is a summary for operators.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from fleetops.agent.commands.entry import TASK_STATUS_FILE
from fleetops.v1 import agent_pb2

#: agent_task -> the ``fleetops-agent`` subcommand that performs it
TASKS: dict[str, tuple[str, ...]] = {
    "patch.scan": ("patch", "scan"),
    "patch.install": ("patch", "install"),
    "agent.update": ("update",),
}
#: The environment variable carrying ``task_input`` to the child.
REQUEST_ENV = "FLEETOPS_TASK_REQUEST"
#: The environment variable naming the file the child writes its report to (a serialized
#: ``fleetops.v1.PatchReport``, in the invocation's journal entry; sent with the result).
REPORT_ENV = "FLEETOPS_TASK_REPORT"
#: The environment variable naming the file a task that may outlive the agent writes its exit
#: status to (``{"exit_code": N, "reason": "..."}``): the agent that adopts it reports that.
STATUS_ENV = "FLEETOPS_TASK_STATUS"
#: Variables of the agent's own environment passed on to tasks (host settings of patching).
PASSED_PREFIX = "FLEETOPS_PATCH_"
MAX_TASK_INPUT = 1024 * 1024


class UnknownTask(ValueError):
    """The controller asked for a task this agent does not implement (an older agent)."""


def expand_agent_task(spec: agent_pb2.RunInvocation, state_dir: Path, report_path: Path) -> agent_pb2.RunInvocation:
    """``spec`` with its agent task replaced by the argv and environment that perform it.

    The task writes its report to ``report_path`` (the invocation's journal entry, see
    :attr:`~fleetops.agent.commands.entry.JournalEntry.task_report_path`).

    Raises:
        UnknownTask: the task is not one of :data:`TASKS`, or its input is too large.
    """
    if not spec.agent_task:
        return spec
    words = TASKS.get(spec.agent_task)
    if words is None:
        raise UnknownTask(f"this agent does not implement the task {spec.agent_task!r}; upgrade the agent")
    if len(spec.task_input) > MAX_TASK_INPUT:
        raise UnknownTask(f"the input of task {spec.agent_task} is over {MAX_TASK_INPUT} bytes")
    expanded = agent_pb2.RunInvocation()
    expanded.CopyFrom(spec)
    expanded.agent_task = ""
    expanded.task_input = b""
    expanded.ClearField("argv")
    expanded.argv.extend([sys.executable, "-m", "fleetops.agent", "--state-dir", str(state_dir), *words])
    expanded.env.update({k: v for k, v in os.environ.items() if k.startswith(PASSED_PREFIX)})
    expanded.env[REQUEST_ENV] = spec.task_input.decode("utf-8", errors="replace")
    expanded.env[REPORT_ENV] = str(report_path)
    expanded.env[STATUS_ENV] = str(report_path.parent / TASK_STATUS_FILE)
    return expanded
