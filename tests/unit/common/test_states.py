"""The shared state words: which are final, which count as errors, and that the wire and opsctl agree."""

from __future__ import annotations

from fleetops.common.states import FINAL_STATE_NAMES, FINAL_STATES, InvocationState
from fleetops.opsctl import run_output
from fleetops.v1 import operator_pb2


def test_failed_and_timed_out_count_as_errors_undeliverable_does_not() -> None:
    assert InvocationState.FAILED.counts_as_error and InvocationState.TIMED_OUT.counts_as_error
    assert not InvocationState.UNDELIVERABLE.counts_as_error and not InvocationState.CANCELLED.counts_as_error
    assert {s for s in InvocationState if s.counts_as_error} <= FINAL_STATES


def test_final_states() -> None:
    assert (
        {s for s in InvocationState if s.final}
        == FINAL_STATES
        == {
            InvocationState.SUCCESS,
            InvocationState.FAILED,
            InvocationState.TIMED_OUT,
            InvocationState.CANCELLED,
            InvocationState.UNDELIVERABLE,
            InvocationState.NOT_STARTED,
        }
    )
    assert set(FINAL_STATE_NAMES) == {s.value for s in FINAL_STATES}


def test_every_invocation_state_has_its_wire_value_and_opsctl_word() -> None:
    wire = {v.name.removeprefix("INVOCATION_STATE_").lower() for v in operator_pb2.InvocationState.DESCRIPTOR.values}
    assert {s.value for s in InvocationState} == wire - {"unspecified"}
    assert set(run_output.STATE.values()) - {"unspecified"} == {s.value for s in InvocationState}
    assert run_output.FINAL == set(FINAL_STATE_NAMES)
