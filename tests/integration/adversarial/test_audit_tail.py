"""Issue 11, section 6: cutting the newest events off the audit log no longer goes unnoticed.

The attacker holds the database (here: sqlite3 on the controller's file, WAL lets it write beside
the running controller) but not the controller's ``ca/`` directory. The hash chain alone still
verifies after the tail is deleted; the signed checkpoint in the object store is what names the
missing events. A checkpoint edited in the store fails its signature.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness import PYTHON, Agent, Controller, run

pytestmark = pytest.mark.slow


def take_checkpoint(controller: Controller) -> subprocess.CompletedProcess[str]:
    return run([PYTHON, "-m", "fleetops.controller", "audit", "checkpoint", "--state-dir", str(controller.state_dir)])


def verify_export(controller: Controller) -> subprocess.CompletedProcess[str]:
    return run(
        [PYTHON, "-m", "fleetops.controller", "audit", "verify-export", "--state-dir", str(controller.state_dir)]
    )


def verify(controller: Controller, *args: str) -> subprocess.CompletedProcess[str]:
    return controller.opsctl("audit", "verify", *args, check=False)


def verify_json(controller: Controller) -> tuple[int, dict]:
    result = verify(controller, "-o", "json")
    return result.returncode, json.loads(result.stdout)


def checkpoint_dir(controller: Controller) -> Path:
    return controller.state_dir / "objects" / "audit-checkpoints"


def short(rfc3339: str) -> str:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def events(controller: Controller, action: str) -> list[dict]:
    return list(controller.opsctl_json("audit", "list", "--action", action, "--limit", "1000"))


def test_an_altered_or_absent_checkpoint_is_reported(module_controller: Controller) -> None:
    c = module_controller
    c.opsctl("whoami")
    c.opsctl("hosts", "list", "--all")
    taken = take_checkpoint(c)
    assert taken.returncode == 0, taken.stderr
    assert "audit checkpoint audit-checkpoints/" in taken.stdout and "written: it covers events 1.." in taken.stdout
    code, doc = verify_json(c)
    assert code == 0 and doc["ok"] is True and doc["checkpoint"]["status"] == "ok"
    key, head = doc["checkpoint"]["key"], int(doc["checkpoint"]["head_event_id"])
    assert key in taken.stdout and f"events 1..{head}" in taken.stdout
    text = verify(c)
    assert text.returncode == 0 and "audit chain intact" in text.stdout
    assert f"checkpoint verified: the database holds events 1..{head} as the checkpoint of" in text.stdout
    assert key in text.stdout
    # The export, read from the store alone, agrees with the signed checkpoint too.
    c.opsctl("audit", "export")
    exported = verify_export(c)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert f"checkpoint verified: the export holds events 1..{head} as the checkpoint of" in exported.stdout

    # Alter the newest checkpoint's bytes in the store: claim fewer events (hide a later truncation).
    path = c.state_dir / "objects" / key
    original = path.read_bytes()
    forged = json.loads(original)
    forged["head_id"] = forged["events"] = head - 1
    path.write_bytes(json.dumps(forged, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    bad = verify(c)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "audit chain intact" in bad.stdout  # the database is fine; the anchor is not
    assert f"checkpoint FORGED: checkpoint {key} does not verify against key sha256:" in bad.stdout
    code, doc = verify_json(c)
    assert code == 1 and doc["ok"] is False and doc["checkpoint"]["status"] == "bad-signature"
    exported = verify_export(c)
    assert exported.returncode == 1 and "checkpoint check FAILED" in exported.stdout
    # The controller does not chain a new checkpoint onto a forged one.
    refused = take_checkpoint(c)
    assert refused.returncode == 4 and "cannot be trusted" in refused.stderr and "Traceback" not in refused.stderr
    assert events(c, "audit.checkpoint")[-1]["outcome"] == "refused"

    path.write_bytes(original)
    assert verify(c).returncode == 0

    # No checkpoint at all: said, not a failure.
    aside = c.root / "checkpoints-aside"
    shutil.move(checkpoint_dir(c), aside)
    try:
        none = verify(c)
        assert none.returncode == 0, none.stdout
        assert "checkpoint not checked: no audit checkpoint under audit-checkpoints/" in none.stdout
    finally:
        shutil.move(aside, checkpoint_dir(c))
    assert verify(c).returncode == 0
    # Each verification is audited, naming the checkpoint it compared with.
    assert events(c, "audit.verify")[-1]["target"].startswith("audit-checkpoints/")


def test_a_cut_tail_is_named(controller: Controller, enrolled: Callable[..., Agent]) -> None:
    enrolled("web-1")
    assert controller.opsctl("run", "--host", "web-1", "--", "echo", "hi").stdout == "hi\n"
    for _ in range(3):
        controller.opsctl("hosts", "list")
    taken = take_checkpoint(controller)
    assert taken.returncode == 0, taken.stderr
    code, doc = verify_json(controller)
    assert code == 0, doc
    head, when = int(doc["checkpoint"]["head_event_id"]), short(doc["checkpoint"]["time"])

    # The attack: delete the newest events straight from the database.
    first_cut = head - 4
    db = sqlite3.connect(controller.state_dir / "fleetops.db", timeout=30)
    try:
        with db:
            assert db.execute("DELETE FROM audit_events WHERE id >= ?", (first_cut,)).rowcount >= 5
    finally:
        db.close()

    cut = verify(controller)
    assert cut.returncode == 1, cut.stdout + cut.stderr
    assert "audit chain intact" in cut.stdout  # the chain alone would not notice
    assert (
        f"audit log TRUNCATED: events {first_cut}..{head} covered by the checkpoint of {when} "
        "are missing from the database"
    ) in cut.stdout
    code, doc = verify_json(controller)
    check = doc["checkpoint"]
    assert code == 1 and doc["ok"] is False and check["status"] == "missing"
    assert (int(check["missing_from"]), int(check["missing_to"])) == (first_cut, head)
    assert int(doc["first_bad_event_id"]) == first_cut  # what older opsctl versions print

    # No new checkpoint covers the cut up: the on-demand one is refused (and audited as refused)...
    refused = take_checkpoint(controller)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert f"events {first_cut}..{head} covered by the checkpoint of {when}" in refused.stderr
    assert events(controller, "audit.checkpoint")[-1]["outcome"] == "refused"

    # ...and so is the one a restart takes, while new events reuse the deleted ids.
    controller.start()
    assert controller.process is not None
    controller.process.wait_for_line(r"audit checkpoint refused: .*missing from the database", timeout=30)
    after = verify(controller)
    assert after.returncode == 1
    assert f"covered by the checkpoint of {when} are missing from the database" in after.stdout
    assert f"events {first_cut}..{head}" in after.stdout

    # Nothing else broke: the agent still runs commands.
    assert controller.opsctl("run", "--host", "web-1", "--", "echo", "again").stdout == "again\n"
