"""The steps of a runbook (common/runbooks.py): parsing, every refusal naming step and field, round trips."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from fleetops.common.errors import InvalidInput
from fleetops.common.runbooks import (
    MAX_STEPS,
    OUTPUTS,
    ApproveStep,
    BranchCase,
    BranchStep,
    Condition,
    HealthProbe,
    RunStep,
    Step,
    WaitStep,
    format_value,
    parse_condition,
    parse_steps,
    referenced_documents,
    step_to_dict,
    steps_to_data,
)

PARAMS = frozenset({"version", "target", "env"})

EXAMPLE = """\
steps:
  - name: deploy
    run:
      document: deploy-web
      parameters: {version: "{{ params.version }}"}
      target: "{{ params.target }}"
      batches: [1, "10%", "100%"]
      max_concurrency: "50"
      max_errors: "0"
      timeout: 10m
      health:
        document: web-health
        parameters: {}
        retries: 3
        interval: 5s
    on_failure: rollback
  - name: soak
    wait: {duration: 5m}
  - name: sign-off
    approve:
      approvers: [alice, bob]
      role: release-managers
      min_approvals: 1
      timeout: 1h
      message: "Deploy {{ params.version }} to the rest?"
    on_failure: abort
  - name: decide
    branch:
      cases:
        - when: "steps.deploy.failed > 0"
          goto: rollback
      default: end
  - name: rollback
    run:
      document: deploy-web:2
      parameters: {version: previous}
      target: role=web
    next: abort
"""


def example() -> list[Any]:
    steps = yaml.safe_load(EXAMPLE)["steps"]
    assert isinstance(steps, list)
    return steps


def run(**fields: Any) -> dict[str, Any]:
    """A run step named ``a`` with a document and a target unless given."""
    body: dict[str, Any] = {"document": "deploy-web", "target": "role=web", **fields}
    return {"name": "a", "run": body}


def expect_error(raw: Any, *fragments: str, params: frozenset[str] = PARAMS, hint: str = "") -> InvalidInput:
    """parse_steps refuses *raw* with a message holding every fragment (and the hint holding *hint*)."""
    with pytest.raises(InvalidInput) as caught:
        parse_steps(raw, params)
    for fragment in fragments:
        assert fragment in caught.value.message, (fragment, caught.value.message)
    assert hint in caught.value.hint, (hint, caught.value.hint)
    assert caught.value.hint, "every refusal says what to do"
    return caught.value


def check_round_trip(raw: list[Any], params: frozenset[str] = PARAMS) -> tuple[Step, ...]:
    steps = parse_steps(raw, params)
    data = steps_to_data(steps)
    assert parse_steps(data, params) == steps
    text = yaml.safe_dump(data, sort_keys=False)
    assert parse_steps(yaml.safe_load(text), params) == steps
    assert steps_to_data(parse_steps(data, params)) == data
    return steps


# ------------------------------------------------------------------------------------- the example


def test_the_example_parses_into_typed_steps() -> None:
    deploy, soak, sign_off, decide, rollback = parse_steps(example(), PARAMS)

    assert deploy == Step(
        name="deploy",
        action=RunStep(
            document="deploy-web",
            version=None,
            parameters=(("version", "{{ params.version }}"),),
            target="{{ params.target }}",
            batches=(1, "10%", "100%"),
            max_concurrency="50",
            max_errors="0",
            timeout_seconds=600,
            health=HealthProbe(document="web-health", retries=3, interval_seconds=5),
        ),
        on_failure="rollback",
    )
    assert soak == Step("soak", WaitStep(duration_seconds=300))
    assert sign_off == Step(
        "sign-off",
        ApproveStep(
            approvers=("alice", "bob"),
            role="release-managers",
            min_approvals=1,
            timeout_seconds=3600,
            message="Deploy {{ params.version }} to the rest?",
        ),
    )
    assert decide == Step(
        "decide", BranchStep((BranchCase(Condition("steps.deploy.failed", ">", "0"), "rollback"),), "end")
    )
    assert rollback.action == RunStep("deploy-web", 2, (("version", "previous"),), "role=web")
    assert rollback.next == "abort"
    assert [s.kind for s in (deploy, soak, sign_off, decide, rollback)] == ["run", "wait", "approve", "branch", "run"]


def test_defaults() -> None:
    (step,) = parse_steps([run()], PARAMS)
    assert step.on_failure == "abort"
    assert step.next is None
    assert isinstance(step.action, RunStep)
    assert step.action.batches == ("100%",)
    assert step.action.version is None
    assert (step.action.max_concurrency, step.action.max_errors, step.action.timeout_seconds) == ("", "", None)
    assert step.action.health is None
    (probe,) = parse_steps([run(health={"url": "http://127.0.0.1/healthz"})], PARAMS)
    assert isinstance(probe.action, RunStep) and probe.action.health is not None
    assert (probe.action.health.retries, probe.action.health.interval_seconds) == (0, 5)


def test_the_steps_are_immutable() -> None:
    step = parse_steps(example(), PARAMS)[0]
    with pytest.raises(AttributeError):
        step.name = "other"  # type: ignore[misc]  # frozen: the point of the test
    assert isinstance(step.action, RunStep)
    assert isinstance(step.action.parameters, tuple) and isinstance(step.action.batches, tuple)


def test_values_are_normalised() -> None:
    (step,) = parse_steps(
        [
            run(
                target="env = prod , role in (web,api)",
                max_concurrency=10,
                max_errors=" 5% ",
                batches=["5", " 50 % ", "100%"],
            )
        ],
        PARAMS,
    )
    assert isinstance(step.action, RunStep)
    assert step.action.target == "env=prod,role in (api,web)"
    assert (step.action.max_concurrency, step.action.max_errors) == ("10", "5%")
    assert step.action.batches == (5, "50%", "100%")


def test_parameter_values_of_every_type() -> None:
    params = {"text": "x", "count": 3, "flag": False, "items": ["a", "{{ params.env }}"]}
    (step,) = parse_steps([run(parameters=params)], PARAMS)
    assert isinstance(step.action, RunStep)
    assert step.action.parameters == (
        ("text", "x"),
        ("count", 3),
        ("flag", False),
        ("items", ("a", "{{ params.env }}")),
    )


# ------------------------------------------------------------------------------------- round trips


ROUND_TRIPS: list[list[Any]] = [
    example(),
    [run()],
    [
        run(
            document="probe:7",
            parameters={"n": 2, "on": True, "hosts": ["a", "b"], "s": "{{ params.env }}"},
            batches=["25%", 10, "50%", "100%"],
            max_concurrency="{{ params.version }}",
            timeout="1h30m",
            health={"command": ["curl", "-fsS", "http://localhost/{{ params.env }}"], "interval": "1m"},
        )
    ],
    [run(health={"url": "https://{{ params.env }}.example.com/health", "retries": 20})],
    [run(health={"document": "web-health:3", "parameters": {"port": 8080}})],
    [{"name": "w", "wait": {"until": "hosts_online", "target": "{{ params.target }}", "timeout": "15m"}}],
    [{"name": "w", "wait": {"until": "hosts_online", "target": "role=db", "timeout": "2d"}}],
    [{"name": "ok", "approve": {"role": "release-managers", "min_approvals": 3, "timeout": "7d"}}],
    [
        {"name": "first", "wait": {"duration": "1s"}, "on_failure": "continue"},
        {
            "name": "b",
            "branch": {
                "cases": [
                    {"when": "steps.first.status == 'timed out'", "goto": "first"},
                    {"when": 'params.env != "it\'s"', "goto": "abort"},
                    {"when": "params.version >= -3", "goto": "end"},
                    {"when": "params.env == ''", "goto": "last"},
                ]
            },
            "on_failure": "last",
        },
        {"name": "last", "wait": {"duration": "90s"}, "next": "first"},
    ],
]


@pytest.mark.parametrize("raw", ROUND_TRIPS, ids=range(len(ROUND_TRIPS)))
def test_round_trip(raw: list[Any]) -> None:
    before = copy.deepcopy(raw)
    check_round_trip(raw)
    assert raw == before, "parsing leaves its input alone"


def test_data_leaves_defaults_out() -> None:
    data = step_to_dict(parse_steps([run(batches=["100%"], max_errors="")], PARAMS)[0])
    assert data == {"name": "a", "run": {"document": "deploy-web", "target": "role=web"}}
    listed = steps_to_data(parse_steps(example(), PARAMS))
    assert listed[0]["run"]["timeout"] == "10m"
    assert listed[0]["run"]["health"] == {"document": "web-health", "retries": 3}
    assert listed[0]["on_failure"] == "rollback"
    assert listed[4]["run"]["document"] == "deploy-web:2"
    assert listed[3]["branch"] == {"cases": [{"when": "steps.deploy.failed > 0", "goto": "rollback"}], "default": "end"}


def test_referenced_documents_in_order_without_repeats() -> None:
    steps = parse_steps(
        [
            {**run(document="a:2", health={"document": "probe"}), "name": "one"},
            {"name": "two", "wait": {"duration": "1m"}},
            {**run(document="b", health={"url": "http://x/"}), "name": "three"},
            {**run(document="a:3", health={"document": "probe:2"}), "name": "four"},
        ],
        PARAMS,
    )
    assert referenced_documents(steps) == ("a", "probe", "b")
    assert referenced_documents(()) == ()


# ------------------------------------------------------------------------------------- templates


def test_templates_may_name_declared_parameters_and_earlier_outputs() -> None:
    raw: list[Any] = [
        {"name": "w", "wait": {"duration": "1m"}},
        {"name": "ok", "approve": {"approvers": ["alice"], "timeout": "1h"}},
        {"name": "b", "branch": {"cases": [{"when": "steps.w.status == done", "goto": "end"}]}},
        {**run(), "name": "r"},
    ]
    outputs = [
        f"{{{{ steps.{name}.{out} }}}}"
        for name, kind in (("w", "wait"), ("ok", "approve"), ("b", "branch"), ("r", "run"))
        for out in OUTPUTS[kind]
    ]
    raw.append({**run(parameters={"all": " ".join(outputs)}), "name": "last"})
    raw.append(
        {**run(target="{{params.target}}", parameters={"tight": "{{params.env}}-{{  params.version  }}"}), "name": "z"}
    )
    assert len(parse_steps(raw, PARAMS)) == 6


@pytest.mark.parametrize(
    ("text", "fragments", "hint"),
    [
        (
            "{{ params.verison }}",
            ["template '{{ params.verison }}'", "no parameter 'verison' is declared"],
            "did you mean params.version?",
        ),
        ("{{ params }}", ["not a reference"], "params.NAME"),
        ("{{ params.a.b }}", ["not a reference"], "params.NAME"),
        ("{{ env.HOME }}", ["not a reference"], "steps.STEP.OUTPUT"),
        ("{{ steps.later.status }}", ["step 'later' does not come before this one"], "listed before it"),
        ("{{ steps.a.status }}", ["step 'a' does not come before this one"], "listed before it"),
        ("{{ steps.nope.status }}", ["there is no step 'nope' before this one"], "listed before it"),
        ("{{ steps.w.stdout }}", ["a wait step has no output 'stdout'"], "its outputs are status"),
        ("{{ steps.w }}", ["not a reference"], ""),
        ("{{ }}", ["empty template"], "{{ params.NAME }}"),
        ("x {{ params.version", ["unclosed template"], "{{ params.NAME }}"),
        ("{{{ params.version }}}", ["bad template"], "{{ params.NAME }}"),
        ("{{ params.version }} and {{ params.x y }}", ["no parameter 'x y'"], ""),
    ],
)
def test_bad_templates_are_refused(text: str, fragments: list[str], hint: str) -> None:
    raw = [
        {"name": "w", "wait": {"duration": "1m"}},
        run(parameters={"p": text}),
        {"name": "later", "wait": {"duration": "1m"}},
    ]
    expect_error(raw, "steps[1] (a): run.parameters.p: ", *fragments, hint=hint)


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"target": "{{ params.nope }}"}, "run.target"),
        ({"max_concurrency": "{{ params.nope }}"}, "run.max_concurrency"),
        ({"max_errors": "{{ params.nope }}"}, "run.max_errors"),
        ({"parameters": {"list": ["ok", "{{ params.nope }}"]}}, "run.parameters.list[1]"),
        ({"health": {"command": ["check", "{{ params.nope }}"]}}, "run.health.command[1]"),
        ({"health": {"url": "http://{{ params.nope }}/"}}, "run.health.url"),
        ({"health": {"document": "h", "parameters": {"p": "{{ params.nope }}"}}}, "run.health.parameters.p"),
    ],
)
def test_every_templated_run_field_is_checked(fields: dict[str, Any], where: str) -> None:
    expect_error([run(**fields)], f"steps[0] (a): {where}: template '{{{{ params.nope }}}}'")


def test_wait_and_approve_templates_are_checked() -> None:
    expect_error(
        [{"name": "w", "wait": {"until": "hosts_online", "target": "{{ params.nope }}", "timeout": "1m"}}],
        "steps[0] (w): wait.target: template",
    )
    expect_error(
        [{"name": "ok", "approve": {"role": "ops", "timeout": "1h", "message": "go {{ steps.ok.status }}?"}}],
        "steps[0] (ok): approve.message: template",
        "does not come before",
    )


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"document": "{{ params.version }}"}, "run.document"),
        ({"timeout": "{{ params.version }}"}, "run.timeout"),
        ({"health": {"document": "{{ params.version }}"}}, "run.health.document"),
        ({"health": {"url": "http://x/", "interval": "{{ params.version }}"}}, "run.health.interval"),
    ],
)
def test_templates_are_refused_where_values_must_be_known_up_front(fields: dict[str, Any], where: str) -> None:
    expect_error([run(**fields)], f"steps[0] (a): {where} cannot hold a template", hint=f"write {where} literally")


# ------------------------------------------------------------------------------------- the list and the step


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        (None, ["steps: a runbook needs steps"]),
        ("deploy", ["steps must be a list of steps, got text"]),
        ({"name": "a"}, ["steps must be a list of steps, got a mapping"]),
        ([], ["steps is empty"]),
        ([{"name": f"s{i}", "wait": {"duration": "1s"}} for i in range(MAX_STEPS + 1)], ["51 steps, the limit is 50"]),
    ],
)
def test_the_list_of_steps(raw: Any, fragments: list[str]) -> None:
    expect_error(raw, *fragments)


def test_fifty_steps_are_allowed() -> None:
    raw = [{"name": f"s{i}", "wait": {"duration": "1s"}} for i in range(MAX_STEPS)]
    assert len(parse_steps(raw, PARAMS)) == MAX_STEPS


@pytest.mark.parametrize(
    ("raw", "fragments", "hint"),
    [
        (["deploy"], ["steps[0]: a step must be a mapping, got text"], "name: deploy"),
        ([{"run": {"document": "d", "target": "a"}}], ["steps[0]: name is required"], "name: deploy"),
        ([{"name": 3, "wait": {"duration": "1s"}}], ["steps[0]: name must be text, got a number"], "quote"),
        ([{"name": "Deploy", "wait": {"duration": "1s"}}], ["steps[0]: bad step name 'Deploy'"], "lower-case"),
        ([{"name": "-x", "wait": {"duration": "1s"}}], ["steps[0]: bad step name '-x'"], "lower-case"),
        ([{"name": "x" * 65, "wait": {"duration": "1s"}}], ["steps[0]: bad step name"], "1-64"),
        (
            [{"name": "end", "wait": {"duration": "1s"}}],
            ["steps[0] (end): the step name 'end' is reserved"],
            "end, abort",
        ),
        ([{"name": "abort", "wait": {"duration": "1s"}}], ["the step name 'abort' is reserved"], ""),
        ([{"name": "continue", "wait": {"duration": "1s"}}], ["the step name 'continue' is reserved"], ""),
        (
            [{"name": "a", "wait": {"duration": "1s"}}, {"name": "a", "wait": {"duration": "2s"}}],
            ["steps[1] (a): another step is named 'a'"],
            "its own name",
        ),
        (
            [{"name": "a", "wait": {"duration": "1s"}, "on_fail": "x"}],
            ["steps[0] (a): unknown key 'on_fail'"],
            "did you mean on_failure?",
        ),
        ([{"name": "a", "wait": {"duration": "1s"}, "x": 1, "y": 2}], ["unknown keys 'x', 'y'"], "a step takes name"),
        ([{"name": "a"}], ["steps[0] (a): a step does exactly one of run, wait, approve or branch"], "run:"),
        (
            [{"name": "a", "wait": {"duration": "1s"}, "approve": {"role": "x", "timeout": "1h"}}],
            ["this one has wait and approve"],
            "split it",
        ),
        ([{"name": "a", "wait": "5m"}], ["steps[0] (a): wait must be a mapping, got text"], "duration: 5m"),
    ],
)
def test_the_step(raw: Any, fragments: list[str], hint: str) -> None:
    expect_error(raw, *fragments, hint=hint)


# ------------------------------------------------------------------------------------- run


@pytest.mark.parametrize(
    ("fields", "fragments", "hint"),
    [
        ({"documnet": "x"}, ["run: unknown key 'documnet'"], "did you mean document?"),
        ({"document": None}, ["run.document is required"], "NAME:VERSION"),
        ({"document": 12}, ["run.document must be text, got a number"], "quote"),
        ({"document": "-bad"}, ["run.document: bad document name '-bad'"], "NAME:VERSION"),
        ({"document": "a" * 129}, ["run.document: bad document name"], ""),
        ({"document": "web:0"}, ["run.document: bad document version '0'"], "NAME:VERSION"),
        ({"document": "web:x"}, ["bad document version 'x'"], ""),
        ({"document": "web:"}, ["bad document version ''"], ""),
        ({"document": "web:1:2"}, ["bad document version '1:2'"], ""),
        ({"document": "web:\u00b2"}, ["bad document version"], ""),
        ({"document": "web:1234567890"}, ["bad document version '1234567890'"], ""),
        ({"parameters": ["a"]}, ["run.parameters must be a mapping, got a list"], "parameters:"),
        ({"parameters": {"1x": "a"}}, ["run.parameters: bad parameter name '1x'"], "starting with a letter"),
        ({"parameters": {True: "a"}}, ["run.parameters: bad parameter name True"], "quote it"),
        (
            {"parameters": {"f": 1.5}},
            ["run.parameters.f must be text, a whole number, a boolean or a list of text, got a number"],
            "",
        ),
        ({"parameters": {"f": None}}, ["run.parameters.f must be text", "got nothing"], ""),
        ({"parameters": {"f": {"a": 1}}}, ["got a mapping"], ""),
        ({"parameters": {"f": ["a", 2]}}, ["run.parameters.f[1] must be text, got a number"], "quote"),
        ({"parameters": {"f": ["a"] * 101}}, ["run.parameters.f: more than 100 items"], ""),
        ({"parameters": {"f": "a\0b"}}, ["run.parameters.f contains a NUL byte"], "remove"),
        ({"parameters": {"f": "é" * 2049}}, ["run.parameters.f is longer than 4096 bytes"], ""),
        ({"parameters": {f"p{i}": "x" for i in range(51)}}, ["run.parameters: more than 50 parameters"], ""),
        ({"target": None}, ["run.target is required"], "{{ params.target }}"),
        ({"target": 7}, ["run.target must be text, got a number"], ""),
        ({"target": ""}, ["run.target is empty"], "target: 'role=web'"),
        ({"target": "role=web,"}, ["run.target: bad selector at column 10"], "quote the selector"),
        ({"target": "role=web,,env=prod"}, ["run.target: bad selector"], ""),
        ({"target": "inv.nope=1"}, ["run.target: bad selector", "unknown inventory fact"], "inventory facts are"),
        (
            {"batches": "10%"},
            ["run.batches must be a list of cumulative sizes, got text"],
            "batches: [1, '10%', '100%']",
        ),
        ({"batches": []}, ["run.batches is empty"], "leave batches out"),
        ({"batches": [0, "100%"]}, ["run.batches[0]: 0 is out of range: from 1 to 1000000 hosts"], ""),
        ({"batches": [1_000_001, "100%"]}, ["run.batches[0]: 1000001 is out of range"], ""),
        ({"batches": ["0%", "100%"]}, ["run.batches[0]: 0% is out of range: from 1% to 100%"], ""),
        ({"batches": ["150%"]}, ["run.batches[0]: 150% is out of range"], ""),
        ({"batches": [5, 5, "100%"]}, ["run.batches[1]: 5 is not more than the 5 before it: sizes are cumulative"], ""),
        ({"batches": [5, "10%", 3, "100%"]}, ["run.batches[2]: 3 is not more than the 5 before it"], ""),
        ({"batches": ["50%", "10%", "100%"]}, ["run.batches[1]: 10% is not more than the 50% before it"], ""),
        ({"batches": ["100%", "100%"]}, ["run.batches[1]: 100% is not more than the 100% before it"], ""),
        (
            {"batches": [1, "10%"]},
            ["run.batches: the last batch must be '100%', not '10%'"],
            "end the list with '100%'",
        ),
        ({"batches": [1, 10]}, ["the last batch must be '100%', not 10"], ""),
        ({"batches": [True, "100%"]}, ["run.batches[0]: True is not a number of hosts or a percentage"], ""),
        ({"batches": ["ten", "100%"]}, ["run.batches[0]: 'ten' is not a number of hosts or a percentage"], ""),
        ({"batches": [1.5, "100%"]}, ["run.batches[0]: 1.5 is not"], ""),
        ({"batches": ["100%"] * 101}, ["run.batches: more than 100 batches"], ""),
        ({"max_concurrency": "0"}, ["run.max_concurrency: max-concurrency 0 would never run anything"], "from 1 to"),
        ({"max_concurrency": "5.5"}, ["run.max_concurrency: bad max-concurrency '5.5'"], ""),
        ({"max_errors": "101%"}, ["run.max_errors: max-errors 101% is out of range"], ""),
        ({"max_errors": True}, ["run.max_errors must be text, got a boolean"], "quote"),
        ({"timeout": "10x"}, ["run.timeout: bad duration '10x'"], "unit"),
        ({"timeout": 600}, ["run.timeout: 600 has no unit"], "timeout: 600s"),
        ({"timeout": "0s"}, ["run.timeout: 0s is out of range"], "from 1s to 7d"),
        ({"timeout": "500ms"}, ["run.timeout: 500ms is out of range"], ""),
        ({"timeout": "8d"}, ["run.timeout: 8d is out of range"], "7d"),
        ({"timeout": ""}, ["run.timeout: empty duration"], ""),
    ],
)
def test_run_refusals(fields: dict[str, Any], fragments: list[str], hint: str) -> None:
    error = expect_error([run(**fields)], *fragments, hint=hint)
    assert error.message.startswith("steps[0] (a): run"), error.message


@pytest.mark.parametrize(
    ("health", "fragments", "hint"),
    [
        ("http://x/", ["run.health must be a mapping, got text"], "health: {url:"),
        ({}, ["run.health needs exactly one of document, command or url"], "health: {command:"),
        ({"retries": 2}, ["run.health needs exactly one of document, command or url"], ""),
        (
            {"document": "h", "url": "http://x/"},
            ["needs exactly one of document, command or url; it has document and url"],
            "",
        ),
        (
            {"url": "http://x/", "parameters": {"a": "b"}},
            ["run.health.parameters only apply to a health document"],
            "remove parameters",
        ),
        ({"url": "http://x/", "timeout": "5s"}, ["run.health: unknown key 'timeout'"], "run.health takes document"),
        (
            {"command": "systemctl is-active nginx"},
            ["run.health.command must be a list of arguments, got text"],
            "[systemctl",
        ),
        ({"command": []}, ["run.health.command is empty"], ""),
        ({"command": ["check", 3]}, ["run.health.command[1] must be text, got a number"], "quote"),
        ({"command": [" ", "x"]}, ["run.health.command[0] is empty: it is the program to run"], ""),
        ({"command": ["x"] * 101}, ["run.health.command: more than 100 arguments"], ""),
        ({"url": "ftp://x/"}, ["run.health.url: 'ftp://x/' is not an http:// or https:// URL"], "http://127.0.0.1"),
        ({"url": "127.0.0.1:8080/healthz"}, ["is not an http:// or https:// URL"], ""),
        ({"url": "http://a b/"}, ["is not an http:// or https:// URL"], ""),
        ({"url": "http:///healthz"}, ["run.health.url: 'http:///healthz' names no host"], ""),
        ({"url": "http://[::1/"}, ["names no host"], ""),
        ({"url": "http://x/" + "a" * 2048}, ["run.health.url is longer than 2048 characters"], ""),
        ({"url": 80}, ["run.health.url must be text, got a number"], ""),
        ({"url": "http://x/", "retries": 21}, ["run.health.retries: 21 is out of range"], "from 0 to 20"),
        ({"url": "http://x/", "retries": -1}, ["run.health.retries: -1 is out of range"], ""),
        ({"url": "http://x/", "retries": "3"}, ["run.health.retries must be a whole number, got text"], "retries: 3"),
        ({"url": "http://x/", "interval": "2h"}, ["run.health.interval: 2h is out of range"], "from 1s to 1h"),
        ({"document": "h:0"}, ["run.health.document: bad document version '0'"], ""),
        ({"document": "h", "parameters": "x"}, ["run.health.parameters must be a mapping, got text"], ""),
    ],
)
def test_health_refusals(health: Any, fragments: list[str], hint: str) -> None:
    expect_error([run(health=health)], "steps[0] (a): ", *fragments, hint=hint)


# ------------------------------------------------------------------------------------- wait


@pytest.mark.parametrize(
    ("wait", "fragments", "hint"),
    [
        ({}, ["wait needs a duration or until"], "duration: 5m"),
        ({"duration": "5m", "until": "hosts_online"}, ["wait.duration cannot be combined with until"], ""),
        ({"duration": "5m", "target": "a", "timeout": "1m"}, ["cannot be combined with target, timeout"], ""),
        ({"duration": "0s"}, ["wait.duration: 0s is out of range"], ""),
        ({"duration": "8d"}, ["wait.duration: 8d is out of range"], ""),
        ({"duration": 300}, ["wait.duration: 300 has no unit"], "duration: 300s"),
        ({"durration": "5m"}, ["wait: unknown key 'durration'"], "did you mean duration?"),
        (
            {"until": "hosts_offline", "target": "a", "timeout": "1m"},
            ["wait.until: unknown condition 'hosts_offline'"],
            "hosts_online",
        ),
        ({"until": True}, ["wait.until must be text, got a boolean"], ""),
        ({"until": "hosts_online", "timeout": "1m"}, ["wait.target is required"], "target:"),
        ({"until": "hosts_online", "target": "a"}, ["wait.timeout is required with until"], "timeout: 15m"),
        ({"until": "hosts_online", "target": "a b", "timeout": "1m"}, ["wait.target: bad selector"], ""),
        ({"target": "a", "timeout": "1m"}, ["wait needs a duration or until"], ""),
    ],
)
def test_wait_refusals(wait: Any, fragments: list[str], hint: str) -> None:
    expect_error([{"name": "w", "wait": wait}], "steps[0] (w): ", *fragments, hint=hint)


# ------------------------------------------------------------------------------------- approve


@pytest.mark.parametrize(
    ("approve", "fragments", "hint"),
    [
        ({"timeout": "1h"}, ["approve needs approvers or a role"], "approvers: [alice, bob]"),
        ({"approvers": [], "timeout": "1h"}, ["approve needs approvers or a role"], ""),
        ({"approvers": "alice", "timeout": "1h"}, ["approve.approvers must be a list, got text"], "[alice, bob]"),
        (
            {"approvers": ["Alice"], "timeout": "1h"},
            ["approve.approvers[0]: 'Alice' is not an operator name"],
            "lower-case",
        ),
        ({"approvers": ["alice", 7], "timeout": "1h"}, ["approve.approvers[1] must be text, got a number"], ""),
        ({"approvers": ["alice", "alice"], "timeout": "1h"}, ["approve.approvers[1]: 'alice' is listed twice"], ""),
        ({"approvers": [f"u{i}" for i in range(51)], "timeout": "1h"}, ["approve.approvers: more than 50"], "role"),
        ({"role": "-ops", "timeout": "1h"}, ["approve.role: bad role name '-ops'"], ""),
        ({"role": ["ops"], "timeout": "1h"}, ["approve.role must be text, got a list"], ""),
        (
            {"approvers": ["alice"], "min_approvals": 2, "timeout": "1h"},
            ["approve.min_approvals: 2 is more than the 1 approvers listed"],
            "add a role",
        ),
        ({"role": "ops", "min_approvals": 0, "timeout": "1h"}, ["approve.min_approvals: 0 is out of range"], ""),
        (
            {"role": "ops", "min_approvals": "2", "timeout": "1h"},
            ["approve.min_approvals must be a whole number, got text"],
            "",
        ),
        ({"role": "ops"}, ["approve.timeout is required"], "timeout: 1h"),
        ({"role": "ops", "timeout": "8d"}, ["approve.timeout: 8d is out of range"], ""),
        (
            {"role": "ops", "timeout": "1h", "message": "x" * 1025},
            ["approve.message is longer than 1024 characters"],
            "",
        ),
        ({"role": "ops", "timeout": "1h", "message": 5}, ["approve.message must be text, got a number"], ""),
        (
            {"role": "ops", "timeout": "1h", "approver": ["a"]},
            ["approve: unknown key 'approver'"],
            "did you mean approvers?",
        ),
    ],
)
def test_approve_refusals(approve: Any, fragments: list[str], hint: str) -> None:
    expect_error([{"name": "ok", "approve": approve}], "steps[0] (ok): ", *fragments, hint=hint)


def test_min_approvals_with_a_role_may_exceed_the_listed_approvers() -> None:
    (step,) = parse_steps(
        [{"name": "ok", "approve": {"approvers": ["alice"], "role": "ops", "min_approvals": 3, "timeout": "1h"}}],
        PARAMS,
    )
    assert step.action == ApproveStep(("alice",), "ops", 3, 3600, "")


# ------------------------------------------------------------------------------------- branch


def branch(*cases: Any, default: Any = None, **extra: Any) -> list[Any]:
    body: dict[str, Any] = {"cases": list(cases)}
    if default is not None:
        body["default"] = default
    return [
        {"name": "deploy", "run": {"document": "d", "target": "a"}},
        {"name": "b", "branch": body, **extra},
        {"name": "rollback", "wait": {"duration": "1s"}},
    ]


@pytest.mark.parametrize(
    ("raw", "fragments", "hint"),
    [
        ([{"name": "b", "branch": {"default": "end"}}], ["steps[0] (b): branch.cases is required"], "cases:"),
        ([{"name": "b", "branch": {"cases": {"when": "x"}}}], ["branch.cases must be a list, got a mapping"], ""),
        ([{"name": "b", "branch": {"cases": []}}], ["branch.cases is empty"], ""),
        (branch("x"), ["steps[1] (b): branch.cases[0] must be a mapping, got text"], "goto: rollback"),
        (branch({"goto": "end"}), ["branch.cases[0].when is required"], "REF OP LITERAL"),
        (branch({"when": "params.env == x"}), ["branch.cases[0].goto is required"], "end or abort"),
        (branch({"when": "params.env == x", "goto": "end", "then": 1}), ["branch.cases[0]: unknown key 'then'"], ""),
        (
            branch({"when": "params.env == x", "goto": "end"}, {"when": "params.env", "goto": "end"}),
            ["branch.cases[1].when: 'params.env' is not REF OP LITERAL"],
            "OP is one of",
        ),
        (branch({"when": "params.env = prod", "goto": "end"}), ["compare with == rather than ="], ""),
        (branch({"when": "params.env ==", "goto": "end"}), ["expected a value after =="], ""),
        (branch({"when": "params.env == 'prod", "goto": "end"}), ["the quoted value 'prod is not closed by one '"], ""),
        (branch({"when": "params.env == 'a'b'", "goto": "end"}), ["is not closed by one '"], ""),
        (branch({"when": "params.env == two words", "goto": "end"}), ["quote a value with spaces or quotes in it"], ""),
        (branch({"when": "{{ params.env }} == x", "goto": "end"}), ["write references without braces"], ""),
        (branch({"when": "params.env == " + "x" * 257, "goto": "end"}), ["longer than 256 characters"], ""),
        (branch({"when": 1, "goto": "end"}), ["branch.cases[0].when must be text, got a number"], ""),
        (
            branch({"when": "params.nope == x", "goto": "end"}),
            ["branch.cases[0].when: params.nope: no parameter 'nope' is declared"],
            "declare it",
        ),
        (
            branch({"when": "steps.rollback.status == x", "goto": "end"}),
            ["steps.rollback.status: step 'rollback' does not come before"],
            "",
        ),
        (branch({"when": "steps.b.status == x", "goto": "end"}), ["step 'b' does not come before this one"], ""),
        (
            branch({"when": "steps.deploy.faild > 0", "goto": "end"}),
            ["a run step has no output 'faild'"],
            "did you mean failed?",
        ),
        (branch({"when": "deploy.failed > 0", "goto": "end"}), ["deploy.failed: not a reference"], "steps.STEP.OUTPUT"),
        (
            branch({"when": "params.env == x", "goto": "nowhere"}),
            ["steps[1] (b): branch.cases[0].goto: no step is named 'nowhere'"],
            "goto is end, abort or the name",
        ),
        (
            branch({"when": "params.env == x", "goto": "rolback"}),
            ["no step is named 'rolback'"],
            "did you mean rollback?",
        ),
        (branch({"when": "params.env == x", "goto": "b"}), ["branch.cases[0].goto: a step cannot go to itself"], ""),
        (branch({"when": "params.env == x", "goto": "continue"}), ["branch.cases[0].goto cannot be continue"], ""),
        (branch({"when": "params.env == x", "goto": 3}), ["branch.cases[0].goto must be text"], ""),
        (
            branch({"when": "params.env == x", "goto": "end"}, default="elsewhere"),
            ["branch.default: no step is named 'elsewhere'"],
            "",
        ),
        (
            branch({"when": "params.env == x", "goto": "end"}, next="end"),
            ["next does not apply to a branch"],
            "branch.default",
        ),
        (
            [{"name": "b", "branch": {"cases": [{"when": "params.env == x", "goto": "end"}] * 21}}],
            ["branch.cases: more than 20 cases"],
            "",
        ),
    ],
)
def test_branch_refusals(raw: Any, fragments: list[str], hint: str) -> None:
    expect_error(raw, *fragments, hint=hint)


def test_a_goto_may_jump_backwards_and_to_end_or_abort() -> None:
    steps = parse_steps(
        branch(
            {"when": "steps.deploy.failed > 0", "goto": "deploy"},
            {"when": "steps.deploy.status == ok", "goto": "end"},
            {"when": "params.env == x", "goto": "abort"},
            {"when": "params.env == x", "goto": "rollback"},
            default="deploy",
        ),
        PARAMS,
    )
    assert isinstance(steps[1].action, BranchStep)
    assert [c.goto for c in steps[1].action.cases] == ["deploy", "end", "abort", "rollback"]
    assert steps[1].action.default == "deploy"


@pytest.mark.parametrize(
    ("text", "condition"),
    [
        ("steps.deploy.failed > 0", Condition("steps.deploy.failed", ">", "0")),
        ("steps.deploy.failed>=10", Condition("steps.deploy.failed", ">=", "10")),
        ("  params.env   !=   prod  ", Condition("params.env", "!=", "prod")),
        ("params.env <= -5", Condition("params.env", "<=", "-5")),
        ("params.env < 5", Condition("params.env", "<", "5")),
        ("params.env == 'two words'", Condition("params.env", "==", "two words")),
        ('params.env == "it\'s"', Condition("params.env", "==", "it's")),
        ("params.env == ''", Condition("params.env", "==", "")),
        ("params.env == ==x", Condition("params.env", "==", "==x")),
    ],
)
def test_conditions(text: str, condition: Condition) -> None:
    assert parse_condition(text) == condition
    assert parse_condition(str(condition)) == condition


# ------------------------------------------------------------------------------------- where steps go


@pytest.mark.parametrize(
    ("extra", "fragments", "hint"),
    [
        ({"on_failure": "rolback"}, ["steps[0] (a): on_failure: no step is named 'rolback'"], "did you mean rollback?"),
        ({"on_failure": "a"}, ["on_failure: a step cannot go to itself"], "on_failure is abort, continue or the name"),
        ({"on_failure": "end"}, ["on_failure cannot be end"], "abort, continue"),
        ({"on_failure": 1}, ["on_failure must be text, got a number"], ""),
        ({"next": "nowhere"}, ["steps[0] (a): next: no step is named 'nowhere'"], "next is end, abort"),
        ({"next": "continue"}, ["next cannot be continue"], ""),
        ({"next": "a"}, ["next: a step cannot go to itself"], ""),
        ({"next": ["rollback"]}, ["next must be text, got a list"], ""),
    ],
)
def test_destinations(extra: dict[str, Any], fragments: list[str], hint: str) -> None:
    raw = [{**run(), **extra}, {"name": "rollback", "wait": {"duration": "1s"}}]
    expect_error(raw, *fragments, hint=hint)


def test_destinations_may_point_anywhere_else() -> None:
    raw = [
        {"name": "one", "wait": {"duration": "1s"}, "on_failure": "three", "next": "three"},
        {"name": "two", "wait": {"duration": "1s"}, "on_failure": "continue", "next": "end"},
        {"name": "three", "wait": {"duration": "1s"}, "on_failure": "one", "next": "abort"},
    ]
    steps = check_round_trip(raw)
    assert [(s.on_failure, s.next) for s in steps] == [("three", "three"), ("continue", "end"), ("one", "abort")]


def test_format_value() -> None:
    assert format_value(["a", "b"]) == "a,b"
    assert format_value(("a",)) == "a"
    assert format_value([]) == ""
    assert format_value(True) == "true"
    assert format_value(False) == "false"
    assert format_value([True, 3]) == "true,3"
    assert format_value(42) == "42"
    assert format_value("x") == "x"
