"""Audit review through a real controller: list filters, show, export to the object store, and tampering.

The export is checked with ``fleetops-controller audit verify-export``, which reads only the object
store; an edited database row is named by ``opsctl audit verify``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness import BASE_ENV, PYTHON, Agent, Controller, run, wait_until

pytestmark = pytest.mark.slow


def audit(controller: Controller, *args: str) -> list[dict]:
    return list(controller.opsctl_json("audit", "list", "--limit", "1000", *args))


def verify_export(controller: Controller) -> subprocess.CompletedProcess[str]:
    return run(
        [PYTHON, "-m", "fleetops.controller", "audit", "verify-export", "--state-dir", str(controller.state_dir)]
    )


def edit_row(controller: Controller, event_id: int, details: dict) -> None:
    db = sqlite3.connect(controller.state_dir / "fleetops.db", timeout=30)
    try:
        with db:
            changed = db.execute(
                "UPDATE audit_events SET details = ? WHERE id = ?", (json.dumps(details), event_id)
            ).rowcount
        assert changed == 1
    finally:
        db.close()


def run_session(controller: Controller, host: str, command: str) -> None:
    from terminal import PtyProcess

    env = {**os.environ, **BASE_ENV, "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    argv = [PYTHON, "-m", "fleetops.opsctl", "--profile", str(controller.profile), "session", host]
    term = PtyProcess([*argv, "--command", command], env, cols=80, rows=24)
    try:
        term.expect(r"hello-from-session")
        assert term.wait() == 0
    finally:
        term.close()


def test_list_filters_show_and_export(controller: Controller, enrolled: Callable[..., Agent]) -> None:
    web = enrolled("web-1", {"role": "web"})
    db = enrolled("db-1", {"role": "db"})
    controller.opsctl("hosts", "tag", "web-1", "team=blue")
    controller.opsctl("hosts", "show", "db-1")
    result = controller.opsctl("run", "--host", "web-1", "--host", "db-1", "--", "echo", "hi")
    assert "success on 2 hosts" in result.stdout

    # --actor, --action and --since together.
    runs = audit(controller, "--actor", "operator:admin", "--action", "command.run", "--since", "1h")
    assert len(runs) == 1 and runs[0]["outcome"] == "ok" and runs[0]["target"].startswith("cmd-")
    command_id, run_event = runs[0]["target"], int(runs[0]["id"])
    assert audit(controller, "--actor", "operator:bob", "--action", "command.run") == []
    assert audit(controller, "--action", "command.run", "--until", "1h") == []  # nothing older than an hour
    assert audit(controller, "--action", "command.run", "--since", "2000-01-01T00:00:00Z") == runs

    # --host by name or id: the host's own events and the command that ran on it, not the other host's.
    about_web = audit(controller, "--host", "web-1", "--reads")
    by_id = audit(controller, "--host", web.host_id, "--reads")
    # (the first listing is an event about web-1 itself now)
    assert [e for e in by_id if e["action"] != "audit.list"] == [e for e in about_web if e["action"] != "audit.list"]
    assert by_id[-1]["action"] == "audit.list" and by_id[-1]["target"] == "web-1"
    actions = {e["action"] for e in about_web}
    assert {"host.register", "hosts.tag", "command.run"} <= actions, actions
    assert "hosts.show" not in actions
    assert all(e["target"] != db.host_id for e in about_web)
    assert {"hosts.show", "command.run"} <= {e["action"] for e in audit(controller, "--host", "db-1", "--reads")}
    # Without --reads the reads are left out, unless asked for by action.
    assert "hosts.show" not in {e["action"] for e in audit(controller, "--host", "db-1")}
    assert [e["action"] for e in audit(controller, "--action", "hosts.show")] == ["hosts.show"]
    missing = controller.opsctl("audit", "list", "--host", "nope", check=False)
    assert missing.returncode == 3 and "no such host: nope" in missing.stderr

    # Paging backwards.
    newest = audit(controller, "--limit", "2", "--reads")
    older = audit(controller, "--limit", "2", "--before", newest[0]["id"], "--reads")
    assert [int(e["id"]) for e in older] == [int(newest[0]["id"]) - 2, int(newest[0]["id"]) - 1]

    # show: a command event with its per-host results.
    text = controller.opsctl("audit", "show", str(run_event)).stdout
    assert "command.run" in text and command_id in text
    assert "HOST   STATE    EXIT  REASON" in text
    lines = {line.split()[0]: line.split() for line in text.splitlines() if line.startswith(("web-1", "db-1"))}
    assert lines["web-1"][1:3] == ["success", "0"] and lines["db-1"][1:3] == ["success", "0"]
    shown = controller.opsctl_json("audit", "show", str(run_event))
    assert shown["event"]["id"] == str(run_event)
    assert sorted(i["host_name"] for i in shown["command"]["invocations"]) == ["db-1", "web-1"]
    gone = controller.opsctl("audit", "show", "999999", check=False)
    assert gone.returncode == 3 and "no audit event 999999" in gone.stderr

    # show: a session event with its transcript.
    if sys.platform != "win32":
        run_session(controller, "web-1", "echo hello-from-session")
        start = audit(controller, "--action", "session.start", "--host", "web-1")
        assert len(start) == 1
        session_id = start[0]["target"]
        wait_until(
            lambda: controller.opsctl_json("session", "show", session_id)["transcript_state"] == "stored",
            30,
            "the stored transcript",
        )
        text = controller.opsctl("audit", "show", start[0]["id"]).stdout
        assert f"session            {session_id}" in text and "web-1" in text
        assert f"opsctl session play {session_id}" in text
        doc = controller.opsctl_json("audit", "show", start[0]["id"])
        assert doc["session"]["transcript_sha256"] and doc["session"]["transcript_key"]
        assert doc["session"]["operator"] == "operator:admin"

    # export, then verify the copy from the object store alone.
    exported = controller.opsctl("audit", "export")
    assert exported.returncode == 0
    last = controller.opsctl_json("audit", "export")  # nothing new but the first export's own event
    assert int(last["last_event_id"]) > run_event and len(last["last_hash"]) == 64
    verified = verify_export(controller)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "audit export intact" in verified.stdout
    assert int(verified.stdout.split("intact: ")[1].split()[0]) == int(last["last_event_id"])
    chunks = sorted((controller.state_dir / "objects" / "audit").iterdir())
    assert chunks and chunks[0].name.startswith("000000000001-")
    # The audit calls themselves are audited (the review is reviewable).
    reviewed = {e["action"] for e in audit(controller, "--since", "1h", "--reads")}
    assert {"audit.list", "audit.show", "audit.export"} <= reviewed


def test_an_edited_row_is_named_and_the_export_verifies_alone(controller: Controller) -> None:
    controller.opsctl("whoami")
    controller.opsctl("hosts", "list", "--all")
    target = int(audit(controller, "--action", "hosts.list")[-1]["id"])
    controller.opsctl("activation", "list")
    assert "audit chain intact" in controller.opsctl("audit", "verify").stdout
    controller.opsctl("audit", "export")
    assert verify_export(controller).returncode == 0

    edit_row(controller, target, {"tampered": True})
    broken = controller.opsctl("audit", "verify", check=False)
    assert broken.returncode == 1
    assert f"audit chain BROKEN at event {target}:" in broken.stdout and "edited" in broken.stdout
    # The store's copy does not depend on the database: it still verifies...
    assert verify_export(controller).returncode == 0

    # ...and an edit there is named too, from the store alone.
    chunk = next(
        p
        for p in sorted((controller.state_dir / "objects" / "audit").iterdir())
        if int(p.name[:12]) <= target <= int(p.name[13:25])
    )
    lines = chunk.read_text().splitlines()
    for i, line in enumerate(lines[1:], start=1):
        doc = json.loads(line)
        if doc["id"] == target:
            doc["details"] = {"tampered": True}
            lines[i] = json.dumps(doc)
    chunk.write_text("\n".join(lines) + "\n")
    result = verify_export(controller)
    assert result.returncode == 1
    assert f"audit export BROKEN at event {target}:" in result.stdout and "edited" in result.stdout


def test_verify_export_of_an_empty_store_fails(tmp_path: Path) -> None:
    result = run([PYTHON, "-m", "fleetops.controller", "audit", "verify-export", "--state-dir", str(tmp_path)])
    assert result.returncode == 1 and "no exported audit chunks" in result.stdout


DB_ONLY = """
name: db-ops
description: run commands on database hosts
allow:
  - actions: [command.run, hosts.read]
    hosts: "role=db"
    logins: [root]
"""


def test_a_refused_run_is_found_by_host_and_bare_actor_and_says_what_was_tried(
    make_controller: Callable[..., Controller], make_agent: Callable[[str], Agent], tmp_path: Path
) -> None:
    # Host certificates renew every few seconds, so the host itself acts (host.certificate.renew).
    controller = make_controller("c", extra_args=["--host-cert-lifetime", "6s"])
    controller.start()
    agents = {}
    for name, tags in {"web-1": {"role": "web"}, "db-1": {"role": "db"}}.items():
        activation_id, code = controller.create_activation("--limit", "1", tags=tags)
        agents[name] = make_agent(name)
        agents[name].register(controller, activation_id, code)
        agents[name].start()
    role = tmp_path / "db-ops.yaml"
    role.write_text(DB_ONLY)
    controller.opsctl("admin", "role", "create", "db-ops", "--file", str(role))
    token = controller.opsctl_json("admin", "user", "create", "alice", "--role", "db-ops")["token"]
    alice = tmp_path / "alice.json"
    controller.opsctl(
        "login", "--controller", controller.address, "--enroll-port", str(controller.ports["enroll"]),
        "--token", token, profile=alice,
    )  # fmt: skip

    # alice tries web-1 (outside her role) with a secret in the environment, and reads the host list.
    refused = controller.opsctl(
        "run", "--host", "web-1", "--env", "API_TOKEN=hunter2", "--", "sh", "-c", "uptime; id",
        profile=alice, check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    controller.opsctl("hosts", "list", profile=alice)
    # An allowed run on a selector: found by the host it resolved to.
    controller.opsctl("run", "--target", "role=db", "--", "true")

    # README's example, as typed: a bare operator name.
    text = controller.opsctl(
        "audit", "list", "--since", "2h", "--actor", "alice", "--host", "web-1", "--outcome", "denied"
    )
    lines = [line for line in text.stdout.splitlines() if "command.run" in line]
    assert len(lines) == 1, text.stdout
    assert "operator:alice" in lines[0] and "denied" in lines[0]
    assert "argv=sh -c 'uptime; id'" in lines[0] and "env=API_TOKEN" in lines[0], lines[0]
    assert "hosts=web-1" in lines[0] and "; denied: " in lines[0]
    assert "hunter2" not in text.stdout and "{'" not in text.stdout  # no values, no dict repr

    # -o json keeps the details an object; the environment's values never reach the log.
    mine = audit(controller, "--actor", "alice")
    assert mine == audit(controller, "--actor", "operator:alice")
    (run,) = [e for e in mine if e["action"] == "command.run"]
    assert run["outcome"] == "denied"
    details = run["details"]
    assert details["argv"] == ["sh", "-c", "uptime; id"] and details["env"] == ["API_TOKEN"]
    assert details["hosts"] == ["web-1"] and "run_as" not in details
    assert "web-1" in details["authz"][0]["denied_hosts"]
    assert "hunter2" not in json.dumps(mine)
    # Found by --host web-1 (the refusal named it) but not by --host db-1.
    assert run["id"] in {e["id"] for e in audit(controller, "--host", "web-1")}
    about_db = audit(controller, "--host", "db-1")
    assert run["id"] not in {e["id"] for e in about_db}
    (db_run,) = [e for e in about_db if e["action"] == "command.run"]
    assert db_run["details"]["selector"] == "role=db" and db_run["details"]["hosts"] == ["db-1"]

    # alice's read is recorded, but shown only with --reads.
    assert "hosts.list" not in {e["action"] for e in mine}
    reads = [e for e in audit(controller, "--actor", "alice", "--reads") if e["action"] == "hosts.list"]
    assert len(reads) == 1 and reads[0]["outcome"] == "ok"
    empty = controller.opsctl("audit", "list", "--actor", "nobody-at-all")
    assert "no events match (reads are left out: add --reads to include them)" in empty.stdout

    # A bare host name matches what the host itself did.
    web = agents["web-1"]
    assert web.process is not None
    web.process.wait_for_line(r"certificate renewed", timeout=20)
    by_host = wait_until(
        lambda: [e for e in audit(controller, "--actor", "web-1") if e["action"] == "host.certificate.renew"],
        20,
        "web-1's renewal in the audit log",
    )
    assert {e["actor"] for e in by_host} == {f"host:{web.host_id}"}

    # The chain still verifies with the new details, and audit verify has -o json.
    verified = controller.opsctl_json("audit", "verify")
    assert verified["ok"] is True and int(verified["events_checked"]) > 10
