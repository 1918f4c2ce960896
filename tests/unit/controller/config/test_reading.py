"""Reading, comparing and ordering configuration sets (controller/config, opsctl/config_files)."""

from __future__ import annotations

from typing import Any

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.controller.authz import Decision
from fleetops.controller.config.diff import field_changes
from fleetops.controller.config.interfaces import AuditEntry, Change, Checking, ConfigObject, FieldChange, Spec
from fleetops.controller.config.role import RoleKind
from fleetops.controller.config.service import ConfigService
from fleetops.controller.config.window import WindowKind
from fleetops.opsctl.config_files import objects_of_text


class FakeKind:
    """A kind that only reads specs: enough for the service's reading and ordering."""

    read_action = "admin"

    def __init__(self, kind: str, rank: int) -> None:
        self.kind, self.rank = kind, rank

    def order(self, spec: Spec | None) -> int:
        return self.rank

    def canonical(self, name: str, spec: Any) -> Spec:
        if "bad" in spec:
            raise InvalidInput("bad: not a good field", "remove it")
        return dict(spec)

    async def current(self) -> dict[str, Spec]:
        return {}

    async def check(self, checking: Checking, name: str, after: Spec | None, before: Spec | None) -> list[Decision]:
        return []

    async def apply(self, actor: str, checking: Checking, change: Change) -> list[AuditEntry]:
        return []


def service(*kinds: FakeKind) -> ConfigService:
    return ConfigService(list(kinds), None, None)  # type: ignore[arg-type]  # reading and ordering only


def test_field_changes_name_the_paths() -> None:
    before = {"allow": [{"actions": ["hosts.read"], "hosts": ""}], "description": "a"}
    after = {"allow": [{"actions": ["hosts.read", "command.run"], "hosts": ""}], "deny": []}
    assert field_changes(before, after) == [
        FieldChange("allow[0].actions", ["hosts.read"], ["hosts.read", "command.run"]),
        FieldChange("deny", None, []),
        FieldChange("description", "a", None),
    ]
    assert field_changes(before, before) == []


def test_every_bad_object_is_named_at_once_with_its_file_and_document() -> None:
    svc = service(FakeKind("A", 1))
    objects = [
        ConfigObject("A", "one", {"bad": 1}, "f.yaml, document 1"),
        ConfigObject("A", "two", {}, "f.yaml, document 2"),
        ConfigObject("B", "three", {}, "f.yaml, document 3"),
        ConfigObject("A", "two", {}, "g.yaml, document 1"),
    ]
    with pytest.raises(InvalidInput) as caught:
        svc.read(objects)
    message = caught.value.message
    assert "3 objects are invalid; nothing was applied" in message
    assert "f.yaml, document 1: A one: bad: not a good field" in message
    assert "f.yaml, document 3: unknown kind 'B'" in message
    assert "g.yaml, document 1: A two: given twice (also f.yaml, document 2)" in message


def test_changes_are_ordered_by_rank_and_deletions_in_reverse() -> None:
    svc = service(FakeKind("Late", 9), FakeKind("Early", 1))
    changes = [
        Change("Late", "x", "create", after={}),
        Change("Early", "y", "update", after={}),
        Change("Early", "gone", "delete", before={}),
        Change("Late", "gone", "delete", before={}),
    ]
    ordered = [(c.kind, c.name, c.action) for c in svc._ordered(changes)]
    assert ordered == [
        ("Early", "y", "update"),
        ("Late", "x", "create"),
        ("Late", "gone", "delete"),
        ("Early", "gone", "delete"),
    ]
    assert svc.kinds == ["Early", "Late"]


def test_a_role_spec_is_the_role_document_and_refuses_unknown_fields() -> None:
    kind = RoleKind(None)  # type: ignore[arg-type]
    spec = kind.canonical("web-ops", {"allow": [{"actions": ["hosts.read"], "hosts": "role = web"}]})
    assert spec == {
        "description": "",
        "allow": [{"actions": ["hosts.read"], "hosts": "role=web", "logins": []}],
        "deny": [],
    }
    with pytest.raises(InvalidInput, match="unknown field.*alow"):
        kind.canonical("web-ops", {"alow": []})
    with pytest.raises(InvalidInput, match=r"allow\[0\]\.actions"):
        kind.canonical("web-ops", {"allow": [{"actions": ["comand.run"]}]})


def test_a_window_spec_is_canonical_whatever_the_spelling() -> None:
    kind = WindowKind(None, None)  # type: ignore[arg-type]
    task = {"priority": 1, "type": "run", "target": "role = web", "command": ["uptime"], "timeout": "90m"}
    a = kind.canonical("w", {"schedule": "rate(1 day)", "duration": "2h", "cutoff": "60m", "tasks": [task]})
    respelled = {**task, "timeout": "1h30m", "target": "role=web"}
    b = kind.canonical(
        "w",
        {"schedule": "rate(1 day)", "duration": 7200, "cutoff": "1h", "timezone": "UTC", "enabled": True,
         "tasks": [respelled]},
    )  # fmt: skip
    assert a == b
    assert a["tasks"] == [
        {"priority": 1, "type": "run", "target": "role=web", "command": ["uptime"], "timeout": "1h30m"}
    ]
    with pytest.raises(InvalidInput, match=r"tasks\[0\]: unknown field.*comand"):
        kind.canonical("w", {"schedule": "rate(1 day)", "duration": "2h", "tasks": [{"priority": 1, "comand": []}]})


def test_files_are_objects_of_kind_name_and_spec_with_their_origin() -> None:
    text = "kind: Role\nname: a\nspec: {}\n---\n---\nkind: Document\nname: d\nspec:\n  run: {shell: 'true'}\n"
    objects = objects_of_text(text, "set.yaml")
    assert [(o.kind, o.name, o.origin) for o in objects] == [
        ("Role", "a", "set.yaml, document 1"),
        ("Document", "d", "set.yaml, document 2"),
    ]
    with pytest.raises(InvalidInput, match="set.yaml, document 1: unknown field"):
        objects_of_text("kind: Role\nname: a\nmetadata: {}\n", "set.yaml")
    with pytest.raises(InvalidInput, match="given twice"):
        objects_of_text("kind: Role\nname: a\nname: b\n", "set.yaml")
