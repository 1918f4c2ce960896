"""Which baseline a host uses: the built-in defaults per OS family and patch groups.

:func:`~fleetops.controller.patching.evaluation.baseline_for_host` picks among them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fleetops.common.baselines import ApprovalRule, Baseline
from fleetops.common.errors import InvalidInput
from fleetops.common.patching import Classification, ComplianceLevel, Severity
from fleetops.common.selectors import Selector

_GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


#: Used for an OS family when no stored baseline is its default. As AWS's predefined baselines
#: (security updates rated critical/important, seven days after release), with compliance levels set.
BUILTIN_BASELINES: Mapping[str, Baseline] = {
    "linux": Baseline(
        name="fleetops-default-linux",
        os_family="linux",
        description="Security updates rated critical or important, and bug fixes, 7 days after release.",
        rules=(
            ApprovalRule(
                classifications=frozenset({Classification.SECURITY}),
                severities=frozenset({Severity.CRITICAL, Severity.IMPORTANT}),
                approve_after_days=7,
                compliance_level=ComplianceLevel.HIGH,
            ),
            ApprovalRule(
                classifications=frozenset({Classification.BUGFIX}),
                approve_after_days=7,
                compliance_level=ComplianceLevel.MEDIUM,
            ),
        ),
        is_default=True,
    ),
    "windows": Baseline(
        name="fleetops-default-windows",
        os_family="windows",
        description="Security updates rated critical or important, 7 days after release.",
        rules=(
            ApprovalRule(
                classifications=frozenset({Classification.SECURITY}),
                severities=frozenset({Severity.CRITICAL, Severity.IMPORTANT}),
                approve_after_days=7,
                compliance_level=ComplianceLevel.HIGH,
            ),
        ),
        is_default=True,
    ),
    "darwin": Baseline(
        name="fleetops-default-darwin",
        os_family="darwin",
        description="Security updates, 7 days after release.",
        rules=(
            ApprovalRule(
                classifications=frozenset({Classification.SECURITY}),
                approve_after_days=7,
                compliance_level=ComplianceLevel.HIGH,
            ),
        ),
        is_default=True,
    ),
}


@dataclass(frozen=True)
class BaselineAssignment:
    """A patch group: hosts whose tags match ``selector`` use ``baseline`` (for its OS family).

    Where several assignments match a host, the lowest ``priority`` wins (see
    :func:`~fleetops.controller.patching.evaluation.baseline_for_host`).
    """

    patch_group: str
    selector: Selector
    baseline: Baseline
    priority: int = 100

    def __post_init__(self) -> None:
        if not isinstance(self.patch_group, str) or not _GROUP_NAME.fullmatch(self.patch_group):
            raise InvalidInput(
                f"bad patch group name {self.patch_group!r}", "use letters, digits, '.', '_' or '-', e.g. web-prod"
            )
        if isinstance(self.selector, str):
            object.__setattr__(self, "selector", Selector.parse(self.selector))
        if facts := self.selector.fact_keys:  # like AWS's Patch Group tag: set by operators, never by hosts
            raise InvalidInput(
                f"patch group {self.patch_group!r} selects by {', '.join(facts)}, which hosts report themselves; "
                "a patch group selects operator-set tags only",
                "the baseline's OS family already picks hosts by the OS they report; to split a family (by version, "
                "say), tag the hosts (opsctl hosts tag HOST os-version=12) and select the tag",
            )
        if isinstance(self.priority, bool) or not isinstance(self.priority, int) or self.priority < 0:
            raise InvalidInput(
                f"bad priority {self.priority!r} for patch group {self.patch_group!r}",
                "priority is a whole number >= 0; the lowest matching one wins",
            )

    @property
    def os_family(self) -> str:
        return self.baseline.os_family


def check_assignments(assignments: Iterable[BaselineAssignment]) -> None:
    """Refuse a patch group registered twice for one OS family, or two groups of one family at one priority.

    AWS: a patch group is registered with at most one baseline per OS. Unique priorities make
    :func:`~fleetops.controller.patching.evaluation.baseline_for_host` never have to guess.
    """
    groups: dict[tuple[str, str], BaselineAssignment] = {}
    priorities: dict[tuple[str, int], BaselineAssignment] = {}
    for a in assignments:
        if (clash := groups.get((a.os_family, a.patch_group))) is not None:
            raise InvalidInput(
                f"patch group {a.patch_group!r} is registered twice for {a.os_family} "
                f"(baselines {clash.baseline.name!r} and {a.baseline.name!r})",
                "a patch group has one baseline per OS family; deregister the other first",
            )
        if (clash := priorities.get((a.os_family, a.priority))) is not None:
            raise InvalidInput(
                f"patch groups {clash.patch_group!r} and {a.patch_group!r} both have priority {a.priority} "
                f"for {a.os_family}",
                "give each patch group of an OS family its own priority (the lowest matching one wins)",
            )
        groups[(a.os_family, a.patch_group)] = a
        priorities[(a.os_family, a.priority)] = a
