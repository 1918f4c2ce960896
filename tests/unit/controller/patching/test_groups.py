"""Unit tests of patch groups and the built-in baselines (controller/patching/groups.py)."""

from __future__ import annotations

import dataclasses

import pytest

from fleetops.common.baselines import Baseline
from fleetops.common.errors import InvalidInput, SelectorError
from fleetops.controller.patching.groups import BaselineAssignment, check_assignments

from sample_baselines import full_baseline

# -- patch groups -------------------------------------------------------------------------------------


def test_assignment_parses_its_selector() -> None:
    a = BaselineAssignment("web-prod", "env=prod,role in (web,api)", full_baseline(), priority=10)  # type: ignore[arg-type]
    assert a.selector.matches({"env": "prod", "role": "api"})
    assert a.os_family == "linux"
    with pytest.raises(SelectorError):
        BaselineAssignment("web", "env=", full_baseline())  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        BaselineAssignment("web", "env=prod", full_baseline(), priority=-1)  # type: ignore[arg-type]


def test_check_assignments_refuses_a_group_twice_and_shared_priorities() -> None:
    linux = full_baseline()
    other = dataclasses.replace(linux, name="other-linux")
    windows = Baseline(name="win", os_family="windows")
    ok = [
        BaselineAssignment("web", "role=web", linux, 10),  # type: ignore[arg-type]
        BaselineAssignment("web", "role=web", windows, 10),  # type: ignore[arg-type]
        BaselineAssignment("db", "role=db", other, 20),  # type: ignore[arg-type]
    ]
    check_assignments(ok)
    with pytest.raises(InvalidInput) as info:
        check_assignments([*ok, BaselineAssignment("web", "role=web", other, 30)])  # type: ignore[arg-type]
    assert "registered twice for linux" in info.value.message
    with pytest.raises(InvalidInput) as info:
        check_assignments([*ok, BaselineAssignment("cache", "role=cache", other, 20)])  # type: ignore[arg-type]
    assert "both have priority 20" in info.value.message and "own priority" in info.value.hint
