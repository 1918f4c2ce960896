"""The agent's run command with real processes, driven like the link would (no gRPC).

``Collector`` stands in for ``ControllerLink.send``: it records every AgentMessage, reassembles
output by offset (or only hashes it), and lets a test await results and updates.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psutil
import pytest

from fleetops.agent.commands.entry import Outcome, Phase
from fleetops.agent.commands.journal import REASON_AGENT_STOPPED, REASON_REBOOTED, InvocationJournal
from fleetops.agent.commands.posix import PosixPlatform
from fleetops.agent.commands.reboot import CommandRebooter, Rebooter
from fleetops.agent.commands.service import CommandService
from fleetops.v1 import agent_pb2

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX processes")

WAIT = 30.0
TEST_USER = "fleetops-test"
STDOUT, STDERR = agent_pb2.OUTPUT_STREAM_STDOUT, agent_pb2.OUTPUT_STREAM_STDERR


class Collector:
    """An in-memory ``send``: keeps messages (output too, unless ``hash_only``) and wakes waiters."""

    def __init__(self, *, hash_only: bool = False) -> None:
        self.hash_only = hash_only
        self.messages: list[agent_pb2.AgentMessage] = []
        self.output: dict[tuple[str, int], bytearray] = {}
        self.received: dict[tuple[str, int], int] = {}
        self.digests: dict[tuple[str, int], hashlib._Hash] = {}
        self.gaps: list[str] = []
        self.link_down = False
        self.on_output: Callable[[], None] | None = None
        self._changed = asyncio.Condition()

    async def send(self, message: agent_pb2.AgentMessage) -> None:
        if self.link_down:
            raise ConnectionError("not connected to the controller")
        kind = message.WhichOneof("body")
        if kind == "output":
            self._take_output(message.output)
            if self.on_output is not None:
                self.on_output()
            if self.hash_only:
                return  # do not keep 200 MB of chunks
        self.messages.append(message)
        async with self._changed:
            self._changed.notify_all()

    def keep_only(self, invocation_id: str, stdout: int, stderr: int) -> None:
        """Act like a controller that lost its messages and kept only the first bytes of each stream."""
        self.messages = [m for m in self.messages if _id(m, m.WhichOneof("body") or "") != invocation_id]
        for stream, keep in ((STDOUT, stdout), (STDERR, stderr)):
            key = (invocation_id, stream)
            self.received[key] = keep
            if not self.hash_only:
                del self.output.setdefault(key, bytearray())[keep:]

    def _take_output(self, chunk: agent_pb2.OutputChunk) -> None:
        key = (chunk.invocation_id, chunk.stream)
        have = self.received.get(key, 0)
        if chunk.offset > have:
            self.gaps.append(f"{key}: chunk at {chunk.offset}, have {have}")
            return
        fresh = bytes(chunk.data[have - chunk.offset :])  # like the controller: skip what it has
        self.received[key] = have + len(fresh)
        if self.hash_only:
            self.digests.setdefault(key, hashlib.sha256()).update(fresh)
        else:
            self.output.setdefault(key, bytearray()).extend(fresh)

    def of(self, kind: str, invocation_id: str) -> list:
        return [
            getattr(m, kind) for m in self.messages if m.WhichOneof("body") == kind and _id(m, kind) == invocation_id
        ]

    async def wait_for(self, kind: str, invocation_id: str, count: int = 1, timeout: float = WAIT) -> list:
        async def seen() -> list:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.of(kind, invocation_id)) >= count)
            return self.of(kind, invocation_id)

        return await asyncio.wait_for(seen(), timeout)

    async def result(self, invocation_id: str, timeout: float = WAIT) -> agent_pb2.InvocationResult:
        return (await self.wait_for("result", invocation_id, timeout=timeout))[0]

    async def running(self, invocation_id: str) -> None:
        async def phase_seen() -> None:
            async with self._changed:
                await self._changed.wait_for(
                    lambda: any(
                        u.phase == agent_pb2.INVOCATION_PHASE_RUNNING
                        for u in self.of("invocation_update", invocation_id)
                    )
                )

        await asyncio.wait_for(phase_seen(), WAIT)

    def stdout(self, invocation_id: str) -> bytes:
        return bytes(self.output.get((invocation_id, STDOUT), b""))

    def stderr(self, invocation_id: str) -> bytes:
        return bytes(self.output.get((invocation_id, STDERR), b""))


def _id(message: agent_pb2.AgentMessage, kind: str) -> str:
    return getattr(message, kind).invocation_id


def run(invocation_id: str, *argv: str, **fields: object) -> agent_pb2.ControllerMessage:
    return agent_pb2.ControllerMessage(run=agent_pb2.RunInvocation(invocation_id=invocation_id, argv=argv, **fields))


def cancel(invocation_id: str) -> agent_pb2.ControllerMessage:
    return agent_pb2.ControllerMessage(cancel=agent_pb2.CancelInvocation(invocation_id=invocation_id))


def ack(invocation_id: str) -> agent_pb2.ControllerMessage:
    return agent_pb2.ControllerMessage(result_ack=agent_pb2.ResultAck(invocation_id=invocation_id))


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes of a process group: zombies nobody reaps here do not count."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if process.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(process.pid) == pgid:
                members.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


async def eventually(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll a condition nothing can be awaited for, with a deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal"


@pytest.fixture
async def make_service(journal_dir: Path) -> AsyncIterator[Callable[..., CommandService]]:
    """Builds CommandServices on one journal directory; a second one is an agent restart."""
    services: list[CommandService] = []

    def make(collector: Collector, rebooter: Rebooter | None = None) -> CommandService:
        service = CommandService(
            InvocationJournal(journal_dir), PosixPlatform(), rebooter or CommandRebooter(["false"]), collector.send
        )
        services.append(service)
        return service

    yield make
    for service in services:
        await service.close()


@pytest.fixture
async def service(make_service: Callable[..., CommandService]) -> tuple[CommandService, Collector]:
    collector = Collector()
    started = make_service(collector)
    await started.recover()
    return started, collector


# -- plain runs -----------------------------------------------------------------------------------


async def test_echo_streams_output_then_the_result(service: tuple[CommandService, Collector]) -> None:
    svc, out = service
    await svc.on_run(run("echo-1", "sh", "-c", "echo hello; echo oops >&2"))
    result = await out.result("echo-1")
    assert result.outcome == agent_pb2.INVOCATION_OUTCOME_SUCCESS
    assert result.exit_code == 0
    assert (out.stdout("echo-1"), out.stderr("echo-1")) == (b"hello\n", b"oops\n")
    assert (result.stdout_bytes, result.stderr_bytes) == (6, 5)
    assert result.started_at.ToDatetime() <= result.finished_at.ToDatetime()
    # Over within the progress delay: reported by its result alone (no DELIVERED/RUNNING updates).
    assert [u.phase for u in out.of("invocation_update", "echo-1")] == []
    kinds = [m.WhichOneof("body") for m in out.messages]
    assert kinds.index("result") > max(i for i, kind in enumerate(kinds) if kind == "output")


async def test_a_longer_command_is_reported_delivered_then_running(service: tuple[CommandService, Collector]) -> None:
    svc, out = service
    await svc.on_run(run("slow-1", "sh", "-c", "sleep 0.5"))
    result = await out.result("slow-1")
    assert result.outcome == agent_pb2.INVOCATION_OUTCOME_SUCCESS
    phases = [u.phase for u in out.of("invocation_update", "slow-1")]
    assert phases == [agent_pb2.INVOCATION_PHASE_DELIVERED, agent_pb2.INVOCATION_PHASE_RUNNING]
    kinds = [m.WhichOneof("body") for m in out.messages]
    assert kinds.index("result") > max(i for i, kind in enumerate(kinds) if kind == "invocation_update")


async def test_script_runs_with_sh_and_the_given_environment(service: tuple[CommandService, Collector]) -> None:
    svc, out = service
    script = b'printf "%s in %s\\n" "$GREETING" "$(pwd)"\nexit 0\n'
    await svc.on_run(
        run("script-1", script=script, env={"GREETING": "hi"}, cwd="/tmp")  # type: ignore[arg-type]
    )
    result = await out.result("script-1")
    assert result.outcome == agent_pb2.INVOCATION_OUTCOME_SUCCESS, result.reason
    assert out.stdout("script-1") == b"hi in /tmp\n"
    assert list(Path(os.environ.get("TMPDIR", "/tmp")).glob("fleetops-script-*")) == []  # the script file is gone


async def test_non_zero_exit_fails_with_the_exit_code(service: tuple[CommandService, Collector]) -> None:
    svc, out = service
    await svc.on_run(run("exit-3", "sh", "-c", "exit 3"))
    result = await out.result("exit-3")
    assert (result.outcome, result.exit_code, result.reason) == (agent_pb2.INVOCATION_OUTCOME_FAILED, 3, "")


@pytest.mark.parametrize(
    ("fields", "exit_code", "reason"),
    [
        ({"argv": ["/no/such/program"]}, 127, "command not found: /no/such/program"),
        ({"argv": ["true"], "cwd": "/no/such/dir"}, 127, "working directory not found: /no/such/dir"),
        ({"argv": ["{tmp}/data.txt"]}, 126, "permission denied: {tmp}/data.txt"),
        ({"argv": ["{tmp}/garbage"]}, 126, "cannot start {tmp}/garbage: Exec format error"),
        ({"argv": ["true"], "run_as": "no-such-user-x"}, -1, "no such user: no-such-user-x"),
    ],
)
async def test_a_command_that_cannot_start_fails_with_a_reason(
    service: tuple[CommandService, Collector], tmp_path: Path, fields: dict, exit_code: int, reason: str
) -> None:
    (tmp_path / "data.txt").write_text("not a program\n")  # not executable
    (tmp_path / "garbage").write_bytes(b"\x00\x01binary")
    (tmp_path / "garbage").chmod(0o755)  # executable, but no known format
    fields = {**fields, "argv": [arg.replace("{tmp}", str(tmp_path)) for arg in fields["argv"]]}
    svc, out = service
    await svc.on_run(agent_pb2.ControllerMessage(run=agent_pb2.RunInvocation(invocation_id="bad-1", **fields)))
    result = await out.result("bad-1")
    expected = (agent_pb2.INVOCATION_OUTCOME_FAILED, exit_code, reason.replace("{tmp}", str(tmp_path)))
    assert (result.outcome, result.exit_code, result.reason) == expected


# -- timeout and cancel ---------------------------------------------------------------------------


async def test_timeout_kills_the_whole_process_group(
    service: tuple[CommandService, Collector], journal_dir: Path
) -> None:
    svc, out = service
    await svc.on_run(run("slow-1", "sh", "-c", "sleep 100 & sleep 100; wait", timeout_seconds=1, kill_grace_seconds=1))
    await out.running("slow-1")
    entry = InvocationJournal(journal_dir).get("slow-1")
    assert entry is not None and entry.pid is not None
    pgid = entry.pid
    await eventually(lambda: len(group_members(pgid)) == 3, "sh and both sleeps run")
    result = await out.result("slow-1")
    assert result.outcome == agent_pb2.INVOCATION_OUTCOME_TIMED_OUT
    assert result.reason == "timed out after 1s"
    assert result.exit_code == -15  # SIGTERM sufficed
    await eventually(lambda: not group_members(pgid), f"no process of group {pgid} is left")


async def test_a_group_that_ignores_term_is_killed_after_the_grace(service: tuple[CommandService, Collector]) -> None:
    svc, out = service
    # An ignored signal stays ignored across exec: sh and sleep both shrug off SIGTERM.
    await svc.on_run(run("stubborn-1", "sh", "-c", "trap '' TERM; sleep 100", timeout_seconds=1, kill_grace_seconds=1))
    result = await out.result("stubborn-1")
    assert (result.outcome, result.exit_code) == (agent_pb2.INVOCATION_OUTCOME_TIMED_OUT, -9)


async def test_cancel_stops_a_running_command(service: tuple[CommandService, Collector]) -> None:
    svc, out = service
    await svc.on_run(run("cancel-1", "sleep", "100"))
    await out.running("cancel-1")
    await svc.on_cancel(cancel("cancel-1"))
    result = await out.result("cancel-1")
    assert (result.outcome, result.exit_code, result.reason) == (
        agent_pb2.INVOCATION_OUTCOME_CANCELLED,
        -15,
        "cancelled",
    )
    await svc.on_cancel(cancel("cancel-1"))  # finished: ignored
    await svc.on_cancel(cancel("never-heard-of"))


# -- run as another user --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def other_user() -> str:
    if os.geteuid() != 0:
        pytest.skip("running commands as another user needs root: run the tests as root to cover run_as")
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        if shutil.which("useradd") is None:
            pytest.skip("useradd is missing: cannot create the test user")
        subprocess.run(["useradd", "--system", "--no-create-home", TEST_USER], check=True, timeout=60)
    return TEST_USER


async def test_run_as_another_user(service: tuple[CommandService, Collector], other_user: str) -> None:
    svc, out = service
    await svc.on_run(run("as-1", "sh", "-c", 'id -un; echo "$HOME $USER"', run_as=other_user))
    result = await out.result("as-1")
    assert result.outcome == agent_pb2.INVOCATION_OUTCOME_SUCCESS, result.reason
    home = pwd.getpwnam(other_user).pw_dir
    assert out.stdout("as-1") == f"{other_user}\n{home} {other_user}\n".encode()


async def test_a_script_runs_as_another_user(service: tuple[CommandService, Collector], other_user: str) -> None:
    svc, out = service
    await svc.on_run(run("as-2", script=b"id -un\n", run_as=other_user))  # the user must read the script file
    result = await out.result("as-2")
    assert result.outcome == agent_pb2.INVOCATION_OUTCOME_SUCCESS, result.reason
    assert out.stdout("as-2") == f"{other_user}\n".encode()


# -- exactly once ---------------------------------------------------------------------------------


async def test_a_re_sent_invocation_runs_exactly_once(
    make_service: Callable[..., CommandService], tmp_path: Path
) -> None:
    marker, gate = tmp_path / "ran.txt", tmp_path / "gate"
    os.mkfifo(gate)
    # Appends one line, then blocks on the fifo until the test lets it finish.
    message = run("once-1", "sh", "-c", f"echo ran >> {marker}; echo done; cat {gate} > /dev/null")
    first = Collector()
    svc = make_service(first)
    await svc.on_run(message)
    await first.running("once-1")
    await svc.on_run(message)  # re-sent while it runs
    await asyncio.wait_for(asyncio.to_thread(_open_gate, gate), WAIT)
    await first.result("once-1")
    await svc.on_run(message)  # re-sent after it finished: the result again, no run
    results = await first.wait_for("result", "once-1", count=2)
    assert results[0] == results[1]

    restarted = Collector()  # a new agent process on the same journal
    svc2 = make_service(restarted)
    await svc2.recover()
    await svc2.on_run(message)
    again = await restarted.result("once-1")
    assert again == results[0]
    assert restarted.stdout("once-1") == b"done\n"  # the output is re-streamed from the spool

    await svc2.on_result_ack(ack("once-1"))
    await svc2.on_run(message)  # after the ack: answered from the tombstone
    tombstone = await restarted.wait_for("result", "once-1", count=2)
    assert tombstone[1] == results[0]
    assert marker.read_text() == "ran\n"
    # The re-send while it ran is acknowledged again (the first DELIVERED may have been lost with
    # the link; the controller fails invocations it never hears of); finished ones answer with results.
    assert [u.phase for u in first.of("invocation_update", "once-1")] == [
        agent_pb2.INVOCATION_PHASE_DELIVERED,
        agent_pb2.INVOCATION_PHASE_RUNNING,
    ] * 2
    assert restarted.of("invocation_update", "once-1") == []


def _open_gate(gate: Path) -> None:
    with open(gate, "w") as fifo:
        fifo.write("go\n")


async def test_a_re_send_resumes_output_from_the_controllers_offsets(service: tuple[CommandService, Collector]) -> None:
    svc, out = service
    message = run("resume-1", "sh", "-c", "printf 0123456789; printf abc >&2")
    await svc.on_run(message)
    first = await out.result("resume-1")
    out.keep_only("resume-1", stdout=7, stderr=3)
    message.run.stdout_offset, message.run.stderr_offset = 7, 3
    await svc.on_run(message)
    assert await out.result("resume-1") == first
    chunks = out.of("output", "resume-1")
    assert [(c.stream, c.offset, c.data) for c in chunks] == [(STDOUT, 7, b"789")]
    assert out.stdout("resume-1") == b"0123456789"


async def test_a_re_send_while_running_restarts_the_output_from_its_offsets(
    service: tuple[CommandService, Collector], tmp_path: Path
) -> None:
    svc, out = service
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    message = run("resume-2", "sh", "-c", f"head -c 300000 /dev/zero | tr '\\0' x; cat {gate}; printf END")
    await svc.on_run(message)
    await out.running("resume-2")
    await eventually(lambda: out.received.get(("resume-2", STDOUT), 0) == 300_000, "the first part arrived")
    out.keep_only("resume-2", stdout=100_000, stderr=0)  # the controller lost the rest of its copy
    message.run.stdout_offset = 100_000
    await svc.on_run(message)
    await eventually(lambda: out.received[("resume-2", STDOUT)] == 300_000, "the output was sent again")
    assert out.of("output", "resume-2")[0].offset == 100_000
    await asyncio.wait_for(asyncio.to_thread(_open_gate, gate), WAIT)
    result = await out.result("resume-2")
    assert result.stdout_bytes == 300_006
    assert out.stdout("resume-2") == b"x" * 300_000 + b"go\nEND"
    assert out.gaps == []


# -- agent restarts -------------------------------------------------------------------------------


async def test_a_command_interrupted_by_an_agent_kill_fails_and_is_not_re_run(
    make_service: Callable[..., CommandService], journal_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran.txt"
    message = run("killed-1", "sh", "-c", f"echo ran >> {marker}")
    # What a killed agent leaves behind: journaled running, with a pid that is gone.
    gone = subprocess.Popen(["true"])
    gone.wait()
    journal = InvocationJournal(journal_dir)
    journal.record(message.run)
    journal.mark_running("killed-1", pid=gone.pid, process_started=0.0)

    out = Collector()
    svc = make_service(out)
    pending = await svc.recover()
    assert [(e.invocation_id, e.phase, e.outcome, e.exit_code) for e in pending] == [
        ("killed-1", Phase.FINISHED, Outcome.FAILED, -1)
    ]
    await svc.on_connected()
    result = await out.result("killed-1")
    assert (result.outcome, result.exit_code, result.reason) == (
        agent_pb2.INVOCATION_OUTCOME_FAILED,
        -1,
        REASON_AGENT_STOPPED,
    )
    await svc.on_run(message)  # the controller re-sends: answered, not run
    await out.wait_for("result", "killed-1", count=2)
    assert not marker.exists()


async def test_a_command_that_outlived_the_agent_is_adopted(
    make_service: Callable[..., CommandService], journal_dir: Path
) -> None:
    message = run("orphan-1", "sleep", "100")
    orphan = subprocess.Popen(["sleep", "100"], start_new_session=True)  # survived a kill -9 of its agent
    try:
        journal = InvocationJournal(journal_dir)
        journal.record(message.run)
        journal.mark_running("orphan-1", pid=orphan.pid, process_started=psutil.Process(orphan.pid).create_time())
        out = Collector()
        svc = make_service(out)
        pending = await svc.recover()
        assert [(e.invocation_id, e.phase) for e in pending] == [("orphan-1", Phase.RUNNING)]
        await svc.on_run(message)  # re-sent: still not a second process
        await svc.on_cancel(cancel("orphan-1"))
        result = await out.result("orphan-1")
        assert (result.outcome, result.reason) == (agent_pb2.INVOCATION_OUTCOME_CANCELLED, "cancelled")
    finally:
        orphan.kill()
        orphan.wait()


async def test_results_wait_in_the_journal_while_the_link_is_down(
    service: tuple[CommandService, Collector], journal_dir: Path
) -> None:
    svc, out = service
    out.link_down = True
    await svc.on_run(run("offline-1", "sh", "-c", "echo late"))  # the update is lost, the run is not
    await eventually(lambda: not svc.is_active("offline-1"), "the command ended and its delivery gave up")
    assert InvocationJournal(journal_dir).get("offline-1").phase is Phase.FINISHED
    out.link_down = False
    await svc.on_connected()
    result = await out.result("offline-1")
    assert result.outcome == agent_pb2.INVOCATION_OUTCOME_SUCCESS
    assert out.stdout("offline-1") == b"late\n"


# -- big output -----------------------------------------------------------------------------------


async def test_200_mb_of_binary_output_stream_in_bounded_memory(
    make_service: Callable[..., CommandService], journal_dir: Path
) -> None:
    out = Collector(hash_only=True)
    svc = make_service(out)
    await svc.recover()
    me = psutil.Process()
    baseline = me.memory_info().rss
    peak = [baseline]
    chunks = [0]

    def sample() -> None:
        chunks[0] += 1
        if chunks[0] % 64 == 0:
            peak[0] = max(peak[0], me.memory_info().rss)

    out.on_output = sample
    size = 200_000_000
    await svc.on_run(run("big-1", "head", "-c", str(size), "/dev/urandom"))
    result = await out.result("big-1", timeout=100)
    assert result.outcome == agent_pb2.INVOCATION_OUTCOME_SUCCESS
    assert result.stdout_bytes == size == out.received[("big-1", STDOUT)]
    assert out.gaps == []
    spooled = await asyncio.to_thread(_sha256, journal_dir / "big-1" / "stdout")
    assert out.digests[("big-1", STDOUT)].hexdigest() == spooled
    assert peak[0] - baseline < 50 * 1024 * 1024, f"RSS grew by {(peak[0] - baseline) / 2**20:.0f} MiB"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# -- reboot ---------------------------------------------------------------------------------------


async def test_exit_194_reboots_and_reports_success_after_the_restart(
    make_service: Callable[..., CommandService], journal_dir: Path, tmp_path: Path
) -> None:
    rebooted = tmp_path / "rebooted"
    out = Collector()
    svc = make_service(out, CommandRebooter(["touch", str(rebooted)]))
    await svc.recover()
    await svc.on_run(run("reboot-1", "sh", "-c", "echo patching; exit 194"))
    await eventually(rebooted.exists, "the reboot command ran")
    await eventually(lambda: InvocationJournal(journal_dir).get("reboot-1").phase is Phase.REBOOT_PENDING, "journaled")
    assert out.of("result", "reboot-1") == []  # the result waits for the agent to come back

    after = Collector()  # the agent after the reboot
    svc2 = make_service(after)
    pending = await svc2.recover()
    assert [(e.invocation_id, e.outcome, e.rebooted) for e in pending] == [("reboot-1", Outcome.SUCCESS, True)]
    await svc2.on_connected()
    result = await after.result("reboot-1")
    assert (result.outcome, result.exit_code, result.rebooted, result.reason) == (
        agent_pb2.INVOCATION_OUTCOME_SUCCESS,
        194,
        True,
        REASON_REBOOTED,
    )
    assert after.stdout("reboot-1") == b"patching\n"


async def test_a_failed_reboot_fails_the_invocation(make_service: Callable[..., CommandService]) -> None:
    out = Collector()
    svc = make_service(out, CommandRebooter(["false"]))
    await svc.recover()
    await svc.on_run(run("reboot-2", "sh", "-c", "exit 194"))
    result = await out.result("reboot-2")
    assert (result.outcome, result.exit_code, result.rebooted) == (agent_pb2.INVOCATION_OUTCOME_FAILED, 194, False)
    assert "the reboot failed" in result.reason


# -- malformed requests ---------------------------------------------------------------------------


async def test_an_unsafe_invocation_id_is_refused_without_running(
    service: tuple[CommandService, Collector], journal_dir: Path, tmp_path: Path
) -> None:
    svc, out = service
    marker = tmp_path / "ran.txt"
    await svc.on_run(run("../escape", "sh", "-c", f"echo ran > {marker}"))
    result = await out.result("../escape")
    assert (result.outcome, result.exit_code) == (agent_pb2.INVOCATION_OUTCOME_FAILED, -1)
    assert "invalid invocation id" in result.reason
    assert not marker.exists()
    assert list(journal_dir.iterdir()) == []
    await svc.on_result_ack(ack("../escape"))  # the controller's ack is harmless
