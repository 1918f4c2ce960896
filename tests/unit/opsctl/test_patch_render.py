"""``opsctl patch``'s text output (opsctl/patch_render.py) where the command tests do not reach."""

from __future__ import annotations

import io
import json

from fleetops.opsctl import patch_render
from fleetops.v1 import operator_pb2 as pb


def test_groups_are_listed_by_priority_with_100_for_none() -> None:
    out = io.StringIO()
    groups = [
        pb.PatchGroup(name="b", baseline="x", selector="env=prod"),
        pb.PatchGroup(name="a", baseline="y", selector="role=web", priority=5),
    ]
    patch_render.print_groups(groups, out)
    rows = [line.split() for line in out.getvalue().splitlines()[1:]]
    assert rows == [["a", "5", "y", "role=web"], ["b", "100", "x", "env=prod"]]


def test_empty_lists_say_so() -> None:
    out = io.StringIO()
    patch_render.print_groups([], out)
    assert out.getvalue().splitlines()[-1] == "(no patch groups: every host uses its OS family's default baseline)"
    out = io.StringIO()
    patch_render.print_baselines([], out)
    assert out.getvalue().splitlines()[-1] == "(no baselines)"


def test_a_saved_baseline_is_described_from_what_was_sent_when_the_reply_is_unreadable() -> None:
    sent = {"name": "prod", "os_family": "linux", "rules": [{}], "approved_patches": ["a", "b"]}
    out = io.StringIO()
    patch_render.print_baseline_saved(
        "created", pb.PatchBaseline(name="prod", document_json="{not json"), "prod", sent, out
    )
    assert out.getvalue() == "created baseline prod (linux, 1 rule, 2 approved, 0 rejected)\n"
    out = io.StringIO()
    stored = json.dumps({"os_family": "windows", "is_default": True})
    patch_render.print_baseline_saved("updated", pb.PatchBaseline(document_json=stored), "prod", sent, out)
    assert out.getvalue() == "updated baseline prod (windows, 0 rules, 0 approved, 0 rejected, default)\n"


def test_baseline_json_has_the_document_parsed() -> None:
    doc = patch_render.baseline_doc(pb.PatchBaseline(name="prod", document_json='{"os_family": "linux"}'))
    assert "document_json" not in doc and doc["document"] == {"os_family": "linux"}
    assert patch_render.baseline_doc(pb.PatchBaseline(name="bad", document_json="[1]"))["document"] is None
