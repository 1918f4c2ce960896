"""What a command spec accepts (rates: tests/unit/common/test_rates.py, states: test_states.py)."""

from __future__ import annotations

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.controller.commands.models import CommandSpec


def test_spec_needs_exactly_one_of_command_and_script() -> None:
    with pytest.raises(InvalidInput):
        CommandSpec().validate()
    with pytest.raises(InvalidInput):
        CommandSpec(argv=("true",), script=b"true").validate()
    CommandSpec(argv=("true",)).validate()
    with pytest.raises(InvalidInput, match="environment"):
        CommandSpec(argv=("true",), env={"A=B": "x"}).validate()
