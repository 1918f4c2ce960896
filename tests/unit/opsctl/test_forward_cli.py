"""`opsctl forward` without a host: the PORT, LPORT:RPORT and LPORT:DEST:RPORT forms."""

from __future__ import annotations

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.opsctl import cli, forward
from fleetops.opsctl.forward import ForwardSpec


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("8080", ForwardSpec(8080, "127.0.0.1", 8080)),
        ("8080:80", ForwardSpec(8080, "127.0.0.1", 80)),
        ("0:80", ForwardSpec(0, "127.0.0.1", 80)),
        ("5433:db-1.internal:5432", ForwardSpec(5433, "db-1.internal", 5432)),
        ("5433:10.0.0.7:5432", ForwardSpec(5433, "10.0.0.7", 5432)),
        ("8443:[::1]:443", ForwardSpec(8443, "::1", 443)),
    ],
)
def test_the_forms(text: str, spec: ForwardSpec) -> None:
    assert forward.parse_spec(text) == spec


def test_the_destination_is_shown_as_ssh_writes_it() -> None:
    assert forward.parse_spec("8443:[::1]:443").destination == "[::1]:443"
    assert forward.parse_spec("8080:80").destination == "127.0.0.1:80"


@pytest.mark.parametrize("text", ["", "http", "0", "8080:0", "70000:80", "1:2:3:4", "80:db 1:80", "a:b"])
def test_other_forms_and_ports_out_of_range_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        forward.parse_spec(text)
    assert caught.value.hint


def test_the_command_line_parses() -> None:
    args = cli.build_parser().parse_args(["forward", "--bind", "0.0.0.0", "--as", "deploy", "web-1.fleet", "8080:80"])
    assert (args.host, args.spec, args.bind, args.login, args.check) == (
        "web-1.fleet",
        "8080:80",
        "0.0.0.0",
        "deploy",
        True,
    )
    assert args.func is forward.forward_command
    assert cli.build_parser().parse_args(["forward", "--no-check", "web-1", "80"]).check is False
