"""Inventory facts in selectors: the fact table, parsing, matching and the reserved tag prefix."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from fleetops.agent.inventory import Disk, Inventory
from fleetops.common.errors import InvalidInput, SelectorError
from fleetops.common.selectors import (
    FACT_PREFIX,
    INVENTORY_FACTS,
    Requirement,
    Selector,
    fact_value,
    inventory_facts,
    parse_tag_assignments,
    validate_tag_key,
    validate_tag_value,
)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "targeting.md"

DEBIAN = Inventory(
    hostname="Web-1",
    os_family="linux",
    os_name="Debian GNU/Linux",
    os_version="12",
    kernel="6.1.0-18-amd64",
    arch="x86_64",
    cpu_count=4,
    memory_bytes=8 << 30,
    disks=(Disk("/", "/dev/sda1", "ext4", 100 << 30),),
    ip_addresses=("10.0.0.5", "fe80::1"),
    boot_time=1_700_000_000.0,
    agent_version="0.1.0",
).to_dict()
DEBIAN_FACTS = inventory_facts(DEBIAN)


def S(text: str) -> Selector:
    return Selector.parse(text)


def test_facts_of_a_reported_inventory_are_lowercase_selector_values() -> None:
    assert DEBIAN_FACTS == {
        "inv.os_family": "linux",
        "inv.os_name": "debian-gnu-linux",
        "inv.os_version": "12",
        "inv.kernel": "6.1.0-18-amd64",
        "inv.arch": "x86_64",
        "inv.cpu_count": "4",
        "inv.hostname": "web-1",
        "inv.agent_version": "0.1.0",
    }
    for key, value in DEBIAN_FACTS.items():  # every fact can be written back as a selector
        assert S(f"{key}={value}").matches({}, DEBIAN_FACTS)


def test_every_fact_comes_from_an_inventory_field_and_is_documented() -> None:
    fields = {f.name for f in dataclasses.fields(Inventory)}
    documented = set(re.findall(r"`(inv\.[a-z_]+)`", DOCS.read_text()))
    for key, fact in INVENTORY_FACTS.items():
        assert key == FACT_PREFIX + fact.name and fact.source in fields
        assert key in documented, f"{key} is missing from docs/targeting.md"
        for example in fact.examples:
            assert fact_value(example) == example  # the examples are values as a selector sees them
    assert documented <= set(INVENTORY_FACTS), "docs/targeting.md names a fact that does not exist"


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("Windows Server 2022 Datacenter", "windows-server-2022-datacenter"),
        ("macOS", "macos"),
        ("  Arch Linux (rolling) ", "arch-linux-rolling"),
        ("-_x_-", "x"),
        ("a" * 200, "a" * 63),
        ("é", None),  # nothing selector-safe is left
        ("", None),
        (0, None),
        (True, None),
        (12, "12"),
        (None, None),
        (["linux"], None),
        (1.5, None),
    ],
)
def test_fact_value(raw: object, value: str | None) -> None:
    assert fact_value(raw) == value


def test_hostile_or_missing_inventory_gives_facts_that_are_absent() -> None:
    assert inventory_facts(None) == {} and inventory_facts("linux") == {}  # type: ignore[arg-type]  # hostile input
    assert inventory_facts({"os_family": "", "cpu_count": 0, "arch": {"x": 1}}) == {}
    hostile = inventory_facts({"os_name": "x" * 100_000 + "!", "kernel": "\x00\n;rm -rf /"})
    assert hostile == {"inv.os_name": "x" * 63, "inv.kernel": "rm-rf"}


MATCH_CASES = [
    ("inv.os_family=linux", True),
    ("inv.os_family=windows", False),
    ("inv.os_family!=windows", True),
    ("inv.os_version in (11,12)", True),
    ("inv.os_version notin (11,12)", False),
    ("inv.arch", True),
    ("!inv.arch", False),
    ("inv.os_family=linux,env=prod", True),
    ("inv.os_family=linux,env=dev", False),
    ("inv.os_family=linux,inv.arch=arm64", False),
]


@pytest.mark.parametrize(("text", "expected"), MATCH_CASES)
def test_facts_and_tags_are_matched_together(text: str, expected: bool) -> None:
    assert S(text).matches({"env": "prod"}, DEBIAN_FACTS) is expected


def test_a_fact_is_never_read_from_tags_nor_a_tag_from_facts() -> None:
    # A legacy or forged tag under inv. does not stand in for a fact, and the facts' keys are no tags.
    assert not S("inv.os_family=linux").matches({"inv.os_family": "linux"})
    assert not S("inv.os_family=linux").matches({"inv.os_family": "linux"}, {})
    assert not S("os_family=linux").matches({}, {"os_family": "linux", "inv.os_family": "linux"})
    # Without facts (an access decision) a fact is absent on every host.
    assert S("!inv.arch").matches({}) and S("inv.arch!=x86").matches({}) and not S("inv.arch").matches({})


def test_an_unreported_fact_is_absent() -> None:
    rolling = inventory_facts({**DEBIAN, "os_version": ""})
    assert "inv.os_version" not in rolling
    assert S("!inv.os_version").matches({}, rolling) and not S("inv.os_version").matches({}, rolling)


def test_fact_selectors_round_trip_and_keep_their_requirements() -> None:
    selector = S(" inv.os_version in (12, 11) , env = prod , !inv.cpu_count ")
    assert str(selector) == "inv.os_version in (11,12),env=prod,!inv.cpu_count"
    assert S(str(selector)) == selector
    assert selector.requirements[0] == Requirement("inv.os_version", "in", ("11", "12"))
    assert selector.fact_keys == ("inv.os_version", "inv.cpu_count")
    assert [r.is_fact for r in selector.requirements] == [True, False, True]


def test_without_facts_is_the_wider_selector_of_the_tags_alone() -> None:
    assert S("inv.os_family=linux,env=prod,inv.arch=x86").without_facts() == S("env=prod")
    assert S("inv.os_family=linux").without_facts() is None  # nothing left: every host
    tags_only = S("env=prod")
    assert tags_only.without_facts() is tags_only and tags_only.fact_keys == ()


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("inv.os=linux", "unknown inventory fact 'inv.os'", 1),
        ("env=prod, !inv.osfamily", "unknown inventory fact 'inv.osfamily'", 12),
        ("INV.os_family=linux", "unknown inventory fact 'INV.os_family'", 1),  # the prefix is lowercase only
        ("Inv.arch in (x86)", "unknown inventory fact 'Inv.arch'", 1),
        ("inv.os_family=Linux", "inventory fact values are lowercase: write 'linux'", 15),
        ("inv.arch in (x86_64,ARM64)", "inventory fact values are lowercase: write 'arm64'", 21),
        ("inv.os_name notin (debian-GNU-linux)", "write 'debian-gnu-linux'", 27),
    ],
)
def test_bad_fact_selectors_are_errors_that_name_the_known_facts(text: str, message: str, column: int) -> None:
    with pytest.raises(SelectorError) as info:
        S(text)
    assert message in info.value.message
    assert info.value.position == column - 1
    assert all(key in info.value.hint for key in INVENTORY_FACTS)


def test_tag_values_stay_case_sensitive_and_keys_like_the_prefix_stay_tags() -> None:
    assert S("env=Prod").matches({"env": "Prod"})
    assert S("inv=x,invoice.id=7,x.inv.y").matches({"inv": "x", "invoice.id": "7", "x.inv.y": "1"})
    for key in ("inv", "invoice.id", "x.inv.y"):
        validate_tag_key(key)


@pytest.mark.parametrize("key", ["inv.os_family", "inv.anything", "INV.os", "Inv.team/x"])
def test_no_tag_may_use_the_reserved_prefix(key: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_tag_key(key)
    assert "is reserved" in info.value.message and "inventory facts" in info.value.hint
    with pytest.raises(InvalidInput, match="is reserved"):
        parse_tag_assignments([f"{key}=linux"])
    with pytest.raises(InvalidInput, match="is reserved"):
        parse_tag_assignments([f"{key}-"])
    validate_tag_value("inv.x")  # a value is no key: it may say anything
