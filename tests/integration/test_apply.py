"""opsctl apply, diff and export against real controllers (docs/apply.md).

The example set of docs/apply.md is applied as a reader would; then: a second apply changes
nothing, an export applied to a fresh controller reproduces the configuration, one bad object
refuses the whole set, --prune deletes only its own source's objects, and an operator lacking a
right for one object gets the set refused (and audited).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from harness import Controller, create_user, login

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "apply.md"
CHANGES_PENDING = 10


def example_set() -> str:
    """The page's ``# fleet.yaml`` block."""
    for match in re.finditer(r"^```yaml\n(.*?)^```\n", PAGE.read_text(), re.S | re.M):
        if match.group(1).startswith("# fleet.yaml\n"):
            return match.group(1)
    raise AssertionError("docs/apply.md has no # fleet.yaml example")


def test_the_docs_example_applies_once_then_changes_nothing(controller: Controller, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(example_set())
    diff = controller.opsctl("diff", "-f", str(fleet), check=False)
    assert diff.returncode == CHANGES_PENDING, diff.stderr
    assert "+ Role web-ops: create" in diff.stdout and "7 to create" in diff.stdout

    applied = controller.opsctl("apply", "-f", str(fleet)).stdout
    assert "+ MaintenanceWindow sunday-patch: created" in applied and "7 created" in applied
    again = controller.opsctl("apply", "-f", str(fleet)).stdout
    assert again.startswith("no changes"), again
    assert controller.opsctl("diff", "-f", str(fleet), check=False).returncode == 0
    tasks = controller.opsctl_json("window", "show", "sunday-patch")["tasks"]
    assert len(tasks) == 2

    # A field changed: an update naming the field; the unchanged task keeps its id.
    fleet.write_text(
        example_set().replace("cutoff: 1h", "cutoff: 30m").replace("target: env=prod\n", "target: env=staging\n")
    )
    diff = controller.opsctl("diff", "-f", str(fleet), check=False)
    assert diff.returncode == CHANGES_PENDING and 'cutoff: "1h" -> "30m"' in diff.stdout, diff.stdout
    controller.opsctl("apply", "-f", str(fleet))
    after = controller.opsctl_json("window", "show", "sunday-patch")["tasks"]
    assert {t["id"] for t in after} & {t["id"] for t in tasks} and len(after) == 2
    events = controller.opsctl_json("audit", "list", "--action", "window.task.add", "--limit", "10")
    assert events


def test_export_then_apply_reproduces_the_configuration(
    make_controller: Callable[..., Controller], tmp_path: Path
) -> None:
    first = make_controller("first")
    first.start()
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(example_set())
    first.opsctl("apply", "-f", str(fleet))
    exported = first.opsctl("export").stdout
    assert "kind: MaintenanceWindow" in exported
    (tmp_path / "export.yaml").write_text(exported)
    assert first.opsctl("apply", "-f", str(tmp_path / "export.yaml")).stdout.startswith("no changes")

    second = make_controller("second")
    second.start()
    second.opsctl("apply", "-f", str(tmp_path / "export.yaml"))
    assert second.opsctl("export").stdout == exported


def test_one_bad_object_refuses_the_whole_set(controller: Controller, tmp_path: Path) -> None:
    before = controller.opsctl("export").stdout  # the seeded default baselines
    bad = example_set().replace("actions: [command.run, hosts.read]", "actions: [command.run, hosts.raed]")
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(bad)
    result = controller.opsctl("apply", "-f", str(fleet), check=False)
    assert result.returncode == 2, result.stderr
    assert f"{fleet}, document 1: Role web-ops" in result.stderr and "allow[0].actions" in result.stderr
    assert "hosts.raed" in result.stderr
    assert controller.opsctl("export").stdout == before

    fleet.write_text(example_set() + "---\nkind: PatchGroup\nname: extra\nspec: {baseline: prod-linux, tagret: x=y}\n")
    result = controller.opsctl("apply", "-f", str(fleet), check=False)
    assert result.returncode == 2 and "document 8: PatchGroup extra" in result.stderr and "tagret" in result.stderr
    assert controller.opsctl("export").stdout == before


def test_prune_deletes_only_what_its_source_applied(controller: Controller, tmp_path: Path) -> None:
    role = "kind: Role\nname: {name}\nspec:\n  allow: [{{actions: [hosts.read]}}]\n"
    (tmp_path / "a.yaml").write_text(role.format(name="from-a") + "---\n" + role.format(name="kept-a"))
    (tmp_path / "b.yaml").write_text(role.format(name="from-b"))
    controller.opsctl("apply", "-f", str(tmp_path / "a.yaml"))
    controller.opsctl("apply", "-f", str(tmp_path / "b.yaml"))
    (tmp_path / "by-hand.yaml").write_text("name: by-hand\nallow: [{actions: [hosts.read]}]\n")
    controller.opsctl("admin", "role", "create", "by-hand", "--file", str(tmp_path / "by-hand.yaml"))

    (tmp_path / "a.yaml").write_text(role.format(name="kept-a"))
    diff = controller.opsctl("diff", "-f", str(tmp_path / "a.yaml"), "--prune", check=False)
    assert diff.returncode == CHANGES_PENDING and "- Role from-a: delete" in diff.stdout, diff.stdout
    assert "by-hand" not in diff.stdout and "from-b" not in diff.stdout
    controller.opsctl("apply", "-f", str(tmp_path / "a.yaml"), "--prune")
    names = {r["name"] for r in controller.opsctl_json("admin", "role", "list")}
    assert {"kept-a", "from-b", "by-hand"} <= names and "from-a" not in names


def test_a_caller_lacking_one_right_changes_nothing(controller: Controller, tmp_path: Path) -> None:
    (tmp_path / "winops.yaml").write_text(
        "name: winops\nallow: [{actions: [window.manage, hosts.read, document.manage]}]\n"
    )
    controller.opsctl("admin", "role", "create", "winops", "--file", str(tmp_path / "winops.yaml"))
    before = controller.opsctl("export").stdout
    profile = tmp_path / "carol"
    login(controller, profile, create_user(controller, "carol", "winops"))
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(example_set())
    result = controller.opsctl("apply", "-f", str(fleet), profile=profile, check=False)
    assert result.returncode != 0 and "carol" in result.stderr, result.stderr
    assert controller.opsctl("export").stdout == before
    denied = controller.opsctl_json("audit", "list", "--action", "config.apply", "--outcome", "denied")
    assert denied
