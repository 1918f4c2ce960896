"""Issue 11, section 2: no oversized input bricks a host, a command or the operators' views.

Against a real controller and agent: a raw gRPC client with a valid operator certificate sends a
5.1 MB argv; a raw agent client with a valid host certificate answers with a 6 MB reason, an
oversized output chunk, never acknowledges, or drops the link whenever it gets the invocation.
Every refusal names the limit; nothing is created by a refused request; the real agent keeps its
link (same pid, online); ``opsctl run list|show`` keep working. The overflowing numeric flags and
a 16 KiB selector give short, clear errors (exit 2), from opsctl and from the controller.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from fleetops.common import limits
from fleetops.common.profile import load_profile
from fleetops.opsctl.client import channel_credentials
from fleetops.v1 import agent_pb2, agent_pb2_grpc, operator_pb2, operator_pb2_grpc

from harness import Agent, Controller, wait_until

pytestmark = pytest.mark.slow

ACK_TIMEOUT = 3  # seconds: the controller's --command-ack-timeout here
BIG = limits.channel_options(receive=64 * limits.MIB, send=64 * limits.MIB)  # a client that sends anything


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Controller, Agent, Agent]]:
    """A controller, a real agent ``web1`` and a registered host ``forged`` whose agent never runs."""
    root = tmp_path_factory.mktemp("wire-limits")
    c = Controller(root / "c", name="wire-limits controller", extra_args=["--command-ack-timeout", f"{ACK_TIMEOUT}s"])
    c.start()
    agents = []
    try:
        for name in ("web1", "forged"):
            activation_id, code = c.create_activation("--limit", "1")
            agent = Agent(root, name)
            agent.register(c, activation_id, code)
            agents.append(agent)
        agents[0].start()
        yield c, agents[0], agents[1]
    finally:
        for agent in agents:
            agent.stop()
        c.stop()


def operator_stub(c: Controller) -> tuple[grpc.Channel, operator_pb2_grpc.OperatorServiceStub]:
    profile = load_profile(str(c.profile))
    channel = grpc.secure_channel(c.address, channel_credentials(profile), options=BIG)
    return channel, operator_pb2_grpc.OperatorServiceStub(channel)


def refused(call: Any, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30)
    return info.value


def command_ids(c: Controller) -> set[str]:
    return {doc["id"] for doc in c.opsctl_json("run", "list", "--limit", "1000")}


def show(c: Controller, command_id: str) -> dict[str, Any]:
    return dict(c.opsctl_json("run", "show", command_id))


def invocation(c: Controller, command_id: str) -> dict[str, Any]:
    return dict(show(c, command_id)["invocations"][0])


def audit(c: Controller, *args: str) -> list[dict[str, Any]]:
    return list(c.opsctl_json("audit", "list", "--limit", "1000", *args))


def start_on_forged(c: Controller) -> str:
    result = c.opsctl("run", "--host", "forged", "--delivery-timeout", "1m", "--detach", "--", "true")
    return result.stdout.strip().splitlines()[-1]


class ForgedLink:
    """A raw Connect stream holding the host certificate of ``agent``: hello, heartbeats, and what the test does."""

    def __init__(self, c: Controller, agent: Agent) -> None:
        d = agent.state_dir
        self._credentials = grpc.ssl_channel_credentials(
            root_certificates=(d / "ca.pem").read_bytes(),
            private_key=(d / "host.key").read_bytes(),
            certificate_chain=(d / "host.pem").read_bytes(),
        )
        self._address = c.address
        self._host_id = agent.host_id

    async def __aenter__(self) -> ForgedLink:
        self._channel = grpc.aio.secure_channel(self._address, self._credentials, options=BIG)
        self.call = agent_pb2_grpc.AgentServiceStub(self._channel).Connect()
        await self.call.write(agent_pb2.AgentMessage(hello=agent_pb2.Hello(host_id=self._host_id)))
        welcome = await self.call.read()
        assert welcome.WhichOneof("body") == "welcome"
        self._beats = asyncio.create_task(self._heartbeats())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._beats.cancel()
        self.call.cancel()
        await self._channel.close()

    async def _heartbeats(self) -> None:
        sequence = 0
        while True:
            sequence += 1
            await self.call.write(agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat(sequence=sequence)))
            await asyncio.sleep(0.3)

    async def next(self, kind: str, timeout: float = 20.0) -> agent_pb2.ControllerMessage:
        async def read() -> agent_pb2.ControllerMessage:
            while True:
                message = await self.call.read()
                assert message is not grpc.aio.EOF, "the controller ended the stream"
                if message.WhichOneof("body") == kind:
                    return message

        return await asyncio.wait_for(read(), timeout)


def test_a_5_mb_argv_is_refused_naming_the_limit_and_nothing_breaks(fleet: tuple[Controller, Agent, Agent]) -> None:
    c, web1, _ = fleet
    assert web1.process is not None
    pid, before = web1.process.pid, command_ids(c)
    channel, stub = operator_stub(c)
    with channel:
        request = operator_pb2.RunCommandRequest(
            target=operator_pb2.Target(hosts=["web1"]), argv=["echo", "x" * 5_100_000]
        )
        error = refused(stub.RunCommand, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"argv is 5100006 bytes, the limit is {limits.ARGV_BYTES.maximum} bytes" in error.details()
    assert len(error.details()) < 300
    # Nothing was created, the agent never saw anything: same process, still online; lists still work.
    assert command_ids(c) == before
    assert web1.process.proc.poll() is None and web1.process.pid == pid
    assert c.host_status("web1") == "online"
    c.opsctl("run", "list")
    refusals = audit(c, "--action", "command.run", "--outcome", "error")
    assert any("argv is 5100006 bytes" in json.dumps(e) for e in refusals)
    # The host still runs commands.
    done = json.loads(c.opsctl("run", "--host", "web1", "-o", "json", "--", "echo", "still-here").stdout)
    assert done["state"] == "success" and done["stdout"] == "still-here\n"


def test_a_6_mb_reason_from_a_host_is_cut_and_the_command_stays_readable(
    fleet: tuple[Controller, Agent, Agent],
) -> None:
    c, _, forged = fleet
    command_id = start_on_forged(c)

    async def answer() -> None:
        async with ForgedLink(c, forged) as link:
            run = (await link.next("run")).run
            result = agent_pb2.InvocationResult(
                invocation_id=run.invocation_id,
                outcome=agent_pb2.INVOCATION_OUTCOME_FAILED,
                exit_code=1,
                reason="R" * 6_000_000,
            )
            await link.call.write(agent_pb2.AgentMessage(result=result))
            ack = await link.next("result_ack")
            assert ack.result_ack.invocation_id == run.invocation_id

    asyncio.run(answer())
    inv = invocation(c, command_id)
    assert inv["state"] == "failed"
    assert inv["reason"].startswith("RRRR") and len(inv["reason"].encode()) <= limits.REASON_BYTES.maximum
    c.opsctl("run", "show", command_id)
    c.opsctl("run", "list")


def test_an_oversized_output_chunk_ends_the_forged_link_refused_and_audited(
    fleet: tuple[Controller, Agent, Agent],
) -> None:
    c, _, forged = fleet
    command_id = start_on_forged(c)

    async def flood() -> grpc.StatusCode:
        async with ForgedLink(c, forged) as link:
            run = (await link.next("run")).run
            chunk = agent_pb2.OutputChunk(
                invocation_id=run.invocation_id,
                stream=agent_pb2.OUTPUT_STREAM_STDOUT,
                offset=0,
                data=b"o" * (limits.OUTPUT_CHUNK_BYTES.maximum + 1),
            )
            await link.call.write(agent_pb2.AgentMessage(output=chunk))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                while True:
                    await link.call.read()
            assert "an output chunk" in (info.value.details() or "")
            return info.value.code()

    assert asyncio.run(flood()) == grpc.StatusCode.INVALID_ARGUMENT
    events = audit(c, "--action", "agent.message", "--outcome", "refused")
    assert any("an output chunk" in json.dumps(e) and forged.host_id in json.dumps(e) for e in events)
    c.opsctl("run", "show", command_id)
    c.opsctl("run", "cancel", command_id)


def test_an_invocation_never_acknowledged_ends_failed_with_the_reason(fleet: tuple[Controller, Agent, Agent]) -> None:
    c, _, forged = fleet
    command_id = start_on_forged(c)

    async def ignore() -> None:
        async with ForgedLink(c, forged) as link:
            await link.next("run")
            await asyncio.to_thread(
                wait_until,
                lambda: invocation(c, command_id)["reason"],
                ACK_TIMEOUT + 20,
                "the unacknowledged invocation to end",
            )

    asyncio.run(ignore())
    inv = invocation(c, command_id)
    assert "did not acknowledge the invocation within 3s" in inv["reason"]
    assert show(c, command_id)["command"]["status"] == "failed"


def test_a_host_that_drops_its_link_on_an_invocation_is_not_sent_it_forever(
    fleet: tuple[Controller, Agent, Agent],
) -> None:
    c, _, forged = fleet
    command_id = start_on_forged(c)

    async def drop_each_time() -> int:
        sends = 0
        while not invocation(c, command_id)["reason"] and sends < 10:
            async with ForgedLink(c, forged) as link:
                try:
                    await link.next("run", timeout=2)
                    sends += 1
                except TimeoutError:
                    pass  # not sent again: the controller gave up on it
        return sends

    sends = asyncio.run(drop_each_time())
    wait_until(lambda: invocation(c, command_id)["reason"], 20, "the invocation to end")
    assert sends == 3
    assert "after it was sent 3 times" in invocation(c, command_id)["reason"]


def test_an_invocation_the_agent_cannot_start_ends_failed_with_its_reason(
    fleet: tuple[Controller, Agent, Agent],
) -> None:
    c, web1, _ = fleet
    result = c.opsctl("run", "--host", "web1", "--as", "fleetops-no-such-user", "-o", "json", "--", "true", check=False)
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["state"] == "failed" and "fleetops-no-such-user" in doc["reason"]
    assert web1.process is not None and web1.process.proc.poll() is None


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--max-concurrency", "1e11"), "bad max-concurrency '1e11': not a whole number"),
        (("--max-concurrency", "100000000000"), "max-concurrency 100000000000 is out of range"),
        (("--max-concurrency", "9223372036854775808"), "is out of range"),
        (("--max-concurrency", "2^63"), "not a whole number"),
        (("--max-concurrency", "-5"), "not a whole number"),
        (("--max-concurrency", "101%"), "max-concurrency 101% is out of range: it must be from 1% to 100%"),
        (("--max-errors", "1e20"), "bad max-errors '1e20'"),
        (("--max-errors", "100000000000000000000"), "max-errors 100000000000000000000 is out of range"),
        (("--timeout", "100000d"), "longer than 3650 days"),
        (("--timeout", "8d"), "--timeout 8d is out of range: it must be from 1s to 7d"),
        (("--delivery-timeout", "31d"), "it must be from 1s to 30d"),
        (("--timeout=-1s",), "bad duration"),
    ],
)
def test_overflowing_flags_are_usage_errors(
    fleet: tuple[Controller, Agent, Agent], flags: tuple[str, ...], message: str
) -> None:
    c, _, _ = fleet
    result = c.opsctl("run", "--host", "web1", *flags, "--", "true", check=False)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr and "error:" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_concurrency", "100000000000", "max-concurrency 100000000000 is out of range"),
        ("max_concurrency", "²", "bad max-concurrency '²'"),
        ("max_errors", "100000000000000000000", "max-errors 100000000000000000000 is out of range"),
        ("timeout_seconds", 2**32 - 1, "the timeout is 4294967295s; it must be from 1s to 604800s"),
        ("delivery_timeout_seconds", 2**32 - 1, "the delivery timeout is 4294967295s"),
    ],
)
def test_the_controller_checks_numbers_a_raw_client_sends(
    fleet: tuple[Controller, Agent, Agent], field: str, value: Any, message: str
) -> None:
    c, _, _ = fleet
    before = command_ids(c)
    channel, stub = operator_stub(c)
    with channel:
        request = operator_pb2.RunCommandRequest(target=operator_pb2.Target(hosts=["web1"]), argv=["true"])
        setattr(request, field, value)
        error = refused(stub.RunCommand, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert message in error.details()
    assert command_ids(c) == before


def test_a_16_kib_selector_gets_a_short_error(fleet: tuple[Controller, Agent, Agent], tmp_path: Path) -> None:
    c, _, _ = fleet
    selector = ",".join(f"k{i}=v" for i in range(3000))[:16384]
    expected = f"the selector is 16384 bytes, the limit is {limits.SELECTOR_BYTES.maximum} bytes"
    for args in (("hosts", "list", "--target", selector), ("run", "--target", selector, "--", "true")):
        result = c.opsctl(*args, check=False)
        assert result.returncode == 2 and expected in result.stderr, result.stderr
        assert len(result.stderr) < 500 and "metadata" not in result.stderr
    channel, stub = operator_stub(c)
    with channel:
        for call, request in (
            (stub.ListHosts, operator_pb2.ListHostsRequest(target=operator_pb2.Target(selector=selector))),
            (
                stub.RunCommand,
                operator_pb2.RunCommandRequest(target=operator_pb2.Target(selector=selector), argv=["true"]),
            ),
        ):
            error = refused(call, request)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and expected in error.details()
            assert len(error.details()) < 300
        # A selector under the limit that does not parse: its echo is cut, never a metadata overflow.
        bad = "a" * 4000 + " ="
        error = refused(stub.ListHosts, operator_pb2.ListHostsRequest(target=operator_pb2.Target(selector=bad)))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "bad selector at column" in error.details()
