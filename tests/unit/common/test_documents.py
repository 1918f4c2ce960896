"""Documents (common/documents.py): the format, errors naming the field, parameters as data."""

from __future__ import annotations

import json

import pytest

from fleetops.common import documents
from fleetops.common.documents import BUILTIN_DOCUMENTS, Document, Parameter, Scripts, parse, split_reference
from fleetops.common.errors import InvalidInput

FULL = """\
description: Restart a systemd service
parameters:
  service:
    type: string
    description: the unit to restart
    pattern: '^[A-Za-z0-9@._-]+$'
    default: nginx
  attempts: {type: integer, allowed: [1, 2, 3], default: 1}
  force: {type: boolean, description: kill it first, default: false}
  extra_units:
    type: string_list
    description: more units to restart
    pattern: '[a-z]+'
    default: [redis, cron]
  reason: {description: 'why, for the journal'}
run:
  shell: |
    systemctl restart "$FLEETOPS_PARAM_SERVICE"
  powershell: |
    Restart-Service -Name $env:FLEETOPS_PARAM_SERVICE
check:
  shell: systemctl is-active --quiet "$FLEETOPS_PARAM_SERVICE"
timeout: 10m
"""

HOSTILE = "x; rm -rf / $(id) `id` \"'\\ \n\t$FLEETOPS_PARAM_SERVICE %PATH% ${IFS}"


def invalid(text: str, source: str = "restart.yaml") -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse(text, source)
    return caught.value


def refused(doc: Document, given: dict[str, object]) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        doc.resolve(given)
    return caught.value


def with_params(params: str) -> Document:
    return parse(f"parameters:\n{params}run: echo hi\n")


# -- parsing ----------------------------------------------------------------------------------------


def test_a_full_document_parses_into_its_fields() -> None:
    doc = parse(FULL)
    assert doc.description == "Restart a systemd service"
    assert doc.kind == "command"
    assert doc.action == "" and doc.steps == ()
    assert doc.timeout_seconds == 600
    assert doc.run == Scripts(
        shell='systemctl restart "$FLEETOPS_PARAM_SERVICE"\n',
        powershell="Restart-Service -Name $env:FLEETOPS_PARAM_SERVICE\n",
    )
    assert doc.check == Scripts(shell='systemctl is-active --quiet "$FLEETOPS_PARAM_SERVICE"')
    assert [p.name for p in doc.parameters] == ["service", "attempts", "force", "extra_units", "reason"]
    assert doc.parameter("service") == Parameter(
        "service", "string", "the unit to restart", "nginx", (), "^[A-Za-z0-9@._-]+$"
    )
    assert doc.parameter("attempts") == Parameter("attempts", "integer", "", 1, (1, 2, 3), "")
    force = doc.parameter("force")
    assert force is not None and force.type == "boolean" and force.default is False and not force.required
    extra = doc.parameter("extra_units")
    assert extra is not None and extra.type == "string_list" and extra.default == ("redis", "cron")
    reason = doc.parameter("reason")
    assert reason is not None and reason.type == "string" and reason.required
    assert doc.parameter("nope") is None


def test_a_run_given_as_text_is_the_shell_script_and_the_timeout_is_optional() -> None:
    doc = parse("run: uptime\n")
    assert doc.run == Scripts(shell="uptime")
    assert doc.run.for_platform(windows=False) == "uptime" and doc.run.for_platform(windows=True) == ""
    assert doc.check is None and doc.timeout_seconds == 0 and doc.parameters == () and doc.description == ""


def test_a_document_naming_a_built_in_action_is_of_kind_action() -> None:
    doc = parse("description: scan\naction: patch.scan\n")
    assert doc.kind == "action" and doc.action == "patch.scan" and doc.run is None


def test_json_documents_parse_like_yaml() -> None:
    text = json.dumps(
        {
            "description": "Restart",
            "parameters": {"service": {"type": "string", "default": "nginx"}},
            "run": {"shell": 'systemctl restart "$FLEETOPS_PARAM_SERVICE"\n'},
            "timeout": "90s",
        }
    )
    doc = parse(text)
    assert doc.kind == "command" and doc.timeout_seconds == 90
    assert doc.parameter("service") == Parameter("service", default="nginx")
    assert doc.run == Scripts(shell='systemctl restart "$FLEETOPS_PARAM_SERVICE"\n')


# -- parse errors name the field ------------------------------------------------------------------


def test_an_unknown_top_level_key_is_named_with_a_close_match() -> None:
    error = invalid("paramters: {}\nrun: echo\n")
    assert error.message.startswith("restart.yaml: ")
    assert "unknown key(s): paramters" in error.message
    assert "did you mean parameters?" in error.hint


def test_an_unknown_parameter_key_is_named_under_its_parameter() -> None:
    error = invalid("parameters:\n  service: {defualt: nginx}\nrun: echo\n")
    assert "parameters.service: unknown key(s): defualt" in error.message
    assert "did you mean default?" in error.hint


@pytest.mark.parametrize("name", ["1service", "my-service", "ünit", "a" * 65, "_x"])
def test_a_bad_parameter_name_is_refused(name: str) -> None:
    error = invalid(json.dumps({"parameters": {name: {}}, "run": "echo"}))
    assert "parameters: bad parameter name" in error.message and repr(name) in error.message


@pytest.mark.parametrize(
    ("declaration", "field", "words"),
    [
        ("{type: int}", "parameters.p.type", "unknown type 'int'"),
        ("{type: integer, pattern: '[0-9]+'}", "parameters.p.pattern", "applies to string and string_list"),
        ("{type: boolean, pattern: 'true'}", "parameters.p.pattern", "applies to string and string_list"),
        ("{pattern: '[a-z'}", "parameters.p.pattern", "not a regular expression"),
        ("{type: integer, allowed: [1, two]}", "parameters.p.allowed", "expected an integer"),
        ("{type: boolean, allowed: [maybe]}", "parameters.p.allowed", "expected true or false"),
        ("{allowed: [a, [b]]}", "parameters.p.allowed", "expected text, got a list"),
        ("{allowed: a}", "parameters.p.allowed", "a list of at most"),
        ("{allowed: [a, b], default: c}", "parameters.p.default", "is not one of the allowed values"),
        ("{pattern: '^[a-z]+$', default: Nginx}", "parameters.p.default", "does not match the pattern"),
        ("{type: integer, default: many}", "parameters.p.default", "expected an integer"),
        ("{type: string_list, pattern: '[a-z]+', default: [ok, BAD]}", "parameters.p.default", "does not match"),
        ("{description: [not, text]}", "parameters.p.description", "text of at most"),
        ("[string]", "parameters.p", "a parameter is a mapping"),
    ],
)
def test_a_bad_parameter_declaration_names_the_field(declaration: str, field: str, words: str) -> None:
    error = invalid(f"parameters:\n  p: {declaration}\nrun: echo\n")
    assert f"restart.yaml: {field}" in error.message
    assert words in error.message


def test_a_default_outside_the_allowed_values_lists_them_in_the_hint() -> None:
    error = invalid("parameters:\n  mode: {allowed: [fast, safe], default: reckless}\nrun: echo\n")
    assert '"reckless" is not one of the allowed values' in error.message
    assert error.hint == 'allowed: "fast", "safe"'


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("run: echo\naction: patch.scan\n", "this one has run, action"),
        ("description: nothing to do\n", "a document runs exactly one of: run (scripts), action"),
        ("action: patch.sacn\n", "action: unknown action 'patch.sacn'"),
        ("run: ''\n", "run: no script"),
        ("run: {}\n", "run: no script"),
        ("run: {shell: '', powershell: ''}\n", "run: no script"),
        ("run: {bash: echo}\n", "run: unknown key(s): bash"),
        ("run: [echo, hi]\n", "run: expected a mapping of shell and/or powershell scripts"),
        ("run: {shell: [echo]}\n", "run.shell: a script is text"),
        ('run: {shell: "echo \\0 hi"}\n', "run.shell: the script contains a NUL byte"),
        ('run: echo\ncheck: {powershell: "Get-Item \\0"}\n', "check.powershell: the script contains a NUL byte"),
        ("run: echo\ncheck: {zsh: test}\n", "check: unknown key(s): zsh"),
        ("run: echo\ntimeout: 8d\n", "timeout: 8d is out of range"),
        ("run: echo\ntimeout: 0s\n", "timeout: 0s is out of range"),
        ("run: echo\ntimeout: 600\n", "timeout: a duration such as 10m, got a number"),
        ("description: [a]\nrun: echo\n", "description: text of at most"),
        ("parameters: [a, b]\nrun: echo\n", "parameters: a mapping of names to declarations"),
        ("- run: echo\n", "a document is a mapping, got a list"),
    ],
)
def test_a_bad_document_names_the_field(body: str, words: str) -> None:
    error = invalid(body)
    assert error.message.startswith("restart.yaml: ")
    assert words in error.message


def test_an_unparsable_timeout_names_the_timeout_field() -> None:
    error = invalid("run: echo\ntimeout: soon\n")
    assert "bad duration 'soon'" in error.message
    assert "timeout" in error.message  # the field, as every other error of parse() names it


def test_a_nul_byte_in_json_script_is_refused() -> None:
    error = invalid(json.dumps({"run": {"powershell": "Write-Output \u0000"}}))
    assert "run.powershell: the script contains a NUL byte" in error.message


@pytest.mark.parametrize("key", ["parameters", "run"])
def test_a_key_given_twice_in_yaml_is_refused_naming_it(key: str) -> None:
    text = "parameters: {a: {}}\nrun: echo $FLEETOPS_PARAM_A\n" + (
        "parameters: {}\n" if key == "parameters" else "run: rm -rf /tmp/x\n"
    )
    error = invalid(text)
    assert f"key '{key}' is given twice" in error.message
    assert "line 3" in error.message
    assert error.hint == "give each key once"


def test_a_key_given_twice_in_a_parameter_or_in_json_is_refused() -> None:
    assert "key 'default' is given twice" in invalid("parameters:\n  a: {default: x, default: y}\nrun: echo\n").message
    error = invalid('{"run": "echo", "run": "rm -rf /"}')
    assert "not valid JSON" in error.message and "key 'run' is given twice" in error.message


def test_an_oversized_document_is_refused_before_it_is_parsed() -> None:
    script = "echo " + "x" * documents.MAX_DOCUMENT_BYTES
    error = invalid(f"run: |\n  {script}\n")
    assert "larger than 256 KiB" in error.message
    assert parse(f"run: echo {'x' * 200_000}\n").run is not None  # below the limit it is fine


def test_parameters_that_would_be_the_same_variable_are_refused() -> None:
    error = invalid("parameters:\n  service: {}\n  SERVICE: {}\nrun: echo\n")
    assert "parameters: service and SERVICE are the same variable FLEETOPS_PARAM_SERVICE" in error.message
    error = invalid("parameters:\n  a: {}\n  A: {}\nrun: echo\n")
    assert "FLEETOPS_PARAM_A" in error.message


# -- resolving parameters ---------------------------------------------------------------------------


def test_an_unknown_parameter_is_refused_with_a_close_match() -> None:
    error = refused(parse(FULL), {"servce": "nginx"})
    assert error.message == "unknown parameter 'servce'"
    assert error.hint.startswith("did you mean service? its parameters are service, attempts")
    assert refused(parse("run: echo\n"), {"x": "1"}).hint == "it takes no parameters"


def test_a_missing_required_parameter_says_how_to_give_it() -> None:
    error = refused(parse(FULL), {})
    assert error.message == "parameter reason is required"
    assert error.hint == "add --param reason=VALUE (why, for the journal)"


def test_defaults_are_filled_in_and_given_values_win() -> None:
    doc = parse(FULL)
    assert doc.resolve({"reason": "stuck"}) == {
        "service": "nginx",
        "attempts": 1,
        "force": False,
        "extra_units": ("redis", "cron"),
        "reason": "stuck",
    }
    values = doc.resolve({"reason": "r", "service": "sshd", "attempts": "3", "force": "yes", "extra_units": "a,b"})
    assert values == {"service": "sshd", "attempts": 3, "force": True, "extra_units": ("a", "b"), "reason": "r"}


def test_falsy_defaults_are_defaults_not_missing_values() -> None:
    doc = with_params(
        "  n: {type: integer, default: 0}\n  b: {type: boolean, default: false}\n"
        "  s: {default: ''}\n  l: {type: string_list, default: []}\n"
    )
    assert doc.resolve({}) == {"n": 0, "b": False, "s": "", "l": ()}
    assert doc.environment(doc.resolve({})) == {
        "FLEETOPS_PARAM_N": "0",
        "FLEETOPS_PARAM_B": "false",
        "FLEETOPS_PARAM_S": "",
        "FLEETOPS_PARAM_L": "[]",
    }


@pytest.mark.parametrize(
    ("text", "value"), [("-3", -3), ("0", 0), (" 42 ", 42), ("123456789012345678", 123456789012345678)]
)
def test_integers_are_read_from_command_line_text(text: str, value: int) -> None:
    assert with_params("  n: {type: integer}\n").resolve({"n": text}) == {"n": value}


@pytest.mark.parametrize("text", ["3.5", "three", "", "0x10", "1e3", "1234567890123456789"])
def test_text_that_is_no_integer_is_refused(text: str) -> None:
    error = refused(with_params("  n: {type: integer}\n"), {"n": text})
    assert error.message.startswith("parameter n: expected an integer")


def test_a_yaml_boolean_is_no_integer() -> None:
    assert "got a boolean" in refused(with_params("  n: {type: integer}\n"), {"n": True}).message


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", True),
        ("no", False),
        ("true", True),
        ("false", False),
        ("1", True),
        ("0", False),
        ("TRUE", True),
        (False, False),
    ],
)
def test_booleans_are_read_from_command_line_text(text: object, value: bool) -> None:
    assert with_params("  b: {type: boolean}\n").resolve({"b": text}) == {"b": value}


@pytest.mark.parametrize("text", ["maybe", "", "2", 1])
def test_anything_else_is_no_boolean(text: object) -> None:
    error = refused(with_params("  b: {type: boolean}\n"), {"b": text})
    assert error.message.startswith("parameter b: expected true or false")


@pytest.mark.parametrize(
    ("given", "value"),
    [
        ("a,b", ("a", "b")),
        (" a , b ", ("a", "b")),
        ('["a","b"]', ("a", "b")),
        ('["a, b", "c"]', ("a, b", "c")),
        (["a", "b"], ("a", "b")),
        ("", ()),
        ("single", ("single",)),
    ],
)
def test_string_lists_are_read_from_text_json_or_yaml_lists(given: object, value: tuple[str, ...]) -> None:
    assert with_params("  l: {type: string_list}\n").resolve({"l": given}) == {"l": value}


@pytest.mark.parametrize(("given", "words"), [('["a",', "is not a JSON array"), ("[1, 2]", "1 is a number, not text")])
def test_a_malformed_string_list_is_refused(given: str, words: str) -> None:
    assert words in refused(with_params("  l: {type: string_list}\n"), {"l": given}).message


def test_a_yaml_number_is_accepted_as_text_but_a_list_is_not() -> None:
    doc = with_params("  s: {}\n")
    assert doc.resolve({"s": 8080}) == {"s": "8080"}
    assert "expected text, got a list" in refused(doc, {"s": ["a"]}).message


def test_allowed_values_apply_to_each_list_item() -> None:
    doc = with_params("  envs: {type: string_list, allowed: [dev, staging, prod]}\n")
    assert doc.resolve({"envs": "dev,prod"}) == {"envs": ("dev", "prod")}
    error = refused(doc, {"envs": "dev,qa"})
    assert error.message == 'parameter envs: "qa" is not one of the allowed values'
    assert error.hint == 'allowed: "dev", "staging", "prod"'


def test_allowed_integers_are_compared_after_coercion() -> None:
    doc = with_params("  n: {type: integer, allowed: [1, 2]}\n")
    assert doc.resolve({"n": "2"}) == {"n": 2}
    assert "is not one of the allowed values" in refused(doc, {"n": "3"}).message


def test_the_pattern_must_match_each_whole_list_item() -> None:
    doc = with_params("  units: {type: string_list, pattern: '[a-z]+', description: lower-case unit names}\n")
    assert doc.resolve({"units": "nginx,cron"}) == {"units": ("nginx", "cron")}
    error = refused(doc, {"units": "nginx,cron; reboot"})
    assert error.message == "parameter units: \"cron; reboot\" does not match the pattern '[a-z]+'"
    assert error.hint == "lower-case unit names"
    # the whole value, not a part of it, even with ^...$ and a trailing newline
    anchored = with_params("  s: {pattern: '^[a-z]+$'}\n")
    assert "does not match" in refused(anchored, {"s": "abc\n"}).message
    assert "does not match" in refused(anchored, {"s": "abc def"}).message


def test_a_nul_byte_in_a_value_is_refused() -> None:
    doc = with_params("  s: {}\n  l: {type: string_list}\n")
    assert refused(doc, {"s": "a\0b", "l": ""}).message == "parameter s: the value contains a NUL byte"
    assert refused(doc, {"s": "a", "l": ["ok", "b\0"]}).message == "parameter l: the value contains a NUL byte"


def test_a_value_over_4_kib_is_refused() -> None:
    doc = with_params("  s: {}\n")
    assert doc.resolve({"s": "x" * 4096}) == {"s": "x" * 4096}
    error = refused(doc, {"s": "x" * 4097})
    assert error.message == "parameter s: the value is longer than 4096 bytes"
    assert doc.resolve({"s": "é" * 2048}) == {"s": "é" * 2048}  # 4096 bytes: fine
    assert "longer than 4096 bytes" in refused(doc, {"s": "é" * 2049}).message  # counted in UTF-8 bytes


def test_a_list_of_too_many_items_is_refused() -> None:
    doc = with_params("  l: {type: string_list}\n")
    assert len(doc.resolve({"l": ["x"] * 100})["l"]) == 100
    assert "more than 100 items" in refused(doc, {"l": ["x"] * 101}).message


# -- environment --------------------------------------------------------------------------------


def test_the_environment_has_one_variable_per_parameter() -> None:
    doc = parse(FULL)
    values = doc.resolve({"reason": "stuck", "extra_units": ["web", "db"], "attempts": "2", "force": "on"})
    assert doc.environment(values) == {
        "FLEETOPS_PARAM_SERVICE": "nginx",
        "FLEETOPS_PARAM_ATTEMPTS": "2",
        "FLEETOPS_PARAM_FORCE": "true",
        "FLEETOPS_PARAM_EXTRA_UNITS": '["web","db"]',
        "FLEETOPS_PARAM_REASON": "stuck",
    }


def test_a_list_is_compact_json_keeping_quotes_and_non_ascii_text() -> None:
    doc = with_params("  service_names: {type: string_list}\n")
    env = doc.environment(doc.resolve({"service_names": ["ünit", 'a"b', "c,d"]}))
    assert env == {"FLEETOPS_PARAM_SERVICE_NAMES": '["ünit","a\\"b","c,d"]'}
    assert json.loads(env["FLEETOPS_PARAM_SERVICE_NAMES"]) == ["ünit", 'a"b', "c,d"]


def test_a_hostile_value_reaches_the_script_as_its_variable_byte_for_byte() -> None:
    doc = parse(FULL)
    env = doc.environment(doc.resolve({"reason": HOSTILE}))
    assert env["FLEETOPS_PARAM_REASON"] == HOSTILE
    assert env["FLEETOPS_PARAM_REASON"].encode() == HOSTILE.encode()
    # the scripts are the document's, untouched by any value
    assert doc.run is not None and HOSTILE not in doc.run.shell and "rm -rf" not in doc.run.powershell


def test_a_hostile_list_item_is_kept_whole_in_the_json_array() -> None:
    doc = with_params("  l: {type: string_list}\n")
    env = doc.environment(doc.resolve({"l": [HOSTILE, "b"]}))
    assert json.loads(env["FLEETOPS_PARAM_L"]) == [HOSTILE, "b"]


# -- references ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("restart-web", ("restart-web", None)),
        ("restart-web:3", ("restart-web", 3)),
        ("fleetops-PatchScan:1", ("fleetops-PatchScan", 1)),
        ("a", ("a", None)),
        ("v1.2_x:999999999", ("v1.2_x", 999999999)),
    ],
)
def test_a_reference_is_a_name_and_an_optional_version(text: str, expected: tuple[str, int | None]) -> None:
    assert split_reference(text) == expected


@pytest.mark.parametrize("version", ["0", "-1", "x", "", "1234567890", "3:4", " 3", "+3"])
def test_a_bad_version_is_refused(version: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        split_reference(f"web:{version}")
    assert caught.value.message == f"bad document version {version!r} in {'web:' + version!r}"
    assert "NAME:VERSION" in caught.value.hint


@pytest.mark.parametrize(
    "version", ["²", "³2", "1" * 5000], ids=["superscript-2", "superscript-3-then-2", "5000-digits"]
)
def test_a_version_that_is_no_decimal_number_is_refused_as_input_not_a_crash(version: str) -> None:
    # str.isdigit() accepts these, but int() cannot read them: a ValueError would escape as an
    # internal error from opsctl doc run / RunDocument instead of "bad document version".
    with pytest.raises(InvalidInput, match="bad document version"):
        split_reference("web:" + version)


@pytest.mark.parametrize("name", ["", "-web", ".web", "web app", "web/1", "a" * 129, "wéb", ":3"])
def test_a_bad_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        split_reference(name)
    assert caught.value.message.startswith("bad document name")
    assert "restart-web" in caught.value.hint


def test_a_name_may_be_128_characters_long() -> None:
    assert split_reference("a" * 128 + ":2") == ("a" * 128, 2)


# -- built-in documents ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUILTIN_DOCUMENTS))
def test_every_built_in_document_parses_and_is_named_fleetops(name: str) -> None:
    assert name.startswith("fleetops-") and documents.is_builtin(name)
    assert documents.validate_name(name) == name
    doc = parse(BUILTIN_DOCUMENTS[name], name)
    assert doc.description
    assert doc.kind in ("command", "action")
    values = doc.resolve({p.name: "x" for p in doc.parameters if p.required})  # its own defaults are valid
    assert set(values) == {p.name for p in doc.parameters}
    assert all(p.description for p in doc.parameters)


def test_the_built_in_documents_are_the_patch_actions_and_a_script_runner() -> None:
    kinds = {name: parse(text).kind for name, text in BUILTIN_DOCUMENTS.items()}
    assert kinds == {
        "fleetops-RunShellScript": "command",
        "fleetops-PatchScan": "action",
        "fleetops-PatchInstall": "action",
    }
    run_shell = parse(BUILTIN_DOCUMENTS["fleetops-RunShellScript"])
    env = run_shell.environment(run_shell.resolve({"commands": HOSTILE}))
    assert env == {"FLEETOPS_PARAM_COMMANDS": HOSTILE}
    assert run_shell.run is not None and run_shell.run.shell and run_shell.run.powershell
