"""The console's request checks and result grouping, without a server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.requests import Request

from fleetops.controller.console.formatting import command_what, result_groups
from fleetops.controller.console.store import ConsoleSession
from fleetops.controller.console.web import MAX_FORM_BYTES, Refused, _checked_form
from fleetops.v1 import operator_pb2

SESSION = ConsoleSession("operator:ann", "PEM", "the-token", datetime(2030, 1, 1, tzinfo=UTC))


def post(body: bytes, headers: dict[str, str]) -> Request:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "https",
        "server": ("console.example", 7445),
        "path": "/commands",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in {"host": "console.example:7445", **headers}.items()],
    }
    return Request(scope, receive)


FORM = {"content-type": "application/x-www-form-urlencoded"}


async def test_a_form_from_the_console_with_its_token_is_read() -> None:
    request = post(
        b"selector=role%3Dweb&script=uptime&csrf=the-token", {**FORM, "origin": "https://console.example:7445"}
    )
    assert await _checked_form(request, SESSION) == {"selector": "role=web", "script": "uptime", "csrf": "the-token"}


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"csrf=the-token", {**FORM, "origin": "https://evil.example"}, 403, "another site"),
        (b"csrf=the-token", {**FORM, "origin": "null"}, 403, "another site"),
        (b"csrf=wrong", FORM, 403, "form token"),
        (b"script=x", FORM, 403, "form token"),
        (b'{"csrf": "the-token"}', {"content-type": "application/json"}, 415, "not a form"),
        (b"csrf=the-token&s=" + b"x" * MAX_FORM_BYTES, FORM, 413, "larger than"),
        (b"csrf=\xff\xfe", FORM, 400, "could not be read"),
    ],
)
async def test_a_form_from_elsewhere_or_without_the_token_is_refused(
    body: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    with pytest.raises(Refused, match=message) as refused:
        await _checked_form(post(body, headers), SESSION)
    assert refused.value.status == status


def invocation(host: str, state: int, code: int | None, out: bytes) -> operator_pb2.Invocation:
    return operator_pb2.Invocation(
        host_name=host, state=state, exit_code=code or 0, has_exit_code=code is not None, stdout_tail=out
    )


def test_hosts_with_the_same_result_are_one_group_largest_first() -> None:
    S, F = operator_pb2.INVOCATION_STATE_SUCCESS, operator_pb2.INVOCATION_STATE_FAILED
    groups = result_groups(
        [
            invocation("web-2", S, 0, b"ok\n"),
            invocation("db-1", F, 2, b"<no>\n"),
            invocation("web-1", S, 0, b"ok\n"),
            invocation("web-3", S, 0, b"ok\n"),
        ]
    )
    assert [(g["state"], g["exit_code"], g["hosts"], g["stdout"]) for g in groups] == [
        ("success", 0, ["web-1", "web-2", "web-3"], "ok\n"),
        ("failed", 2, ["db-1"], "<no>\n"),
    ]


def test_what_a_command_runs_is_its_document_its_argv_or_its_script_cut_short() -> None:
    assert command_what(operator_pb2.Command(document="restart:2")) == "doc restart:2"
    assert command_what(operator_pb2.Command(argv=["uname", "-a"])) == "uname -a"
    script = operator_pb2.Command(script=b"echo " + b"x" * 100)
    assert command_what(script) == "echo " + "x" * 100
    assert command_what(script, 10) == "echo xxxx…"
