"""The steps of a runbook: what an automation execution runs, waits for, asks for and decides.

A runbook is a document (``common/documents.py``) whose ``steps:`` is a list of steps; the
document parser hands that list to :func:`parse_steps` with the names of the declared parameters::

    steps:
      - name: deploy                      # [a-z0-9][a-z0-9_-]{0,63}, unique; end, abort, continue are reserved
        run:
          document: deploy-web            # NAME or NAME:VERSION (no templates: permissions are checked up front)
          parameters: {version: "{{ params.version }}"}   # text, integer, boolean or list of text
          target: "{{ params.target }}"   # a tag selector, or text with templates; required
          batches: [1, "10%", "100%"]     # optional, default ["100%"]: CUMULATIVE sizes, see below
          max_concurrency: "50"           # optional (common/rates.py), or a template
          max_errors: "0"                 # optional (common/rates.py), or a template
          timeout: 10m                    # optional: each host's run, 1s to 7d
          health:                         # optional: probed on each host of a batch after the batch
            document: web-health          # exactly one of document (+ parameters), command, url
            parameters: {}
            retries: 3                    # optional, 0 to 20, default 0
            interval: 5s                  # optional, 1s to 1h, default 5s
        on_failure: rollback              # optional: abort (default) | continue | the name of another step
      - name: soak
        wait: {duration: 5m}              # or {until: hosts_online, target: SELECTOR, timeout: 15m}
      - name: sign-off
        approve:
          approvers: [alice, bob]         # operator names, and/or
          role: release-managers          # any operator holding this role
          min_approvals: 1                # optional, default 1; at most len(approvers) without a role
          timeout: 1h                     # required; a denial or a timeout is a failure
          message: "Deploy {{ params.version }} to the rest?"
      - name: decide
        branch:
          cases:
            - when: "steps.deploy.failed > 0"     # REF OP LITERAL
              goto: rollback
          default: end                    # optional; without it: the next step
      - name: rollback
        run: {document: "deploy-web", parameters: {version: previous}, target: "role=web"}
        next: abort                       # optional (not on a branch): where to go after success

Each step has ``name`` and exactly one of ``run``, ``wait``, ``approve`` or ``branch``, optionally
``on_failure`` and ``next``; unknown keys are refused everywhere. Without ``next`` a step that
succeeds goes on to the one after it (after the last: ``end``). ``goto``, ``default`` and ``next``
name a step (not the step itself), ``end`` (the execution succeeds) or ``abort`` (it fails);
``on_failure`` names a step, ``abort`` or ``continue`` (carry on as if the step had succeeded).
Jumping backwards is allowed: the engine bounds how many steps an execution runs.

**Batches** are cumulative: ``[1, "10%", "100%"]`` means one host first, then up to 10% of the
targets in all, then the rest. A size is a whole number of hosts or ``"N%"`` of the targets
(rounded up). Numbers must increase, percentages must increase, and the last size is ``"100%"``.
What each batch adds is computed when the targets are known
(``fleetops.controller.automation.plan.batch_sizes``).

**Templates** ``{{ params.NAME }}`` and ``{{ steps.STEP.OUTPUT }}`` (spaces inside the braces
optional) may appear in run and health parameters, ``target``, ``max_concurrency``, ``max_errors``,
a health ``command`` or ``url``, a wait's ``target`` and an approval's ``message``; nowhere else.
``NAME`` must be a declared parameter and ``STEP`` a step *earlier in the list* (a later one has no
outputs yet), with one of the outputs of its kind (:data:`OUTPUTS`). Any other ``{{`` is an error.
Substitution happens once, when the step starts: a value is never scanned for templates again.

**Conditions** (a branch's ``when``) are ``REF OP LITERAL``: the same references without braces,
an operator among ``== != < <= > >=``, and an integer, a quoted string (``'x'`` or ``"x"``) or a
bare word. Both sides are compared as numbers when both are whole numbers, else as text (only
``==`` and ``!=`` for text).

Everything here is immutable (frozen dataclasses, tuples); :func:`steps_to_data` writes the steps
back as plain data that :func:`parse_steps` reads to the same value. Every error is an
:class:`InvalidInput` naming the step and the field (``steps[2] (sign-off): approve.timeout is
required``) with an example in its hint.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias
from urllib.parse import urlsplit

from fleetops.common.durations import format_seconds, parse_duration
from fleetops.common.errors import InvalidInput, SelectorError
from fleetops.common.limits import RATE_COUNT_MAX, TIMEOUT_SECONDS_MAX, utf8_size
from fleetops.common.rates import max_concurrency, max_errors
from fleetops.common.roles import validate_role_name
from fleetops.common.selectors import Selector

__all__ = [
    "END",
    "ABORT",
    "CONTINUE",
    "KINDS",
    "OUTPUTS",
    "OPERATORS",
    "ApproveStep",
    "BranchCase",
    "BranchStep",
    "Condition",
    "HealthProbe",
    "ParamValue",
    "Params",
    "RunStep",
    "Step",
    "WaitStep",
    "format_value",
    "has_template",
    "iter_templates",
    "parse_condition",
    "parse_steps",
    "referenced_documents",
    "step_to_dict",
    "steps_to_data",
]

#: Where an execution goes to finish successfully.
END = "end"
#: Where an execution goes to finish as failed.
ABORT = "abort"
#: ``on_failure: continue``: carry on as if the step had succeeded.
CONTINUE = "continue"
RESERVED_NAMES = frozenset({END, ABORT, CONTINUE})

Kind: TypeAlias = Literal["run", "wait", "approve", "branch"]
KINDS: tuple[Kind, ...] = ("run", "wait", "approve", "branch")
#: The outputs each kind of step leaves for later steps (``{{ steps.STEP.OUTPUT }}``).
OUTPUTS: Mapping[str, tuple[str, ...]] = {
    "run": ("status", "succeeded", "failed", "hosts", "commands", "stdout"),
    "wait": ("status",),
    "approve": ("status", "approved_by"),
    "branch": ("status",),
}
OPERATORS: tuple[str, ...] = ("==", "!=", "<", "<=", ">", ">=")

MAX_STEPS = 50
MAX_PARAMETERS = 50
MAX_LIST_ITEMS = 100
MAX_VALUE_BYTES = 4 * 1024
MAX_BATCHES = 100
MAX_COMMAND_ITEMS = 100
MAX_URL = 2048
MAX_RETRIES = 20
MAX_INTERVAL_SECONDS = 3600
DEFAULT_INTERVAL_SECONDS = 5
MAX_APPROVERS = 50
MAX_MESSAGE = 1024
MAX_CASES = 20
MAX_LITERAL = 256
HOSTS_ONLINE = "hosts_online"
DEFAULT_BATCHES: tuple[int | str, ...] = ("100%",)

#: A value given to a document parameter; lists are kept as tuples.
ParamValue: TypeAlias = str | int | bool | tuple[str, ...]
Params: TypeAlias = tuple[tuple[str, ParamValue], ...]

_STEP_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_DOCUMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_PARAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_OPERATOR_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_PERCENT = re.compile(r"\s*([0-9]{1,3})\s*%\s*")
_COUNT = re.compile(r"\s*([0-9]{1,7})\s*")
_TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_CONDITION = re.compile(r"\s*(?P<ref>[^\s=!<>]+)\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<literal>.*?)\s*", re.DOTALL)
_BARE = re.compile(r"[^\s'\"]+")

STEP_NAME_HINT = "1-64 lower-case letters, digits, '_' or '-', starting with a letter or digit, e.g. deploy-canary"
DOCUMENT_HINT = "write NAME or NAME:VERSION, e.g. deploy-web or deploy-web:3"
TEMPLATE_HINT = "templates are {{ params.NAME }} and {{ steps.STEP.OUTPUT }}, e.g. {{ params.version }}"
REFERENCE_HINT = "references are params.NAME and steps.STEP.OUTPUT (in text: {{ params.NAME }})"
CONDITION_HINT = (
    'write REF OP LITERAL, e.g. when: "steps.deploy.failed > 0" or when: "params.env == \'prod\'"; '
    "OP is one of == != < <= > >="
)
_STEP_KEYS = ("name", *KINDS, "on_failure", "next")
_RUN_KEYS = ("document", "parameters", "target", "batches", "max_concurrency", "max_errors", "timeout", "health")
_HEALTH_KEYS = ("document", "parameters", "command", "url", "retries", "interval")
_WAIT_KEYS = ("duration", "until", "target", "timeout")
_APPROVE_KEYS = ("approvers", "role", "min_approvals", "timeout", "message")
_BRANCH_KEYS = ("cases", "default")
_CASE_KEYS = ("when", "goto")
_EXAMPLES = {
    "run": "run: {document: deploy-web, target: 'role=web', batches: [1, '10%', '100%']}",
    "wait": "wait: {duration: 5m} or wait: {until: hosts_online, target: 'role=web', timeout: 15m}",
    "approve": "approve: {approvers: [alice, bob], timeout: 1h}",
    "branch": "branch: {cases: [{when: 'steps.deploy.failed > 0', goto: rollback}], default: end}",
    "health": "health: {url: 'http://127.0.0.1:8080/healthz', retries: 3, interval: 5s}",
}


# -- the steps ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HealthProbe:
    """What is checked on each host of a batch once the batch is done: exactly one of a document
    (``document``, ``version`` or None for the default one, and ``parameters``), a ``command`` (argv)
    or a ``url`` fetched from the host. Tried ``retries + 1`` times, ``interval_seconds`` apart."""

    document: str = ""
    version: int | None = None
    parameters: Params = ()
    command: tuple[str, ...] = ()
    url: str = ""
    retries: int = 0
    interval_seconds: int = DEFAULT_INTERVAL_SECONDS


@dataclass(frozen=True)
class RunStep:
    """Run a document on the hosts ``target`` selects (after rendering), batch by batch.

    ``batches`` are cumulative sizes, ints (hosts) or ``"N%"`` text, the last one ``"100%"``;
    ``max_concurrency``/``max_errors`` are ``""`` (the defaults), a rate's text or a template.
    """

    document: str
    version: int | None = None
    parameters: Params = ()
    target: str = ""
    batches: tuple[int | str, ...] = DEFAULT_BATCHES
    max_concurrency: str = ""
    max_errors: str = ""
    timeout_seconds: int | None = None
    health: HealthProbe | None = None


@dataclass(frozen=True)
class WaitStep:
    """Wait ``duration_seconds``, or (``until == "hosts_online"``) until every host ``target``
    selects is online, failing after ``timeout_seconds``."""

    duration_seconds: int | None = None
    until: str = ""
    target: str = ""
    timeout_seconds: int | None = None


@dataclass(frozen=True)
class ApproveStep:
    """Wait for ``min_approvals`` approvals from ``approvers`` and/or holders of ``role``; a denial
    or ``timeout_seconds`` without enough approvals fails the step."""

    approvers: tuple[str, ...] = ()
    role: str = ""
    min_approvals: int = 1
    timeout_seconds: int = 0
    message: str = ""


@dataclass(frozen=True)
class Condition:
    """``ref op literal``: ``ref`` is ``params.NAME`` or ``steps.STEP.OUTPUT``; ``literal`` is the
    text of the literal (unquoted)."""

    ref: str
    op: str
    literal: str

    def __str__(self) -> str:
        literal = self.literal
        if not _BARE.fullmatch(literal):
            literal = f"'{literal}'" if "'" not in literal else f'"{literal}"'
        return f"{self.ref} {self.op} {literal}"


@dataclass(frozen=True)
class BranchCase:
    when: Condition
    goto: str


@dataclass(frozen=True)
class BranchStep:
    """Go to the ``goto`` of the first case whose condition holds, else ``default`` (None: the next step)."""

    cases: tuple[BranchCase, ...]
    default: str | None = None


Action: TypeAlias = RunStep | WaitStep | ApproveStep | BranchStep


@dataclass(frozen=True)
class Step:
    """One step: its ``name``, what it does, where to go when it fails (``abort``, ``continue`` or a
    step name) and where to go when it succeeds (None: the next step in the list)."""

    name: str
    action: Action
    on_failure: str = ABORT
    next: str | None = None

    @property
    def kind(self) -> Kind:
        if isinstance(self.action, RunStep):
            return "run"
        if isinstance(self.action, WaitStep):
            return "wait"
        if isinstance(self.action, ApproveStep):
            return "approve"
        return "branch"


# -- templates and conditions ---------------------------------------------------------------------


def has_template(text: str) -> bool:
    """Whether *text* holds a template (or anything starting like one)."""
    return "{{" in text


def iter_templates(text: str) -> Iterator[re.Match[str]]:
    """Each template of *text* in order (group 1: the reference, e.g. ``params.version``).

    Raises:
        InvalidInput: a ``{{`` that does not start a well-formed template (``{{ }}``, unclosed).
    """
    pos = text.find("{{")
    while pos >= 0:
        match = _TEMPLATE.match(text, pos)
        if match is None:
            if text.find("}}", pos) < 0:
                raise InvalidInput(f"unclosed template {_shown(text[pos:])}", TEMPLATE_HINT)
            raise InvalidInput(f"bad template {_shown(text[pos : text.find('}}', pos) + 2])}", TEMPLATE_HINT)
        if not match.group(1):
            raise InvalidInput(f"empty template {match.group(0)!r}", TEMPLATE_HINT)
        yield match
        pos = text.find("{{", match.end())


def _ref_problem(
    ref: str, params: Collection[str], earlier: Mapping[str, Kind], everyone: Collection[str]
) -> tuple[str, str] | None:
    """Why *ref* cannot be used here, as (message, hint), or None when it can."""
    parts = ref.split(".")
    if parts[0] == "params" and len(parts) == 2 and parts[1]:
        if parts[1] in params:
            return None
        close = difflib.get_close_matches(parts[1], list(params), n=1)
        guess = f"did you mean params.{close[0]}? " if close else ""
        declared = f"the runbook declares {', '.join(sorted(params))}" if params else "the runbook declares none"
        return f"no parameter {parts[1]!r} is declared", f"{guess}{declared}; declare it under parameters:"
    if parts[0] == "steps" and len(parts) == 3 and parts[1] and parts[2]:
        step, output = parts[1], parts[2]
        if step not in earlier:
            hint = "a step can use the outputs of the steps listed before it"
            if step in everyone:
                return f"step {step!r} does not come before this one, so it has no outputs yet", hint
            close = difflib.get_close_matches(step, list(earlier), n=1)
            guess = f"did you mean steps.{close[0]}? " if close else ""
            return f"there is no step {step!r} before this one", f"{guess}{hint}"
        outputs = OUTPUTS[earlier[step]]
        if output not in outputs:
            close = difflib.get_close_matches(output, outputs, n=1)
            guess = f"did you mean {close[0]}? " if close else ""
            return f"a {earlier[step]} step has no output {output!r}", f"{guess}its outputs are {', '.join(outputs)}"
        return None
    return "not a reference to params.NAME or steps.STEP.OUTPUT", REFERENCE_HINT


def parse_condition(text: str) -> Condition:
    """``REF OP LITERAL`` as a :class:`Condition`; the reference itself is not checked here.

    Raises:
        InvalidInput: not of that form (the message says what is missing).
    """
    if "{{" in text:
        raise InvalidInput(f"{_shown(text)}: write references without braces", CONDITION_HINT)
    match = _CONDITION.fullmatch(text)
    if match is None:
        if re.search(r"(?<![=!<>])=(?!=)", text):
            raise InvalidInput(f"{_shown(text)} is not REF OP LITERAL: compare with == rather than =", CONDITION_HINT)
        raise InvalidInput(f"{_shown(text)} is not REF OP LITERAL", CONDITION_HINT)
    ref, op, literal = match["ref"], match["op"], match["literal"]
    if not literal:
        raise InvalidInput(f"{_shown(text)}: expected a value after {op}", CONDITION_HINT)
    if literal[0] in "'\"":
        quote = literal[0]
        if len(literal) < 2 or literal[-1] != quote or quote in literal[1:-1]:
            raise InvalidInput(
                f"{_shown(text)}: the quoted value {literal} is not closed by one {quote}", CONDITION_HINT
            )
        literal = literal[1:-1]
    elif not _BARE.fullmatch(literal):
        raise InvalidInput(f"{_shown(text)}: quote a value with spaces or quotes in it", CONDITION_HINT)
    if len(literal) > MAX_LITERAL:
        raise InvalidInput(f"the value compared with is longer than {MAX_LITERAL} characters", CONDITION_HINT)
    return Condition(ref, op, literal)


def format_value(value: Any) -> str:
    """A parameter or output value as template text: lists joined with ``,``, booleans ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(format_value(v) for v in value)
    return str(value)


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 80 else repr(text[:77] + "...")


# -- parsing --------------------------------------------------------------------------------------


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple))


class _StepParser:
    """Parses one raw step; every error is prefixed ``steps[I] (NAME):``."""

    def __init__(
        self, index: int, params: Collection[str], earlier: Mapping[str, Kind], everyone: Collection[str]
    ) -> None:
        self.index = index
        self.name = ""
        self.params = params
        self.earlier = earlier
        self.everyone = everyone

    def error(self, message: str, hint: str) -> InvalidInput:
        where = f"steps[{self.index}] ({self.name})" if self.name else f"steps[{self.index}]"
        return InvalidInput(f"{where}: {message}", hint)

    # -- shapes

    def mapping(self, value: Any, field: str, example: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(f"{field} must be a mapping, got {_kind_of(value)}", example)
        return value

    def keys(self, raw: Mapping[str, Any], known: tuple[str, ...], field: str) -> None:
        unknown = [str(k) for k in raw if k not in known]
        if not unknown:
            return
        close = difflib.get_close_matches(unknown[0], known, n=1)
        guess = f"did you mean {close[0]}? " if close else ""
        where = f"{field}: " if field else ""
        raise self.error(
            f"{where}unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
            f"{guess}{field or 'a step'} takes {', '.join(known)}",
        )

    def text(self, value: Any, field: str, example: str) -> str:
        if not isinstance(value, str):
            quote = " (quote it in YAML)" if isinstance(value, (bool, int, float)) else ""
            raise self.error(f"{field} must be text, got {_kind_of(value)}", f"e.g. {example}{quote}")
        if "\0" in value:
            raise self.error(f"{field} contains a NUL byte", "remove it")
        return value

    def templates(self, text: str, field: str) -> str:
        """*text* if each of its templates names something this step may use."""
        try:
            for match in iter_templates(text):
                if problem := _ref_problem(match.group(1), self.params, self.earlier, self.everyone):
                    raise InvalidInput(f"template {match.group(0)!r}: {problem[0]}", problem[1])
        except InvalidInput as exc:
            raise self.error(f"{field}: {exc.message}", exc.hint) from None
        return text

    def no_templates(self, text: str, field: str, why: str) -> None:
        if has_template(text):
            raise self.error(f"{field} cannot hold a template: {why}", f"write {field} literally")

    def duration(
        self, value: Any, field: str, example: str, minimum: int = 1, maximum: int = TIMEOUT_SECONDS_MAX
    ) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            raise self.error(f"{field}: {value} has no unit", f"e.g. {field.rsplit('.', 1)[-1]}: {value}s")
        text = self.text(value, field, example)
        self.no_templates(text, field, "durations are checked when the runbook is saved")
        try:
            seconds = int(parse_duration(text).total_seconds())
        except InvalidInput as exc:
            raise self.error(f"{field}: {exc.message}", exc.hint) from None
        if not minimum <= seconds <= maximum:
            raise self.error(
                f"{field}: {text.strip()} is out of range",
                f"from {format_seconds(minimum)} to {format_seconds(maximum)}, e.g. {example}",
            )
        return seconds

    def integer(self, value: Any, field: str, low: int, high: int, example: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"{field} must be a whole number, got {_kind_of(value)}", f"e.g. {example}")
        if not low <= value <= high:
            raise self.error(f"{field}: {value} is out of range", f"from {low} to {high}, e.g. {example}")
        return value

    def document(self, value: Any, field: str) -> tuple[str, int | None]:
        if value is None:
            raise self.error(f"{field} is required", f"{field.rsplit('.', 1)[-1]}: deploy-web; {DOCUMENT_HINT}")
        text = self.text(value, field, "deploy-web:3")
        self.no_templates(text, field, "the documents a runbook runs are checked before it starts")
        name, sep, version = text.partition(":")
        if not _DOCUMENT_NAME.fullmatch(name):
            raise self.error(f"{field}: bad document name {name!r}", DOCUMENT_HINT)
        if not sep:
            return name, None
        if not re.fullmatch(r"[0-9]{1,9}", version) or int(version) < 1:
            raise self.error(f"{field}: bad document version {version!r} in {text!r}", DOCUMENT_HINT)
        return name, int(version)

    def parameters(self, value: Any, field: str) -> Params:
        if value is None:
            return ()
        raw = self.mapping(value, field, f"{field.rsplit('.', 1)[-1]}: {{version: '{{{{ params.version }}}}'}}")
        if len(raw) > MAX_PARAMETERS:
            raise self.error(f"{field}: more than {MAX_PARAMETERS} parameters", "pass fewer")
        out: list[tuple[str, ParamValue]] = []
        for name, item in raw.items():
            if not isinstance(name, str) or not _PARAM_NAME.fullmatch(name):
                quote = "; quote it: YAML reads on, off, yes and no as booleans" if isinstance(name, bool) else ""
                raise self.error(
                    f"{field}: bad parameter name {name!r}",
                    f"1-64 letters, digits or '_', starting with a letter, e.g. service_name{quote}",
                )
            where = f"{field}.{name}"
            value_out: ParamValue
            if isinstance(item, (bool, int)):
                value_out = item
            elif isinstance(item, str):
                value_out = self.value_text(item, where)
            elif _is_list(item):
                if len(item) > MAX_LIST_ITEMS:
                    raise self.error(f"{where}: more than {MAX_LIST_ITEMS} items", "pass fewer values")
                items = []
                for i, element in enumerate(item):
                    if not isinstance(element, str):
                        raise self.error(
                            f"{where}[{i}] must be text, got {_kind_of(element)}", "quote list items in YAML"
                        )
                    items.append(self.value_text(element, f"{where}[{i}]"))
                value_out = tuple(items)
            else:
                raise self.error(
                    f"{where} must be text, a whole number, a boolean or a list of text, got {_kind_of(item)}",
                    f"e.g. {name}: '{{{{ params.{name} }}}}'",
                )
            out.append((name, value_out))
        return tuple(out)

    def value_text(self, text: str, field: str) -> str:
        if "\0" in text:
            raise self.error(f"{field} contains a NUL byte", "remove it")
        if utf8_size(text) > MAX_VALUE_BYTES:
            raise self.error(f"{field} is longer than {MAX_VALUE_BYTES} bytes", "keep large input on the hosts")
        return self.templates(text, field)

    def target(self, value: Any, field: str) -> str:
        if value is None:
            raise self.error(
                f"{field} is required", "e.g. target: 'role=web,env=prod' or target: '{{ params.target }}'"
            )
        text = self.text(value, field, "target: 'role=web'")
        if not text.strip():
            raise self.error(
                f"{field} is empty", "select hosts by tag, e.g. target: 'role=web', or target: '{{ params.target }}'"
            )
        if has_template(text):
            return self.templates(text, field)
        try:
            return str(Selector.parse(text))
        except SelectorError as exc:
            raise self.error(f"{field}: {exc.message}", f"{exc.hint}; quote the selector in YAML") from None
        except InvalidInput as exc:
            raise self.error(f"{field}: {exc.message}", exc.hint) from None

    def rate(self, value: Any, field: str, which: str) -> str:
        if value is None:
            return ""
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        text = self.text(value, field, f"{which}: '10%'")
        if not text.strip():
            return ""  # the default (common/rates.py)
        if has_template(text):
            return self.templates(text, field)
        try:
            rate = max_concurrency(text) if which == "max_concurrency" else max_errors(text)
        except InvalidInput as exc:
            raise self.error(f"{field}: {exc.message}", exc.hint) from None
        return str(rate)

    def batches(self, value: Any, field: str) -> tuple[int | str, ...]:
        example = "batches: [1, '10%', '100%'] (one host, then up to 10% in all, then the rest)"
        if value is None:
            return DEFAULT_BATCHES
        if not _is_list(value):
            raise self.error(f"{field} must be a list of cumulative sizes, got {_kind_of(value)}", example)
        if not value:
            raise self.error(f"{field} is empty", f"leave batches out to run on every host at once, or {example}")
        if len(value) > MAX_BATCHES:
            raise self.error(f"{field}: more than {MAX_BATCHES} batches", example)
        out: list[int | str] = []
        last_count, last_percent = 0, 0
        for i, item in enumerate(value):
            where = f"{field}[{i}]"
            if isinstance(item, int) and not isinstance(item, bool):
                count: int | None = item
            elif isinstance(item, str) and (m := _COUNT.fullmatch(item)):
                count = int(m.group(1))
            elif isinstance(item, str) and (m := _PERCENT.fullmatch(item)):
                count = None
                percent = int(m.group(1))
                if not 1 <= percent <= 100:
                    raise self.error(f"{where}: {item.strip()} is out of range: from 1% to 100%", example)
                if percent <= last_percent:
                    raise self.error(
                        f"{where}: {percent}% is not more than the {last_percent}% before it: sizes are cumulative",
                        example,
                    )
                last_percent = percent
                out.append(f"{percent}%")
            else:
                raise self.error(f"{where}: {item!r} is not a number of hosts or a percentage", example)
            if count is not None:
                if not 1 <= count <= RATE_COUNT_MAX:
                    raise self.error(f"{where}: {count} is out of range: from 1 to {RATE_COUNT_MAX} hosts", example)
                if count <= last_count:
                    raise self.error(
                        f"{where}: {count} is not more than the {last_count} before it: sizes are cumulative", example
                    )
                last_count = count
                out.append(count)
        if out[-1] != "100%":
            raise self.error(
                f"{field}: the last batch must be '100%', not {out[-1]!r}",
                f"end the list with '100%' so that every host is reached, e.g. {example}",
            )
        return tuple(out)

    # -- kinds

    def run(self, value: Any) -> RunStep:
        raw = self.mapping(value, "run", _EXAMPLES["run"])
        self.keys(raw, _RUN_KEYS, "run")
        name, version = self.document(raw.get("document"), "run.document")
        parameters = self.parameters(raw.get("parameters"), "run.parameters")
        target = self.target(raw.get("target"), "run.target")
        batches = self.batches(raw.get("batches"), "run.batches")
        concurrency = self.rate(raw.get("max_concurrency"), "run.max_concurrency", "max_concurrency")
        errors = self.rate(raw.get("max_errors"), "run.max_errors", "max_errors")
        timeout = None
        if raw.get("timeout") is not None:
            timeout = self.duration(raw["timeout"], "run.timeout", "10m")
        health = None
        if raw.get("health") is not None:
            health = self.health(raw["health"])
        return RunStep(name, version, parameters, target, batches, concurrency, errors, timeout, health)

    def health(self, value: Any) -> HealthProbe:
        raw = self.mapping(value, "run.health", _EXAMPLES["health"])
        self.keys(raw, _HEALTH_KEYS, "run.health")
        given = [k for k in ("document", "command", "url") if raw.get(k) is not None]
        if len(given) != 1:
            has = f"; it has {' and '.join(given)}" if given else ""
            raise self.error(
                f"run.health needs exactly one of document, command or url{has}",
                f"e.g. {_EXAMPLES['health']} or health: {{command: [systemctl, is-active, nginx]}}",
            )
        if raw.get("parameters") is not None and given != ["document"]:
            raise self.error(
                "run.health.parameters only apply to a health document",
                "remove parameters, or probe with a document: health: {document: web-health, parameters: {...}}",
            )
        probe = HealthProbe()
        if given == ["document"]:
            name, version = self.document(raw["document"], "run.health.document")
            params = self.parameters(raw.get("parameters"), "run.health.parameters")
            probe = HealthProbe(document=name, version=version, parameters=params)
        elif given == ["command"]:
            probe = HealthProbe(command=self.command(raw["command"]))
        else:
            probe = HealthProbe(url=self.url(raw["url"]))
        retries = 0
        if raw.get("retries") is not None:
            retries = self.integer(raw["retries"], "run.health.retries", 0, MAX_RETRIES, "retries: 3")
        interval = DEFAULT_INTERVAL_SECONDS
        if raw.get("interval") is not None:
            interval = self.duration(raw["interval"], "run.health.interval", "5s", maximum=MAX_INTERVAL_SECONDS)
        return dataclasses.replace(probe, retries=retries, interval_seconds=interval)

    def command(self, value: Any) -> tuple[str, ...]:
        field, example = "run.health.command", "command: [systemctl, is-active, --quiet, nginx]"
        if not _is_list(value):
            raise self.error(f"{field} must be a list of arguments, got {_kind_of(value)}", example)
        if not value:
            raise self.error(f"{field} is empty", example)
        if len(value) > MAX_COMMAND_ITEMS:
            raise self.error(f"{field}: more than {MAX_COMMAND_ITEMS} arguments", "run a script from a document")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(f"{field}[{i}] must be text, got {_kind_of(item)}", f"quote it in YAML: {example}")
            out.append(self.value_text(item, f"{field}[{i}]"))
        if not out[0].strip():
            raise self.error(f"{field}[0] is empty: it is the program to run", example)
        return tuple(out)

    def url(self, value: Any) -> str:
        field, example = "run.health.url", "url: 'http://127.0.0.1:8080/healthz'"
        text = self.text(value, field, example)
        if len(text) > MAX_URL:
            raise self.error(f"{field} is longer than {MAX_URL} characters", example)
        templated = has_template(text)
        literal = _TEMPLATE.sub("x", self.templates(text, field)) if templated else text
        if not literal.startswith(("http://", "https://")) or any(c.isspace() for c in literal):
            raise self.error(f"{field}: {_shown(text)} is not an http:// or https:// URL", example)
        if templated:
            return text
        try:
            host = urlsplit(text).hostname
        except ValueError:
            host = None
        if not host:
            raise self.error(f"{field}: {_shown(text)} names no host", f"{example} (fetched from each host)")
        return text

    def wait(self, value: Any) -> WaitStep:
        raw = self.mapping(value, "wait", _EXAMPLES["wait"])
        self.keys(raw, _WAIT_KEYS, "wait")
        if raw.get("duration") is not None:
            extra = [k for k in ("until", "target", "timeout") if raw.get(k) is not None]
            if extra:
                raise self.error(
                    f"wait.duration cannot be combined with {', '.join(extra)}: a wait is for a duration or until",
                    _EXAMPLES["wait"],
                )
            return WaitStep(duration_seconds=self.duration(raw["duration"], "wait.duration", "5m"))
        if raw.get("until") is None:
            raise self.error("wait needs a duration or until", _EXAMPLES["wait"])
        until = self.text(raw["until"], "wait.until", f"until: {HOSTS_ONLINE}")
        if until != HOSTS_ONLINE:
            raise self.error(f"wait.until: unknown condition {until!r}", f"the condition is {HOSTS_ONLINE}")
        target = self.target(raw.get("target"), "wait.target")
        if raw.get("timeout") is None:
            raise self.error("wait.timeout is required with until", _EXAMPLES["wait"].split(" or ")[1])
        timeout = self.duration(raw["timeout"], "wait.timeout", "15m")
        return WaitStep(until=until, target=target, timeout_seconds=timeout)

    def approve(self, value: Any) -> ApproveStep:
        example = _EXAMPLES["approve"]
        raw = self.mapping(value, "approve", example)
        self.keys(raw, _APPROVE_KEYS, "approve")
        approvers: list[str] = []
        if raw.get("approvers") is not None:
            listed = raw["approvers"]
            if not _is_list(listed):
                raise self.error(f"approve.approvers must be a list, got {_kind_of(listed)}", "approvers: [alice, bob]")
            if len(listed) > MAX_APPROVERS:
                raise self.error(f"approve.approvers: more than {MAX_APPROVERS}", "name a role instead")
            for i, who in enumerate(listed):
                who = self.text(who, f"approve.approvers[{i}]", "approvers: [alice, bob]")
                if not _OPERATOR_NAME.fullmatch(who):
                    raise self.error(
                        f"approve.approvers[{i}]: {who!r} is not an operator name",
                        "operator names are lower-case letters, digits, '.', '_' or '-', starting with a letter",
                    )
                if who in approvers:
                    raise self.error(f"approve.approvers[{i}]: {who!r} is listed twice", "list each approver once")
                approvers.append(who)
        role = ""
        if raw.get("role") is not None:
            role = self.text(raw["role"], "approve.role", "role: release-managers")
            try:
                validate_role_name(role)
            except InvalidInput as exc:
                raise self.error(f"approve.role: {exc.message}", exc.hint) from None
        if not approvers and not role:
            raise self.error(
                "approve needs approvers or a role", "approvers: [alice, bob] and/or role: release-managers"
            )
        min_approvals = 1
        if raw.get("min_approvals") is not None:
            min_approvals = self.integer(raw["min_approvals"], "approve.min_approvals", 1, MAX_APPROVERS, "2")
        if not role and min_approvals > len(approvers):
            raise self.error(
                f"approve.min_approvals: {min_approvals} is more than the {len(approvers)} approvers listed",
                "list more approvers, lower min_approvals, or add a role",
            )
        if raw.get("timeout") is None:
            raise self.error("approve.timeout is required", "e.g. timeout: 1h (without enough approvals: failed)")
        timeout = self.duration(raw["timeout"], "approve.timeout", "1h")
        message = ""
        if raw.get("message") is not None:
            message = self.text(raw["message"], "approve.message", "message: 'Deploy {{ params.version }}?'")
            if len(message) > MAX_MESSAGE:
                raise self.error(f"approve.message is longer than {MAX_MESSAGE} characters", "keep it short")
            self.templates(message, "approve.message")
        return ApproveStep(tuple(approvers), role, min_approvals, timeout, message)

    def branch(self, value: Any) -> BranchStep:
        example = _EXAMPLES["branch"]
        raw = self.mapping(value, "branch", example)
        self.keys(raw, _BRANCH_KEYS, "branch")
        cases_raw = raw.get("cases")
        if cases_raw is None:
            raise self.error("branch.cases is required", example)
        if not _is_list(cases_raw):
            raise self.error(f"branch.cases must be a list, got {_kind_of(cases_raw)}", example)
        if not cases_raw:
            raise self.error("branch.cases is empty", example)
        if len(cases_raw) > MAX_CASES:
            raise self.error(f"branch.cases: more than {MAX_CASES} cases", "split the decision in several branches")
        cases = []
        for i, case_raw in enumerate(cases_raw):
            where = f"branch.cases[{i}]"
            case = self.mapping(case_raw, where, "{when: 'steps.deploy.failed > 0', goto: rollback}")
            self.keys(case, _CASE_KEYS, where)
            if case.get("when") is None:
                raise self.error(f"{where}.when is required", CONDITION_HINT)
            if case.get("goto") is None:
                raise self.error(f"{where}.goto is required", "goto: a step name, end or abort")
            when = self.text(case["when"], f"{where}.when", "when: 'steps.deploy.failed > 0'")
            try:
                condition = parse_condition(when)
            except InvalidInput as exc:
                raise self.error(f"{where}.when: {exc.message}", exc.hint) from None
            if problem := _ref_problem(condition.ref, self.params, self.earlier, self.everyone):
                raise self.error(f"{where}.when: {condition.ref}: {problem[0]}", problem[1])
            goto = self.text(case["goto"], f"{where}.goto", "goto: rollback")
            cases.append(BranchCase(condition, goto))
        default = None
        if raw.get("default") is not None:
            default = self.text(raw["default"], "branch.default", "default: end")
        return BranchStep(tuple(cases), default)

    # -- the step

    def step(self, value: Any, seen: Collection[str]) -> Step:
        raw = self.mapping(value, "a step", "e.g. - {name: deploy, run: {document: deploy-web, target: 'role=web'}}")
        if isinstance(raw.get("name"), str) and _STEP_NAME.fullmatch(raw["name"]):
            self.name = raw["name"]
        self.keys(raw, _STEP_KEYS, "")
        if raw.get("name") is None:
            raise self.error("name is required", f"name: deploy; {STEP_NAME_HINT}")
        name = self.text(raw["name"], "name", "name: deploy")
        if not _STEP_NAME.fullmatch(name):
            raise self.error(f"bad step name {name!r}", STEP_NAME_HINT)
        if name in RESERVED_NAMES:
            raise self.error(
                f"the step name {name!r} is reserved", "end, abort and continue are where goto and on_failure go"
            )
        if name in seen:
            raise self.error(f"another step is named {name!r}", "give each step its own name")
        kinds = [k for k in KINDS if raw.get(k) is not None]
        if len(kinds) != 1:
            has = f"; this one has {' and '.join(kinds)}" if kinds else ""
            raise self.error(
                f"a step does exactly one of run, wait, approve or branch{has}",
                "split it into several steps" if kinds else f"e.g. {_EXAMPLES['run']}",
            )
        kind = kinds[0]
        action: Action
        if kind == "run":
            action = self.run(raw["run"])
        elif kind == "wait":
            action = self.wait(raw["wait"])
        elif kind == "approve":
            action = self.approve(raw["approve"])
        else:
            action = self.branch(raw["branch"])
        on_failure = ABORT
        if raw.get("on_failure") is not None:
            on_failure = self.text(raw["on_failure"], "on_failure", "on_failure: rollback")
        next_step = None
        if raw.get("next") is not None:
            if kind == "branch":
                raise self.error(
                    "next does not apply to a branch: its cases and default say where to go",
                    "use branch.default: STEP (or end, abort)",
                )
            next_step = self.text(raw["next"], "next", "next: end")
        return Step(name, action, on_failure, next_step)

    def destination(self, target: str, field: str, keywords: tuple[str, str], names: Sequence[str]) -> None:
        """Check that *target* (a goto, default, next or on_failure) is one of *keywords* or another step."""
        what = f"{field} is {keywords[0]}, {keywords[1]} or the name of another step"
        if target in keywords:
            return
        if target in RESERVED_NAMES:
            raise self.error(f"{field} cannot be {target}", what)
        if target == self.name:
            raise self.error(f"{field}: a step cannot go to itself", what)
        if target not in names:
            close = difflib.get_close_matches(target, [*names, *keywords], n=1)
            guess = f"did you mean {close[0]}? " if close else ""
            raise self.error(f"{field}: no step is named {target!r}", f"{guess}{what}")


def parse_steps(raw: Any, parameters: Iterable[str]) -> tuple[Step, ...]:
    """The steps of a runbook from their raw (YAML) data, checked (see the module docstring).

    Args:
        raw: the value of the document's ``steps:``.
        parameters: the names of the runbook's declared parameters (what ``{{ params.NAME }}`` may name).

    Raises:
        InvalidInput: anything wrong, naming the step and the field (``steps[1] (soak): wait.duration ...``).
    """
    if raw is None:
        raise InvalidInput("steps: a runbook needs steps", "steps: [{name: deploy, run: {...}}]")
    if not _is_list(raw):
        raise InvalidInput(
            f"steps must be a list of steps, got {_kind_of(raw)}", "steps:\n  - name: deploy\n    run: ..."
        )
    if not raw:
        raise InvalidInput(
            "steps is empty: a runbook needs at least one step", "steps:\n  - name: deploy\n    run: ..."
        )
    if len(raw) > MAX_STEPS:
        raise InvalidInput(f"steps: {len(raw)} steps, the limit is {MAX_STEPS}", "split the runbook in several")
    params = frozenset(parameters)
    everyone = frozenset(s["name"] for s in raw if isinstance(s, Mapping) and isinstance(s.get("name"), str))
    earlier: dict[str, Kind] = {}
    steps: list[Step] = []
    parsers: list[_StepParser] = []
    for index, item in enumerate(raw):
        parser = _StepParser(index, params, dict(earlier), everyone)
        step = parser.step(item, earlier)
        earlier[step.name] = step.kind
        steps.append(step)
        parsers.append(parser)
    names = [s.name for s in steps]
    for parser, step in zip(parsers, steps, strict=True):
        parser.destination(step.on_failure, "on_failure", (ABORT, CONTINUE), names)
        if step.next is not None:
            parser.destination(step.next, "next", (END, ABORT), names)
        if isinstance(step.action, BranchStep):
            for i, case in enumerate(step.action.cases):
                parser.destination(case.goto, f"branch.cases[{i}].goto", (END, ABORT), names)
            if step.action.default is not None:
                parser.destination(step.action.default, "branch.default", (END, ABORT), names)
    return tuple(steps)


# -- back to data ---------------------------------------------------------------------------------


def _document_ref(name: str, version: int | None) -> str:
    return name if version is None else f"{name}:{version}"


def _params_data(params: Params) -> dict[str, Any]:
    return {name: list(value) if isinstance(value, tuple) else value for name, value in params}


def _action_data(action: Action) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(action, RunStep):
        out["document"] = _document_ref(action.document, action.version)
        if action.parameters:
            out["parameters"] = _params_data(action.parameters)
        out["target"] = action.target
        if action.batches != DEFAULT_BATCHES:
            out["batches"] = list(action.batches)
        if action.max_concurrency:
            out["max_concurrency"] = action.max_concurrency
        if action.max_errors:
            out["max_errors"] = action.max_errors
        if action.timeout_seconds is not None:
            out["timeout"] = format_seconds(action.timeout_seconds)
        if action.health is not None:
            probe = action.health
            health: dict[str, Any] = {}
            if probe.document:
                health["document"] = _document_ref(probe.document, probe.version)
                if probe.parameters:
                    health["parameters"] = _params_data(probe.parameters)
            elif probe.command:
                health["command"] = list(probe.command)
            else:
                health["url"] = probe.url
            if probe.retries:
                health["retries"] = probe.retries
            if probe.interval_seconds != DEFAULT_INTERVAL_SECONDS:
                health["interval"] = format_seconds(probe.interval_seconds)
            out["health"] = health
    elif isinstance(action, WaitStep):
        if action.duration_seconds is not None:
            out["duration"] = format_seconds(action.duration_seconds)
        else:
            out["until"] = action.until
            out["target"] = action.target
            if action.timeout_seconds is not None:
                out["timeout"] = format_seconds(action.timeout_seconds)
    elif isinstance(action, ApproveStep):
        if action.approvers:
            out["approvers"] = list(action.approvers)
        if action.role:
            out["role"] = action.role
        if action.min_approvals != 1:
            out["min_approvals"] = action.min_approvals
        out["timeout"] = format_seconds(action.timeout_seconds)
        if action.message:
            out["message"] = action.message
    else:
        out["cases"] = [{"when": str(case.when), "goto": case.goto} for case in action.cases]
        if action.default is not None:
            out["default"] = action.default
    return out


def step_to_dict(step: Step) -> dict[str, Any]:
    """*step* as plain data (dicts, lists, text, numbers) in the form :func:`parse_steps` reads;
    optional fields at their defaults are left out."""
    out: dict[str, Any] = {"name": step.name, step.kind: _action_data(step.action)}
    if step.on_failure != ABORT:
        out["on_failure"] = step.on_failure
    if step.next is not None:
        out["next"] = step.next
    return out


def steps_to_data(steps: Iterable[Step]) -> list[dict[str, Any]]:
    """The ``steps:`` list of a runbook as plain data (``opsctl doc show``); ``parse_steps`` reads it back."""
    return [step_to_dict(step) for step in steps]


def referenced_documents(steps: Iterable[Step]) -> tuple[str, ...]:
    """The names of the documents run steps and their health probes run, in order, without repeats."""
    names: dict[str, None] = {}
    for step in steps:
        if isinstance(step.action, RunStep):
            names[step.action.document] = None
            if step.action.health is not None and step.action.health.document:
                names[step.action.health.document] = None
    return tuple(names)
