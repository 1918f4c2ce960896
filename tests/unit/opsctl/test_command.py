"""``opsctl run`` through opsctl's entry point on a fake client: what each way of following prints, exit codes."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from fleetops.opsctl import cli, output
from fleetops.v1 import operator_pb2 as pb


def inv(host: str, state: str = "success", **fields: Any) -> pb.Invocation:
    return pb.Invocation(
        host_name=host,
        host_id=f"id-{host}",
        command_id="cmd-1",
        state=pb.InvocationState.Value("INVOCATION_STATE_" + state.upper()),
        **fields,
    )


class FakeClient:
    def __init__(self, hosts: list[str], final: list[pb.Invocation], events: list[pb.OutputEvent] = ()) -> None:  # type: ignore[assignment]  # an empty tuple default
        self.hosts = hosts
        self.final = final
        self.events = list(events)
        self.requests: list[pb.RunCommandRequest] = []
        self.output_chunks: list[pb.OutputData] = []

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def run_command(self, request: pb.RunCommandRequest) -> pb.RunCommandResponse:
        self.requests.append(request)
        return pb.RunCommandResponse(command=pb.Command(id="cmd-1", total=len(self.hosts)), host_names=self.hosts)

    def get_command(self, command_id: str, include_output: bool = True) -> pb.CommandDetail:
        status = "success" if all(i.state == pb.INVOCATION_STATE_SUCCESS for i in self.final) else "failed"
        return pb.CommandDetail(
            command=pb.Command(
                id=command_id,
                status=status,
                total=len(self.hosts),
                argv=["sh", "-c", "for i in 1 2; do echo $i; done"],
                target="role=web",
                delivery_timeout_seconds=600,
                timeout_seconds=3600,
            ),
            invocations=self.final,
            done=True,
        )

    def watch_output(self, command_id: str, hosts: list[str] | None = None) -> Iterator[pb.OutputEvent]:
        yield from self.events

    def watch_command(self, command_id: str, include_output: bool = False) -> Iterator[pb.CommandDetail]:
        yield pb.CommandDetail(
            command=pb.Command(id=command_id, total=len(self.hosts)), invocations=self.final, done=True
        )

    def invocation_output(
        self, command_id: str, host: str, stderr: bool = False, follow: bool = False
    ) -> Iterator[pb.OutputData]:
        yield from self.output_chunks


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch) -> Any:
    def install(client: FakeClient) -> FakeClient:
        monkeypatch.setattr(cli.OperatorClient, "from_profile", classmethod(lambda cls, name=None: client))
        return client

    return install


def live(host: str, data: bytes, offset: int, stderr: bool = False) -> pb.OutputEvent:
    return pb.OutputEvent(host_name=host, output=pb.LiveOutput(stderr=stderr, offset=offset, data=data))


def test_one_host_streams_like_ssh_and_keeps_stdout_for_the_command(
    use: Any, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    done = inv("web-1", stdout_bytes=9)
    use(FakeClient(["web-1"], [done], [live("web-1", b"line 1\n", 0), live("web-1", b"oops\n", 0, stderr=True)]))
    assert cli.main(["run", "--host", "web-1", "--", "make"]) == 0
    captured = capfdbinary.readouterr()
    assert captured.out == b"line 1\n"  # only the command's own output: `opsctl run ... > file` copies it
    assert b"1 host matched: web-1" in captured.err and b"command cmd-1" in captured.err
    assert b"oops\n" in captured.err


def test_one_host_failing_says_how_on_stderr_and_exits_1(use: Any, capsys: pytest.CaptureFixture[str]) -> None:
    failed = inv("web-1", "failed", exit_code=3, has_exit_code=True)
    use(FakeClient(["web-1"], [failed]))
    assert cli.main(["run", "--host", "web-1", "--", "false"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == "web-1: exit 3"


def test_stream_prefixes_lines_and_ends_with_the_summary(use: Any, capsys: pytest.CaptureFixture[str]) -> None:
    events = [
        live("web-1", b"a\n", 0),
        live("web-2", b"b\n", 0),
        pb.OutputEvent(host_name="web-1", finished=inv("web-1")),
        pb.OutputEvent(host_name="web-2", finished=inv("web-2")),
    ]
    use(FakeClient(["web-1", "web-2"], [inv("web-1"), inv("web-2")], events))
    assert cli.main(["run", "--target", "role=web", "--stream", "--", "echo"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["2 hosts matched: web-1, web-2", "command cmd-1"]
    assert lines[2:6] == ["web-1: a", "web-2: b", "── web-1: success", "── web-2: success"]
    assert lines[-1] == "cmd-1: success on 2 hosts (2 success)"


def test_stream_with_json_is_refused_before_anything_runs(use: Any, capsys: pytest.CaptureFixture[str]) -> None:
    client = use(FakeClient(["web-1", "web-2"], []))
    assert cli.main(["run", "--all", "--stream", "-o", "json", "--", "true"]) == 2
    assert "--stream prints output lines as text" in capsys.readouterr().err
    assert client.requests == []


def test_many_hosts_print_results_then_a_recap_and_summary(use: Any, capsys: pytest.CaptureFixture[str]) -> None:
    final = [inv("web-1", stdout_tail=b"hi\n", stdout_bytes=3), inv("web-2", stdout_tail=b"hi\n", stdout_bytes=3)]
    use(FakeClient(["web-1", "web-2"], final))
    assert cli.main(["run", "--all", "--", "echo", "hi"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2 hosts matched: web-1, web-2",
        "command cmd-1",
        "── web-1",
        "   hi",
        "── web-2: same as web-1",
        "── 2 hosts (web-1, web-2)",
        "cmd-1: success on 2 hosts (2 success)",
    ]


def test_show_quotes_the_command_line_and_counts_hosts_right(use: Any, capsys: pytest.CaptureFixture[str]) -> None:
    running = inv("web-1", "running", stdout_bytes=2048, waiting_reason="running")
    use(FakeClient(["web-1"], [running]))
    assert cli.main(["run", "show", "cmd-1"]) == 0
    out = capsys.readouterr().out
    assert "run       sh -c 'for i in 1 2; do echo $i; done'" in out
    assert "(1 host)" in out and "timeout 1h" in out
    row = next(line for line in out.splitlines() if line.startswith("web-1"))
    assert row.split() == ["web-1", "running", "-", "2.0", "KiB", "0", "B", "running"]
    assert "output so far: opsctl run output cmd-1 HOST [--stderr] --follow" in out


def test_run_output_on_a_terminal_names_binary_instead_of_printing_it(
    use: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    client = use(FakeClient(["web-1"], []))
    client.output_chunks = [pb.OutputData(data=b"\x7fELF\x00\x00", offset=0), pb.OutputData(data=b"\x01", offset=6)]
    term = Terminal()
    monkeypatch.setattr("sys.stdout", term)
    monkeypatch.setattr(output, "RAW", False)
    assert cli.main(["run", "output", "cmd-1", "web-1"]) == 0
    assert term.getvalue() == "\\x7fELF"  # the text before the first NUL, escaped; nothing after it
    assert capsys.readouterr().err.strip() == (
        "web-1: stdout is binary from byte 4 on, 7 B (7 bytes) in all; save it: opsctl run output cmd-1 web-1 > FILE"
    )


def test_every_o_is_text_or_json() -> None:
    parser = cli.build_parser()
    for argv in (["run", "--all"], ["command", "list"], ["command", "show", "I"], ["command", "watch", "I"]):
        assert parser.parse_args([*argv, "-o", "json"]).output == "json"
        with pytest.raises(SystemExit):
            parser.parse_args([*argv, "-o", "table"])
