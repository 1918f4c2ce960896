"""The event catalog: every type documented in docs/events.md, patterns checked, the envelope CloudEvents'."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.controller.events.catalog import EVENT_TYPES, check_patterns, cloud_event, type_matches

DOCS = Path(__file__).resolve().parents[4] / "docs" / "events.md"


def test_every_type_is_documented_and_the_docs_name_no_other() -> None:
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", DOCS.read_text(), re.M))
    assert documented == {t.removeprefix("fleetops.") for t in EVENT_TYPES}


def test_patterns_may_leave_out_the_prefix_and_use_stars() -> None:
    assert check_patterns(["command.failed", "fleetops.window.*", "window.*"]) == [
        "fleetops.command.failed",
        "fleetops.window.*",
    ]
    assert type_matches(["fleetops.window.*"], "fleetops.window.execution.failed")
    assert not type_matches(["fleetops.window.*"], "fleetops.command.failed")
    assert type_matches([], "fleetops.command.failed")  # no pattern: every type


@pytest.mark.parametrize("pattern", ["comand.failed", "", "windows.*", "host"])
def test_a_pattern_that_matches_nothing_is_refused(pattern: str) -> None:
    with pytest.raises(InvalidInput, match="matches no event type"):
        check_patterns([pattern])


def test_the_envelope_is_cloudevents_1_0() -> None:
    when = datetime(2026, 12, 6, 3, 0, 12, 345678, tzinfo=UTC)
    doc = cloud_event(event_id="e-1", type="fleetops.host.offline", subject="host/web-1", time=when, data={"a": 1})
    assert doc["specversion"] == "1.0" and doc["time"] == "2026-12-06T03:00:12.345678Z"
    assert {"id", "source", "type", "subject", "datacontenttype", "data"} <= set(doc)
