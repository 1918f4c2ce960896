"""The trial of a new agent version: the marker every agent writes, and the rollback decision.

The agent writes ``STATE/agent-run.json`` when it starts (its version and pid) and again each time
the controller welcomes it (``connected_at``). The update task, which outlives the agent it
replaced, reads it to decide: the new version is in when an agent *of that version* connected
after the switch; it is rolled back when that has not happened by the deadline (it exits at start,
cannot reach the controller, is refused...).
"""

from __future__ import annotations

import enum
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fleetops.common.files import write_secret_file

MARKER_FILE = "agent-run.json"


@dataclass(frozen=True)
class RunMarker:
    version: str
    pid: int
    started_at: float
    connected_at: float = 0.0


def read_marker(state_dir: Path) -> RunMarker | None:
    """The newest marker, or None (none yet, or unreadable: treated as "not connected")."""
    try:
        doc = json.loads((state_dir / MARKER_FILE).read_bytes())
        return RunMarker(str(doc["version"]), int(doc["pid"]), float(doc["started_at"]), float(doc["connected_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_marker(state_dir: Path, marker: RunMarker) -> None:
    """Raises: OSError (the state directory cannot be written)."""
    write_secret_file(state_dir / MARKER_FILE, json.dumps(asdict(marker)).encode())


def note_started(state_dir: Path, version: str) -> RunMarker:
    marker = RunMarker(version, os.getpid(), time.time())
    write_marker(state_dir, marker)
    return marker


class Verdict(enum.Enum):
    SWITCHED = "switched"  # the new version connected
    WAITING = "waiting"
    ROLL_BACK = "roll back"


def decide(marker: RunMarker | None, version: str, switched_at: float, now: float, deadline: float) -> Verdict:
    """Whether the agent ``version`` installed at ``switched_at`` is in, still on trial, or failed.

    Only a connection made by that version after the switch counts: an older process still
    running, or a marker left from before the switch, does not.
    """
    if marker is not None and marker.version == version and marker.connected_at >= switched_at:
        return Verdict.SWITCHED
    return Verdict.WAITING if now < deadline else Verdict.ROLL_BACK
