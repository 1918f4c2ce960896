"""How the console's templates show what the API returns: Jinja2 filters and the result groups.

Everything here returns text; the templates escape it when they print it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from fleetops.v1 import operator_pb2


def when(ts: Timestamp | None) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM:SS UTC``; ``""`` when unset."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return ""
    return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def state(value: int) -> str:
    """An invocation state's name: ``success``, ``timed_out``..."""
    return operator_pb2.InvocationState.Name(value).removeprefix("INVOCATION_STATE_").lower()


def host_status(value: int) -> str:
    return operator_pb2.HostStatus.Name(value).removeprefix("HOST_STATUS_").lower()


def text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def command_what(item: Any, width: int = 0) -> str:
    """What a command (or window task) runs: ``doc NAME``, its argv, or its script (cut to *width*)."""
    if item.document:
        return f"doc {item.document}"
    if item.argv:
        return " ".join(item.argv)
    script = text(item.script)
    return script if not width or len(script) <= width else script[: width - 1] + "…"


FILTERS: dict[str, Callable[..., str]] = {
    "when": when,
    "state": state,
    "host_status": host_status,
    "text": text,
    "what": command_what,
}


def result_groups(invocations: list[operator_pb2.Invocation]) -> list[dict[str, Any]]:
    """Hosts with the same result (state, exit code, output tails), largest group first, as the CLI
    prints them."""
    groups: dict[tuple[Any, ...], list[operator_pb2.Invocation]] = defaultdict(list)
    for inv in invocations:
        code = inv.exit_code if inv.has_exit_code else None
        groups[(state(inv.state), code, inv.stdout_tail, inv.stderr_tail, inv.reason)].append(inv)
    out = []
    for (name, code, stdout, stderr, reason), members in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0][0])):
        out.append(
            {
                "state": name,
                "exit_code": code,
                "stdout": text(stdout),
                "stderr": text(stderr),
                "reason": reason,
                "hosts": sorted(i.host_name for i in members),
                "waiting": sorted({i.waiting_reason for i in members if i.waiting_reason}),
            }
        )
    return out
