"""The pure decisions of an automation execution (controller/automation/plan.py): batch sizes,
template rendering (single-pass), conditions, branches and the next step."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from fleetops.common.errors import InvalidInput
from fleetops.common.runbooks import Condition, RunStep, Step, parse_condition, parse_steps
from fleetops.controller.automation.plan import (
    Outcome,
    batch_sizes,
    branch_target,
    evaluate,
    index_of,
    next_step,
    render,
    render_parameters,
    render_value,
    resolve,
)

CONTEXT: dict[str, Any] = {
    "params": {"version": "1.4.2", "target": "role=web", "hosts": ["web-1", "web-2"], "dry": True, "count": 3},
    "steps": {
        "deploy": {
            "status": "failed",
            "succeeded": 9,
            "failed": 1,
            "hosts": ["web-1", "web-2"],
            "stdout": "ok\n",
        },
        "sign-off": {"status": "success", "approved_by": ["alice"]},
    },
}


def steps_of(text: str, params: frozenset[str] = frozenset({"env"})) -> tuple[Step, ...]:
    return parse_steps(yaml.safe_load(text), params)


FLOW = steps_of(
    """
- name: deploy
  run: {document: deploy-web, target: role=web}
  on_failure: rollback
- name: soak
  wait: {duration: 5m}
  on_failure: continue
- name: check
  wait: {duration: 1m}
  on_failure: continue
  next: finish
- name: decide
  branch:
    cases:
      - {when: "steps.deploy.failed > 0", goto: rollback}
      - {when: "steps.deploy.status == success", goto: end}
    default: abort
- name: plain
  branch:
    cases: [{when: "params.env == prod", goto: rollback}]
- name: rollback
  run: {document: deploy-web, target: role=web}
  next: abort
- name: finish
  wait: {duration: 1s}
"""
)


# ------------------------------------------------------------------------------------- batch sizes


@pytest.mark.parametrize(
    ("batches", "total", "sizes"),
    [
        ([1, "10%", "100%"], 30, [1, 2, 27]),
        ([1, "10%", "100%"], 1, [1]),
        ([1, "10%", "100%"], 2, [1, 1]),
        ([1, "10%", "100%"], 10, [1, 9]),
        ([1, "10%", "100%"], 11, [1, 1, 9]),
        (["100%"], 0, []),
        ([1, 5, "100%"], 0, []),
        (["100%"], 7, [7]),
        (["1%", "100%"], 3, [1, 2]),
        (["1%", "100%"], 1000, [10, 990]),
        (["33%", "66%", "100%"], 10, [4, 3, 3]),
        ([5, 10, "100%"], 3, [3]),
        ([5, 10, "100%"], 7, [5, 2]),
        ([2, 10, "100%"], 10, [2, 8]),
        (["50%", 10, "100%"], 4, [2, 2]),
        (["50%", 10, "100%"], 100, [50, 50]),
        (["10%", 5, "100%"], 100, [10, 90]),
        ([1, "10%"], 30, [1, 2, 27]),
        ([1], 5, [1, 4]),
        (["5", " 20 % ", "100%"], 100, [5, 15, 80]),
        ([], 4, [4]),
        (["100%"], -3, []),
    ],
)
def test_batch_sizes(batches: list[int | str], total: int, sizes: list[int]) -> None:
    assert batch_sizes(batches, total) == sizes


@pytest.mark.parametrize(
    "batches",
    [["100%"], [1, "100%"], [1, "10%", "100%"], ["1%", "2%", "50%", "100%"], [3, 7, "25%", 40, "100%"], [10, 20]],
)
def test_batch_sizes_cover_every_host_once(batches: list[int | str]) -> None:
    for total in range(0, 260):
        sizes = batch_sizes(batches, total)
        assert sum(sizes) == total, (batches, total, sizes)
        assert all(size > 0 for size in sizes), (batches, total, sizes)
        assert len(sizes) <= len(batches) + 1


@pytest.mark.parametrize("spec", ["ten", "10 percent", "-1", True, 1.5, "1e3"])
def test_bad_batch_sizes(spec: Any) -> None:
    with pytest.raises(InvalidInput, match="bad batch size"):
        batch_sizes([spec, "100%"], 10)


# ------------------------------------------------------------------------------------- rendering


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("{{ params.version }}", "1.4.2"),
        ("v{{params.version}}!", "v1.4.2!"),
        ("{{   params.version\t}}", "1.4.2"),
        ("{{ params.target }},env=prod", "role=web,env=prod"),
        ("{{ params.hosts }}", "web-1,web-2"),
        ("{{ params.dry }}", "true"),
        ("{{ params.count }}", "3"),
        ("{{ steps.deploy.failed }}/{{ steps.deploy.succeeded }}", "1/9"),
        ("{{ steps.sign-off.approved_by }}", "alice"),
        ("{{ steps.deploy.stdout }}", "ok\n"),
        ("no templates at all", "no templates at all"),
        ("", ""),
        ("a } b }} c {", "a } b }} c {"),
    ],
)
def test_render(text: str, rendered: str) -> None:
    assert render(text, CONTEXT) == rendered


def test_rendering_is_single_pass() -> None:
    context = {"params": {"evil": "{{ params.secret }}", "secret": "s3cret", "brace": "{{", "end": "}}"}}
    assert render("x={{ params.evil }}", context) == "x={{ params.secret }}"
    assert render("{{ params.brace }} params.secret {{ params.end }}", context) == "{{ params.secret }}"
    assert render_value(["{{ params.evil }}", {"k": "{{ params.evil }}"}], context) == [
        "{{ params.secret }}",
        {"k": "{{ params.secret }}"},
    ]


def test_values_are_inserted_verbatim() -> None:
    context = {"params": {"x": "a; rm -rf / $(id) `id` 'q' \"qq\"\n"}}
    assert render("echo {{ params.x }}", context) == "echo a; rm -rf / $(id) `id` 'q' \"qq\"\n"


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("{{ params.nope }}", ["params.nope has no value"]),
        ("{{ steps.later.status }}", ["steps.later.status has no value: step later has not run in this execution"]),
        ("{{ steps.deploy.commands }}", ["steps.deploy.commands has no value: step deploy left no commands"]),
        ("{{ env.HOME }}", ["unknown reference 'env.HOME'"]),
        ("{{ }}", ["empty template"]),
        ("ok {{ params.version", ["unclosed template"]),
    ],
)
def test_render_refusals(text: str, fragments: list[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        render(text, CONTEXT)
    for fragment in fragments:
        assert fragment in caught.value.message
    assert caught.value.hint


def test_a_none_value_or_a_missing_part_of_the_context_is_no_value() -> None:
    with pytest.raises(InvalidInput, match="params.version has no value"):
        render("{{ params.version }}", {"params": {"version": None}})
    with pytest.raises(InvalidInput, match="params.version has no value"):
        render("{{ params.version }}", {})
    with pytest.raises(InvalidInput, match="step deploy has not run"):
        render("{{ steps.deploy.status }}", {"params": {}})


def test_render_value_keeps_shapes_and_non_text() -> None:
    value = {"a": ["{{ params.version }}", 3, True], "b": ("{{ params.count }}",), "c": None, "d": 2}
    assert render_value(value, CONTEXT) == {"a": ["1.4.2", 3, True], "b": ("3",), "c": None, "d": 2}
    assert render_value(7, CONTEXT) == 7
    assert render_value(False, CONTEXT) is False


def test_render_parameters_of_a_step() -> None:
    (step,) = steps_of(
        """
- name: a
  run:
    document: d
    target: x
    parameters: {version: "{{ params.env }}", n: 2, items: ["{{ params.env }}", b], "on": true}
"""
    )
    assert isinstance(step.action, RunStep)
    rendered = render_parameters(step.action.parameters, {"params": {"env": "prod"}})
    assert rendered == {"version": "prod", "n": 2, "items": ("prod", "b"), "on": True}


def test_resolve_returns_the_value_itself() -> None:
    assert resolve("params.hosts", CONTEXT) == ["web-1", "web-2"]
    assert resolve("steps.deploy.failed", CONTEXT) == 1


# ------------------------------------------------------------------------------------- conditions


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("steps.deploy.failed > 0", True),
        ("steps.deploy.failed >= 1", True),
        ("steps.deploy.failed < 1", False),
        ("steps.deploy.failed <= 0", False),
        ("steps.deploy.failed == 1", True),
        ("steps.deploy.failed == 01", True),
        ("steps.deploy.failed == '1'", True),
        ("steps.deploy.failed != 1", False),
        ("steps.deploy.succeeded > 10", False),
        ("steps.deploy.succeeded > -10", True),
        ("steps.deploy.succeeded < 10", True),
        ("steps.deploy.status == failed", True),
        ("steps.deploy.status == 'failed'", True),
        ("steps.deploy.status != success", True),
        ("steps.deploy.status == Failed", False),
        ("steps.deploy.stdout == ok", True),
        ("steps.deploy.hosts == web-1,web-2", True),
        ("params.dry == true", True),
        ("params.version == 1.4.2", True),
        ("params.version != '1.4.2 '", True),
    ],
)
def test_evaluate(text: str, holds: bool) -> None:
    assert evaluate(parse_condition(text), CONTEXT) is holds


def test_numbers_compare_as_numbers_not_text() -> None:
    context = {"params": {"n": "10"}}
    assert evaluate(Condition("params.n", ">", "9"), context) is True  # as text, "10" < "9"
    assert evaluate(Condition("params.n", "==", "+10"), context) is True
    assert evaluate(Condition("params.n", "==", "10.0"), context) is False  # not a whole number: text


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
def test_text_only_compares_for_equality(op: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        evaluate(Condition("steps.deploy.status", op, "a"), CONTEXT)
    assert f"cannot evaluate steps.deploy.status {op} a" in caught.value.message
    assert "'failed'" in caught.value.message
    assert "== and !=" in caught.value.hint
    with pytest.raises(InvalidInput, match="compares numbers only"):
        evaluate(Condition("steps.deploy.failed", op, "many"), CONTEXT)


def test_evaluating_a_missing_reference_is_an_error() -> None:
    with pytest.raises(InvalidInput, match="steps.soak.status has no value"):
        evaluate(Condition("steps.soak.status", "==", "success"), CONTEXT)


def test_an_unknown_operator_is_an_error() -> None:
    with pytest.raises(InvalidInput, match="unknown operator"):
        evaluate(Condition("params.version", "=~", "1"), CONTEXT)


# ------------------------------------------------------------------------------------- branches


def test_branch_target_first_case_that_holds() -> None:
    decide = FLOW[index_of(FLOW, "decide")]
    assert branch_target(decide, CONTEXT) == "rollback"
    passed = {"steps": {"deploy": {"status": "success", "failed": 0}}}
    assert branch_target(decide, passed) == "end"


def test_branch_target_default_or_none() -> None:
    decide = FLOW[index_of(FLOW, "decide")]
    assert branch_target(decide, {"steps": {"deploy": {"status": "failed", "failed": 0}}}) == "abort"
    plain = FLOW[index_of(FLOW, "plain")]
    assert branch_target(plain, {"params": {"env": "prod"}}) == "rollback"
    assert branch_target(plain, {"params": {"env": "dev"}}) is None
    # without a default a branch goes on like a step that succeeded
    assert next_step(FLOW, index_of(FLOW, "plain"), "success") == "rollback"


def test_branch_target_errors() -> None:
    with pytest.raises(ValueError, match="not a branch"):
        branch_target(FLOW[0], CONTEXT)
    decide = FLOW[index_of(FLOW, "decide")]
    with pytest.raises(InvalidInput, match="has no value"):
        branch_target(decide, {"params": {}})
    # an evaluation error fails the branch step: on_failure decides (abort by default)
    assert next_step(FLOW, index_of(FLOW, "decide"), "failed") == "abort"


# ------------------------------------------------------------------------------------- next step


@pytest.mark.parametrize(
    ("name", "outcome", "target"),
    [
        ("deploy", "success", "soak"),
        ("deploy", "failed", "rollback"),
        ("soak", "success", "check"),
        ("soak", "failed", "check"),  # continue: as on success
        ("check", "success", "finish"),  # next
        ("check", "failed", "finish"),  # continue follows next too
        ("plain", "failed", "abort"),
        ("rollback", "success", "abort"),  # next: abort
        ("rollback", "failed", "abort"),
        ("finish", "success", "end"),  # the last step
        ("finish", "failed", "abort"),
    ],
)
def test_next_step(name: str, outcome: Outcome, target: str) -> None:
    assert next_step(FLOW, index_of(FLOW, name), outcome) == target


def test_next_step_of_a_single_step() -> None:
    steps = steps_of("- {name: only, wait: {duration: 1s}, on_failure: continue}")
    assert next_step(steps, 0, "success") == "end"
    assert next_step(steps, 0, "failed") == "end"


def test_next_step_refuses_an_unknown_outcome() -> None:
    with pytest.raises(ValueError, match="unknown outcome"):
        next_step(FLOW, 0, "skipped")  # type: ignore[arg-type]  # what the Literal forbids


def test_index_of() -> None:
    assert index_of(FLOW, "deploy") == 0
    assert index_of(FLOW, "finish") == len(FLOW) - 1
    with pytest.raises(ValueError, match="finishes the execution"):
        index_of(FLOW, "end")
    with pytest.raises(ValueError, match="no step is named 'nope'"):
        index_of(FLOW, "nope")
