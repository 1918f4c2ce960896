"""The pure decisions of an automation execution: batch sizes, templates, conditions, the next step.

Nothing here does I/O or reads a clock; the executor passes what it knows. A *context* is what
templates and conditions may read while an execution runs::

    {"params": {"version": "1.4.2", "target": "role=web"},
     "steps": {"deploy": {"status": "success", "succeeded": 9, "failed": 1, "hosts": ["web-1", ...]}}}

Values are rendered as text: lists joined with ``,``, booleans as ``true``/``false``, numbers in
decimal (``fleetops.common.runbooks.format_value``). A reference the context does not hold (a
parameter without a value, a step that has not run in this execution) is an
:class:`~fleetops.common.errors.InvalidInput` naming it. Rendering is single-pass: text that comes
from a value is never scanned for templates again, so a parameter value ``{{ params.x }}`` stays
those characters.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from fleetops.common.errors import InvalidInput
from fleetops.common.runbooks import (
    ABORT,
    CONTINUE,
    END,
    BranchStep,
    Condition,
    Params,
    Step,
    format_value,
    iter_templates,
)

__all__ = [
    "Outcome",
    "batch_sizes",
    "branch_target",
    "evaluate",
    "index_of",
    "next_step",
    "render",
    "render_parameters",
    "render_value",
    "resolve",
]

Outcome = Literal["success", "failed"]

_PERCENT = re.compile(r"\s*([0-9]{1,3})\s*%\s*")
_COUNT = re.compile(r"\s*([0-9]{1,9})\s*")
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


# -- batches --------------------------------------------------------------------------------------


def _cumulative(spec: int | str, total: int) -> int:
    """How many hosts in all a cumulative batch size reaches out of *total*."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        return max(0, min(spec, total))
    if isinstance(spec, str):
        if match := _PERCENT.fullmatch(spec):
            percent = min(int(match.group(1)), 100)
            reached = math.ceil(total * percent / 100)
            return max(reached, 1) if percent and total > 0 else reached
        if match := _COUNT.fullmatch(spec):
            return min(int(match.group(1)), total)
    raise InvalidInput(f"bad batch size {spec!r}", "a number of hosts or a percentage, e.g. [1, '10%', '100%']")


def batch_sizes(batches: Sequence[int | str], total: int) -> list[int]:
    """How many hosts each batch *adds*, from cumulative sizes over *total* targets.

    ``"N%"`` is rounded up, and is at least 1 host when there are any; a count is capped at
    *total*; a batch that would add nothing is dropped; the sizes always add up to *total* (hosts
    the sizes leave out, if the last is not ``100%``, form a last batch).

    ``([1, "10%", "100%"], 30)`` -> ``[1, 2, 27]``; ``([1, "10%", "100%"], 1)`` -> ``[1]``;
    ``(["100%"], 0)`` -> ``[]``.

    Raises:
        InvalidInput: a size is neither a whole number nor a percentage.
    """
    total = max(total, 0)
    sizes: list[int] = []
    reached = 0
    for spec in batches:
        target = _cumulative(spec, total)
        if target > reached:
            sizes.append(target - reached)
            reached = target
    if reached < total:
        sizes.append(total - reached)
    return sizes


# -- templates ------------------------------------------------------------------------------------


def resolve(ref: str, context: Mapping[str, Any]) -> Any:
    """The value of ``params.NAME`` or ``steps.STEP.OUTPUT`` in *context*.

    Raises:
        InvalidInput: not a reference, or the context has no value for it.
    """
    parts = ref.split(".")
    if parts[0] == "params" and len(parts) == 2:
        params = context.get("params") or {}
        value = params.get(parts[1]) if isinstance(params, Mapping) else None
        if value is None:
            raise InvalidInput(
                f"{ref} has no value", f"pass the parameter {parts[1]} (--param {parts[1]}=VALUE) or give it a default"
            )
        return value
    if parts[0] == "steps" and len(parts) == 3:
        steps = context.get("steps") or {}
        outputs = steps.get(parts[1]) if isinstance(steps, Mapping) else None
        if not isinstance(outputs, Mapping):
            raise InvalidInput(
                f"{ref} has no value: step {parts[1]} has not run in this execution",
                "a step can only use the outputs of steps the execution went through before it",
            )
        value = outputs.get(parts[2])
        if value is None:
            raise InvalidInput(f"{ref} has no value: step {parts[1]} left no {parts[2]}", "check the step's outputs")
        return value
    raise InvalidInput(
        f"unknown reference {ref!r}", "references are params.NAME and steps.STEP.OUTPUT, e.g. {{ params.version }}"
    )


def render(text: str, context: Mapping[str, Any]) -> str:
    """*text* with each ``{{ REF }}`` replaced by its value from *context* (single pass).

    Raises:
        InvalidInput: a malformed template, or a reference without a value (naming it).
    """
    pieces: list[str] = []
    pos = 0
    for match in iter_templates(text):
        pieces.append(text[pos : match.start()])
        pieces.append(format_value(resolve(match.group(1), context)))
        pos = match.end()
    pieces.append(text[pos:])
    return "".join(pieces)


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """*value* with :func:`render` applied to every text inside it (lists, tuples and mappings
    recursively; their shape kept); numbers and booleans unchanged."""
    if isinstance(value, str):
        return render(value, context)
    if isinstance(value, list):
        return [render_value(v, context) for v in value]
    if isinstance(value, tuple):
        return tuple(render_value(v, context) for v in value)
    if isinstance(value, Mapping):
        return {k: render_value(v, context) for k, v in value.items()}
    return value


def render_parameters(parameters: Params, context: Mapping[str, Any]) -> dict[str, Any]:
    """A step's ``(name, value)`` parameters rendered, as the mapping ``Document.resolve`` takes."""
    return {name: render_value(value, context) for name, value in parameters}


# -- conditions and the next step -----------------------------------------------------------------


def evaluate(condition: Condition, context: Mapping[str, Any]) -> bool:
    """Whether *condition* holds in *context*.

    The reference's value (as text, surrounding whitespace removed: a command's stdout ends with a
    newline) and the literal are compared as integers when both are whole numbers, else as text.

    Raises:
        InvalidInput: the reference has no value, or text compared with ``<``, ``<=``, ``>``, ``>=``.
    """
    compare = _COMPARE.get(condition.op)
    if compare is None:
        raise InvalidInput(f"unknown operator {condition.op!r} in {condition}", "use == != < <= > >=")
    value = format_value(resolve(condition.ref, context)).strip()
    literal = condition.literal
    if _INTEGER.fullmatch(value) and _INTEGER.fullmatch(literal.strip()):
        left: int | str = int(value)
        right: int | str = int(literal)
    elif condition.op in ("==", "!="):
        left, right = value, literal
    else:
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise InvalidInput(
            f"cannot evaluate {condition}: {condition.ref} is {shown!r}, and {condition.op} compares numbers only",
            "text compares with == and != only",
        )
    return compare(left, right)


def branch_target(step: Step, context: Mapping[str, Any]) -> str | None:
    """Where a branch step goes: the ``goto`` of its first case that holds, else its ``default``;
    None when neither (go on as after a success: ``next_step(steps, index, "success")``).

    Raises:
        InvalidInput: a condition cannot be evaluated (the branch step fails: ``next_step(..., "failed")``).
        ValueError: *step* is not a branch.
    """
    if not isinstance(step.action, BranchStep):
        raise ValueError(f"step {step.name!r} is a {step.kind} step, not a branch")
    for case in step.action.cases:
        if evaluate(case.when, context):
            return case.goto
    return step.action.default


def next_step(steps: Sequence[Step], index: int, outcome: Outcome) -> str:
    """Where to go after ``steps[index]`` ended with *outcome*: a step name, ``end`` or ``abort``.

    On failure: ``on_failure`` ``abort`` -> ``abort``; ``continue`` -> as on success; a step -> it.
    On success: ``next`` when set, else the step after it in the list, else ``end``.
    """
    step = steps[index]
    if outcome == "failed":
        if step.on_failure != CONTINUE:
            return step.on_failure  # ABORT or a step's name
    elif outcome != "success":
        raise ValueError(f"unknown outcome {outcome!r}: success or failed")
    if step.next is not None:
        return step.next
    return steps[index + 1].name if index + 1 < len(steps) else END


def index_of(steps: Sequence[Step], name: str) -> int:
    """The position of the step named *name* (not ``end`` or ``abort``).

    Raises:
        ValueError: no step has that name.
    """
    for i, step in enumerate(steps):
        if step.name == name:
            return i
    raise ValueError(
        f"no step is named {name!r}" + (f" ({name} finishes the execution)" if name in (END, ABORT) else "")
    )
