"""The shared bounds at the boundary, with a real controller, agent and opsctl.

- Rate limits (common/rates.py): ``0`` and ``101%`` mean the same in ``opsctl run``, ``opsctl patch
  scan`` and ``opsctl window task add``, and the controller refuses them with the same words when a
  request skips opsctl's check.
- Terminal size (common/terminal.py): a resize to 2000 columns is refused exactly like an open with
  2000 columns (same status, same message), and the session survives the refused resize.
"""

from __future__ import annotations

import queue
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from fleetops.common import rates
from fleetops.common.errors import InvalidInput
from fleetops.common.profile import load_profile
from fleetops.opsctl.client import MESSAGE_SIZE_OPTIONS, channel_credentials
from fleetops.v1 import operator_pb2, operator_pb2_grpc, session_pb2

from harness import Agent, Controller, start_fleet

pytestmark = [pytest.mark.slow]

HOST = "bounds-1"


@pytest.fixture(scope="module")
def fleet(module_controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    agents = start_fleet(module_controller, tmp_path_factory.mktemp("bounds-agents"), {HOST: {"role": "bounds"}})
    yield agents
    for agent in agents.values():
        agent.stop()


@pytest.fixture(scope="module")
def stub(module_controller: Controller) -> Iterator[operator_pb2_grpc.OperatorServiceStub]:
    profile = load_profile(str(module_controller.profile))
    channel = grpc.secure_channel(module_controller.address, channel_credentials(profile), options=MESSAGE_SIZE_OPTIONS)
    yield operator_pb2_grpc.OperatorServiceStub(channel)
    channel.close()


def refusal(exc: InvalidInput) -> tuple[str, str]:
    return f"error: {exc.message}", f"hint: {exc.hint}"


# -- rate limits ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def window(module_controller: Controller) -> str:
    module_controller.opsctl(
        "window", "create", "bounds", "--schedule", "cron(0 3 * * *)", "--duration", "3h", "--cutoff", "1h"
    )
    return "bounds"


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--max-concurrency", "0"), ("--max-concurrency", "0%"), ("--max-concurrency", "101%"), ("--max-errors", "101%")],
)
def test_a_refused_rate_is_refused_alike_by_run_patch_and_window_tasks(
    module_controller: Controller, fleet: dict[str, Agent], window: str, flag: str, value: str
) -> None:
    parse = rates.max_concurrency if flag == "--max-concurrency" else rates.max_errors
    with pytest.raises(InvalidInput) as info:
        parse(value)
    error, hint = refusal(info.value)
    calls = {
        "run": ("run", "--host", HOST, flag, value, "--", "true"),
        "patch scan": ("patch", "scan", "--host", HOST, flag, value),
        "window task add": (
            "window",
            "task",
            "add",
            window,
            "--priority",
            "1",
            "--type",
            "patch-scan",
            "--host",
            HOST,
            flag,
            value,
        ),
    }
    for name, args in calls.items():
        result = module_controller.opsctl(*args, check=False)
        assert result.returncode == InvalidInput.exit_code, (name, result.stderr)
        assert result.stderr.splitlines() == [error, hint], name
    assert module_controller.opsctl_json("window", "task", "list", window) == []


def test_max_errors_0_is_accepted_alike_and_stops_at_the_first_error(
    module_controller: Controller, fleet: dict[str, Agent], window: str
) -> None:
    ran = module_controller.opsctl("run", "--host", HOST, "--max-errors", "0", "--", "false", check=False)
    assert ran.returncode == 1, ran.stderr  # the host's failure, not a refused flag
    command = module_controller.opsctl_json("run", "list")[0]
    assert command["max_errors"] == "0" and command.get("error_limit", 0) == 0
    module_controller.opsctl(
        "window", "task", "add", window, "--priority", "1", "--type", "patch-scan", "--host", HOST, "--max-errors", "0"
    )
    tasks = module_controller.opsctl_json("window", "task", "list", window)
    assert [t["max_errors"] for t in tasks] == ["0"]
    module_controller.opsctl("window", "task", "remove", window, tasks[0]["id"])


def test_the_controller_refuses_what_opsctl_refuses_with_the_same_words(
    fleet: dict[str, Agent], stub: operator_pb2_grpc.OperatorServiceStub, window: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        rates.max_concurrency("0")
    target = operator_pb2.Target(hosts=[HOST])
    calls: list[tuple[Any, Any]] = [
        (stub.RunCommand, operator_pb2.RunCommandRequest(target=target, argv=["true"], max_concurrency="0")),
        (
            stub.AddWindowTask,
            operator_pb2.WindowTask(window=window, priority=1, type="patch-scan", target=target, max_concurrency="0"),
        ),
    ]
    for call, request in calls:
        with pytest.raises(grpc.RpcError) as refused:
            call(request, timeout=30)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details() == info.value.message


# -- terminal size --------------------------------------------------------------------------------


class SessionStream:
    """A raw operator session stream: what opsctl would send, without opsctl's own checks."""

    def __init__(self, stub: operator_pb2_grpc.OperatorServiceStub, first: operator_pb2.SessionClientMessage) -> None:
        self._outbox: queue.Queue[operator_pb2.SessionClientMessage | None] = queue.Queue()
        self._outbox.put(first)
        self.responses = stub.Session(iter(self._outbox.get, None), timeout=60)

    def send(self, message: operator_pb2.SessionClientMessage) -> None:
        self._outbox.put(message)

    def started(self) -> operator_pb2.SessionStarted:
        for message in self.responses:
            if message.WhichOneof("body") == "started":
                return message.started
        raise AssertionError("the stream ended before the session started")

    def refusal(self) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as info:
            for _ in self.responses:
                pass
        return info.value

    def close(self) -> None:
        self._outbox.put(None)
        self.responses.cancel()


def start(cols: int, rows: int) -> operator_pb2.SessionClientMessage:
    return operator_pb2.SessionClientMessage(
        start=operator_pb2.StartSessionRequest(
            host=HOST, command="sleep 300", size=session_pb2.TerminalSize(cols=cols, rows=rows)
        )
    )


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pseudo-terminals")
def test_a_2000_column_resize_is_refused_like_a_2000_column_open_and_the_session_survives(
    module_controller: Controller, fleet: dict[str, Agent], stub: operator_pb2_grpc.OperatorServiceStub
) -> None:
    opening = SessionStream(stub, start(2000, 50))
    refused_open = opening.refusal()
    opening.close()

    session = SessionStream(stub, start(80, 24))
    session_id = session.started().session_id
    resize = session_pb2.SessionInput(seq=1, resize=session_pb2.TerminalSize(cols=2000, rows=50))
    session.send(operator_pb2.SessionClientMessage(input=resize))
    refused_resize = session.refusal()
    session.close()

    assert refused_open.code() == refused_resize.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused_open.details() == refused_resize.details() == "window size 2000x50 is out of range"

    # The refused frame ended only the operator's stream: the session is still there to reattach to.
    assert module_controller.opsctl_json("session", "show", session_id)["state"] == "active"
    again = SessionStream(
        stub, operator_pb2.SessionClientMessage(attach=session_pb2.SessionAttach(session_id=session_id))
    )
    try:
        assert again.started().session_id == session_id
    finally:
        again.close()
    module_controller.opsctl("session", "kill", session_id)


def test_opsctl_refuses_a_2000_column_terminal_before_sending(module_controller: Controller, tmp_path: Path) -> None:
    from harness import BASE_ENV, PYTHON
    from terminal import PtyProcess

    argv = [PYTHON, "-m", "fleetops.opsctl", "--profile", str(module_controller.profile), "session", HOST]
    term = PtyProcess(argv, {**BASE_ENV, "TERM": "xterm-256color"}, cols=2000, rows=50)
    try:
        assert term.wait() == InvalidInput.exit_code
        assert b"window size 2000x50 is out of range" in term.output and b"Traceback" not in term.output
    finally:
        term.close()
