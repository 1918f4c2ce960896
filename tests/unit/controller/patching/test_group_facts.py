"""Patch groups select operator-set tags only: a selector naming an inventory fact is refused."""

from __future__ import annotations

import pytest

from fleetops.common.baselines import ApprovalRule, Baseline
from fleetops.common.errors import InvalidInput
from fleetops.controller.patching.evaluation import baseline_for_host
from fleetops.controller.patching.groups import BaselineAssignment

DEB12 = Baseline(name="debian-12", os_family="linux", rules=(ApprovalRule(approve_after_days=7),))


@pytest.mark.parametrize("selector", ["inv.os_version=12", "env=prod,inv.os_name=debian-gnu-linux", "!inv.arch"])
def test_a_patch_group_may_not_select_by_facts(selector: str) -> None:
    with pytest.raises(InvalidInput) as info:
        BaselineAssignment("debian-12", selector, DEB12)
    assert "patch group 'debian-12' selects by inv." in info.value.message
    assert "operator-set tags only" in info.value.message
    assert "opsctl hosts tag" in info.value.hint


def test_a_patch_group_on_tags_picks_its_baseline_and_a_forged_inv_tag_does_not_count() -> None:
    group = BaselineAssignment("debian-12", "os-version=12", DEB12)
    assert baseline_for_host({"os-version": "12"}, "linux", [group]).patch_group == "debian-12"
    assert baseline_for_host({"inv.os_version": "12"}, "linux", [group]).patch_group == ""
