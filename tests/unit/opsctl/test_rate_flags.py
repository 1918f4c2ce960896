"""``--max-concurrency`` and ``--max-errors`` mean the same in ``run``, ``patch scan|install`` and ``window task add``.

Client side: each command checks the values with the one parser (fleetops.common.rates) before it
sends anything, so a value is sent by all of them or refused by all of them with the same words.
(tests/integration checks the same through a real controller.)
"""

from __future__ import annotations

from typing import Any, NoReturn

import pytest

from fleetops.opsctl import cli

COMMANDS = {
    "run": ["run", "--all", "{flag}", "{value}", "--", "true"],
    "patch scan": ["patch", "scan", "--all", "{flag}", "{value}"],
    "patch install": ["patch", "install", "--all", "{flag}", "{value}"],
    "window task add": ["window", "task", "add", "w1", "--priority", "1", "--type", "patch-scan", "--all",
                        "{flag}", "{value}"],
}  # fmt: skip


class Sent(Exception):
    """Raised by the fake client instead of sending: carries the request as built."""

    def __init__(self, request: Any) -> None:
        super().__init__("sent")
        self.request = request


class SendNothing:
    """An OperatorClient whose every call stops the command with :class:`Sent`."""

    def __enter__(self) -> SendNothing:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        def call(request: Any = None, *args: Any, **kwargs: Any) -> NoReturn:
            raise Sent(request)

        return call


def outcome(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], field: str) -> str:
    """``sent FIELD='...'`` (the request's *field* as built) or ``exit N: <stderr>``.

    Only the flag under test is compared: when left out, ``run`` writes its defaults into the request
    and the others leave them to the controller (the same defaults, from fleetops.common.rates).
    """
    client = SendNothing()
    monkeypatch.setattr(cli.OperatorClient, "from_profile", classmethod(lambda cls, name=None: client))
    capsys.readouterr()
    try:
        code = cli.main(argv)
    except Sent as sent:
        return f"sent {field}={getattr(sent.request, field)!r}"
    return f"exit {code}: {capsys.readouterr().err}"


@pytest.mark.parametrize(
    ("flag", "value", "accepted"),
    [
        ("--max-concurrency", "0", False),
        ("--max-concurrency", "", True),
        ("--max-concurrency", "10%", True),
        ("--max-concurrency", "101%", False),
        ("--max-concurrency", "abc", False),
        ("--max-errors", "0", True),
        ("--max-errors", "", True),
        ("--max-errors", "10%", True),
        ("--max-errors", "101%", False),
        ("--max-errors", "abc", False),
    ],
)
def test_every_command_accepts_or_refuses_a_rate_alike(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], flag: str, value: str, accepted: bool
) -> None:
    field = flag.removeprefix("--").replace("-", "_")
    results = {
        name: outcome(monkeypatch, capsys, [w.format(flag=flag, value=value) for w in argv], field)
        for name, argv in COMMANDS.items()
    }
    first = results["run"]
    assert all(result == first for result in results.values()), results
    if accepted:
        assert first == f"sent {field}={value!r}"
    else:
        assert first.startswith("exit 2: error: "), first
        assert "\nhint: " in first
        assert "Traceback" not in first


def test_the_help_of_each_command_states_the_same_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    from fleetops.common import rates

    for argv in (["run"], ["patch", "scan"], ["patch", "install"], ["window", "task", "add"]):
        with pytest.raises(SystemExit):
            cli.main([*argv, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert f"(default {rates.DEFAULT_MAX_CONCURRENCY})" in text, argv
        assert f"(default {rates.DEFAULT_MAX_ERRORS}: stop at the first error)" in text, argv
