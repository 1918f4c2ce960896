"""opsctl audit: details as words in the table, as an object in -o json, the same -o everywhere."""

from __future__ import annotations

import argparse
import json

from fleetops.opsctl import audit
from fleetops.v1 import operator_pb2


def test_a_refused_run_reads_as_what_was_tried_and_why() -> None:
    details = {
        "argv": ["sh", "-c", "uptime; df -h"],
        "selector": "env=prod",
        "run_as": "root",
        "env": ["API_TOKEN"],
        "roles": ["dev"],
        "authz": [{"allowed": False, "denied_hosts": ["web-1"]}],
        "error": "alice may not run commands on web-1",
    }
    assert audit.details_text(details, "denied") == (
        "argv=sh -c 'uptime; df -h' target=env=prod run_as=root env=API_TOKEN; "
        "denied: alice may not run commands on web-1"
    )


def test_scripts_hosts_tags_and_failures() -> None:
    script = {"script_sha256": "ab" * 32, "script_bytes": 2048, "hosts": ["a", "b", "c", "d", "e", "f"]}
    assert audit.details_text(script) == "script=sha256:abababababab… (2.0 KiB) hosts=a,b,c,d,e (+1 more)"
    resolved = {"all": True, "hosts": ["a"], "host_count": 40, "argv": ["id"]}
    assert audit.details_text(resolved) == "argv=id target=all hosts=a (+39 more)"
    tag = {"host": "web-1", "set": {"team": "blue green"}, "remove": ["old"]}
    assert audit.details_text(tag) == "host=web-1 set=team='blue green' remove=old"
    assert audit.details_text({"error": "no such host: x"}, "error") == "failed: no such host: x"
    allowed_read = {"roles": ["admin"], "authz": [{"allowed": True, "matched": ["admin/allow[0]"]}]}
    assert audit.details_text(allowed_read) == "allowed by admin/allow[0]"


def test_control_characters_are_escaped_and_the_column_is_cut() -> None:
    assert audit.details_text({"hostname": "evil\x1b[2J"}) == "hostname=evil\\x1b[2J"
    text = audit.details_text({"argv": ["echo", "x" * 500]}, limit=40)
    assert len(text) == 40 and text.endswith("…")


def test_json_keeps_details_structured() -> None:
    event = operator_pb2.AuditEvent(id=7, actor="operator:alice", action="command.run", details_json='{"argv": ["id"]}')
    doc = audit.event_dict(event)
    assert doc["details"] == {"argv": ["id"]} and doc["id"] == "7"
    assert json.loads(doc["details_json"]) == doc["details"]  # kept for older scripts


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_audit_command_takes_o_text_or_json() -> None:
    root = argparse.ArgumentParser()
    audit.register(root.add_subparsers())
    commands = _subcommands(_subcommands(root)["audit"])
    assert set(commands) == {"list", "show", "export", "verify"}
    for name, parser in commands.items():
        (output,) = [a for a in parser._actions if "--output" in a.option_strings]
        assert tuple(output.choices) == ("text", "json") and output.default == "text", name
    args = commands["list"].parse_args(["--actor", "alice", "--reads", "-o", "json"])
    assert (args.actor, args.reads, args.output) == ("alice", True, "json")
    assert commands["list"].parse_args([]).reads is False
