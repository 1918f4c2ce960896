"""Port forwarding benchmark: `opsctl forward` and `ssh -L` through fleetops against `ssh -L` to OpenSSH.

Run from the repository root (as root, like the agent it starts; needs openssh-server and the
OpenSSH client)::

    .venv/bin/python bench/forward.py [--size-mb 200] [--rounds 1] [--setup-runs 3] [--keep-tmp]

Three forwards of one local port to the same far end, measured in one run:

1. OpenSSH, the baseline: ``ssh -N -L`` to a throwaway ``/usr/sbin/sshd`` on 127.0.0.1:<free port>
   (bench/session_support.py ``Sshd``: fresh keys, no PAM), which connects onward itself.
2. fleetops ``ssh -L``: stock ssh with the ``opsctl ssh-config`` block, ``root@HOST.fleet``: ssh ->
   opsctl proxy -> controller -> agent's SSH server -> far end.
3. ``opsctl forward HOST LPORT:127.0.0.1:PORT``: the same path with the SSH client inside opsctl.
4. asyncssh alone, a floor: ``ssh -N -L`` straight to an asyncssh server on 127.0.0.1 (a child
   process of this script; the agent's SSH stack without the relay), to tell how much of the gap
   to OpenSSH is the relay and how much the SSH server in Python.

The far end is a TCP source/sink (asyncio, a child process of this script, so that its CPU is not
the bench's): ``SOURCE N`` sends N random bytes and closes; ``SINK N`` reads until the end and
answers ``OK N``. Measured per forward:

* throughput: --size-mb through an established forward, far end -> client (download) and client ->
  far end (upload); MB/s = 10^6 bytes/s, best of --rounds;
* first byte through a fresh forward: from starting the client process (ssh or opsctl) until one
  byte from the far end arrived through it (process start, session, SSH handshake and login,
  listener, one channel);
* ``ssh HOST true`` wall time: ``ssh root@HOST.fleet true`` against ``ssh -p PORT 127.0.0.1 true``
  to the throwaway sshd, median of --setup-runs.

Goals (PASS/FAIL): throughput of each fleetops forward at least 0.5x OpenSSH's, each way; first
byte and ``ssh HOST.fleet true`` under 1 s. Exit code: 0 when everything was measured (whatever
the verdicts), 1 when something could not be (``error: the bench failed: ...``), 2 when sshd or
ssh is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from connect_support import run_bench
from session_support import PYTHON, SSHD, Agent, BenchError, Controller, Sshd, candidate_port, say

HOST = "bench-forward"
MB = 1_000_000
BLOCK = 1024 * 1024
GOAL_THROUGHPUT_RATIO = 0.5
GOAL_SETUP_S = 1.0
TIMEOUT = 120.0
PATHS = ("OpenSSH", "fleetops ssh -L", "opsctl forward", "asyncssh alone")
FLEETOPS_PATHS = slice(1, 3)


# --- the far end -----------------------------------------------------------------------------------


async def far_end_main() -> None:
    """The source/sink server: prints its port, serves until stdin ends."""
    block = os.urandom(BLOCK)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            command, _, count = (await reader.readline()).decode().partition(" ")
            size = int(count)
            if command == "SOURCE":
                while size > 0:
                    writer.write(block[: min(size, BLOCK)])
                    size -= min(size, BLOCK)
                    await writer.drain()
            elif command == "SINK":
                got = 0
                while data := await reader.read(BLOCK):
                    got += len(data)
                writer.write(f"OK {got}\n".encode())
                await writer.drain()
        except (OSError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()


# --- the clients of a forward ------------------------------------------------------------------------


async def download(port: int, size: int) -> float:
    """Seconds for ``size`` bytes from the far end through the forward on ``port``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        start = time.perf_counter()
        writer.write(f"SOURCE {size}\n".encode())
        got = 0
        while data := await reader.read(BLOCK):
            got += len(data)
        elapsed = time.perf_counter() - start
    finally:
        writer.close()
    if got != size:
        raise BenchError(f"download through port {port}: {got} bytes arrived, not {size}")
    return elapsed


async def upload(port: int, size: int) -> float:
    """Seconds for ``size`` bytes to the far end (until it confirmed them) through the forward on ``port``."""
    block = os.urandom(BLOCK)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        start = time.perf_counter()
        writer.write(f"SINK {size}\n".encode())
        left = size
        while left > 0:
            writer.write(block[: min(left, BLOCK)])
            left -= min(left, BLOCK)
            await writer.drain()
        writer.write_eof()
        answer = (await reader.readline()).decode().strip()
        elapsed = time.perf_counter() - start
    finally:
        writer.close()
    if answer != f"OK {size}":
        raise BenchError(f"upload through port {port}: the far end answered {answer!r}, not 'OK {size}'")
    return elapsed


async def first_byte(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"SOURCE 1\n")
        if len(await reader.readexactly(1)) != 1:
            raise BenchError("no byte came through the fresh forward")
    finally:
        writer.close()


async def accepting(port: int, proc: asyncio.subprocess.Process, deadline: float) -> None:
    """Until 127.0.0.1:``port`` accepts (ssh -N prints nothing when its listener is up)."""
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if proc.returncode is not None:
                raise BenchError(f"the forwarding client exited ({proc.returncode}) before listening") from None
            if time.monotonic() > deadline:
                raise BenchError(f"nothing listened on 127.0.0.1:{port} within {TIMEOUT:.0f} s") from None
            await asyncio.sleep(0.01)
            continue
        writer.close()
        return


# --- the asyncssh floor --------------------------------------------------------------------------


async def asyncssh_server_main(directory: Path) -> None:
    """An asyncssh server on 127.0.0.1 that lets its one client key forward anywhere; prints its port."""
    from fleetops.common.ssh import asyncssh

    class Forwarding(asyncssh.SSHServer):
        def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> bool:
            return True

    directory.mkdir(parents=True, exist_ok=True)
    client = asyncssh.generate_private_key("ssh-ed25519")
    client.write_private_key(directory / "client")
    (directory / "client").chmod(0o600)  # ssh refuses a key others may read
    server = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_factory=Forwarding,
        server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")],
        authorized_client_keys=asyncssh.import_authorized_keys(client.export_public_key().decode()),
        encoding=None,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.to_thread(sys.stdin.buffer.read)  # serve until the bench closes our stdin


async def start_asyncssh_floor(directory: Path, stack: list[asyncio.subprocess.Process]) -> tuple[int, Path]:
    proc = await asyncio.create_subprocess_exec(
        PYTHON, __file__, "--asyncssh-server", str(directory),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    stack.append(proc)
    assert proc.stdout is not None
    port = int((await asyncio.wait_for(proc.stdout.readline(), 30)).decode() or "0")
    if not port:
        raise BenchError("the asyncssh floor server did not start")
    say(f"asyncssh alone: server on 127.0.0.1:{port}")
    return port, directory / "client"


# --- one forward -------------------------------------------------------------------------------------


@dataclass
class Path_:
    name: str
    start: Callable[[int], Awaitable[tuple[asyncio.subprocess.Process, int]]]  # far port -> (client, local port)
    ssh_true: list[str]
    down_s: list[float] = field(default_factory=list)
    up_s: list[float] = field(default_factory=list)
    first_byte_s: float = float("nan")
    true_s: list[float] = field(default_factory=list)
    error: str = ""


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with_group = proc.pid
        try:
            os.killpg(with_group, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            os.killpg(with_group, signal.SIGKILL)
            await proc.wait()


async def spawn(argv: list[str], log: Path, pipe_stdout: bool = False) -> asyncio.subprocess.Process:
    with open(log, "ab") as out:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if pipe_stdout else out,
            stderr=out,
            start_new_session=True,
        )


def ssh_l_starter(
    base: list[str], target: str, log: Path
) -> Callable[[int], Awaitable[tuple[asyncio.subprocess.Process, int]]]:
    async def start(far_port: int) -> tuple[asyncio.subprocess.Process, int]:
        local = candidate_port()
        argv = [*base, "-N", "-o", "ExitOnForwardFailure=yes", "-L", f"{local}:127.0.0.1:{far_port}", target]
        proc = await spawn(argv, log)
        await accepting(local, proc, time.monotonic() + TIMEOUT)
        return proc, local

    return start


def opsctl_starter(profile: Path, log: Path) -> Callable[[int], Awaitable[tuple[asyncio.subprocess.Process, int]]]:
    async def start(far_port: int) -> tuple[asyncio.subprocess.Process, int]:
        argv = [PYTHON, "-m", "fleetops.opsctl", "--profile", str(profile), "forward", HOST, f"0:{far_port}"]
        proc = await spawn(argv, log, pipe_stdout=True)
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode()
        if not line.startswith("forwarding "):
            await proc.wait()
            raise BenchError(f"opsctl forward exited ({proc.returncode}): see {log}:\n{log.read_text()[-1500:]}")
        return proc, int(line.split()[1].rsplit(":", 1)[1])

    return start


async def measure(path: Path_, far_port: int, args: argparse.Namespace) -> None:
    size = args.size_mb * MB
    t0 = time.perf_counter()
    proc, port = await path.start(far_port)
    try:
        await asyncio.wait_for(first_byte(port), TIMEOUT)
        path.first_byte_s = time.perf_counter() - t0
        say(f"{path.name}: first byte through a fresh forward after {path.first_byte_s:.2f} s")
        for _ in range(args.rounds):
            path.down_s.append(await asyncio.wait_for(download(port, size), TIMEOUT * 5))
            path.up_s.append(await asyncio.wait_for(upload(port, size), TIMEOUT * 5))
            down, up = size / MB / path.down_s[-1], size / MB / path.up_s[-1]
            say(f"{path.name}: download {down:.1f} MB/s, upload {up:.1f} MB/s")
    finally:
        await stop(proc)


async def time_true(path: Path_, runs: int) -> None:
    for _ in range(runs):
        start = time.perf_counter()
        done = await asyncio.create_subprocess_exec(
            *path.ssh_true, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        _, err = await asyncio.wait_for(done.communicate(), TIMEOUT)
        if done.returncode != 0:
            raise BenchError(f"{' '.join(path.ssh_true)} exited {done.returncode}: {err.decode().strip()[-500:]}")
        path.true_s.append(time.perf_counter() - start)


# --- report ------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL  <<<"


def report(paths: list[Path_], args: argparse.Namespace) -> None:
    size = args.size_mb * MB
    base = paths[0]

    def mbps(times: list[float]) -> float:
        return size / MB / min(times) if times else float("nan")

    def cell(value: float, fmt: str) -> str:
        return format(value, fmt) if value == value else "-"

    print(
        f"\nport forwarding vs OpenSSH, 127.0.0.1, {os.cpu_count()} cores: {args.size_mb} MB each way, "
        f"best of {args.rounds}; ssh true: median of {args.setup_runs}"
    )
    print(f"  {'':34s}" + "".join(f"{p.name:>17s}" for p in paths))
    rows: list[tuple[str, Callable[[Path_], float], str]] = [
        ("download (MB/s)", lambda p: mbps(p.down_s), ".1f"),
        ("upload (MB/s)", lambda p: mbps(p.up_s), ".1f"),
        ("first byte, fresh forward (s)", lambda p: p.first_byte_s, ".2f"),
        ("ssh HOST true (s)", lambda p: statistics.median(p.true_s) if p.true_s else float("nan"), ".2f"),
    ]
    for label, value, fmt in rows:
        line = f"  {label:34s}" + "".join(f"{cell(value(p), fmt):>17s}" for p in paths)
        print(line)
    print("  ratio to OpenSSH:")
    for label, value, _ in rows[:2]:
        for p in paths[FLEETOPS_PATHS]:
            ratio = value(p) / value(base) if value(base) > 0 else float("nan")
            ok = ratio >= GOAL_THROUGHPUT_RATIO
            shown = f"{ratio:.2f}x" if ratio == ratio else "-"
            print(f"    {p.name} {label:17s} {shown:>7s}   >= {GOAL_THROUGHPUT_RATIO}x: {verdict(ok)}")
    floor = paths[3]
    print("  the SSH server in Python without the relay (asyncssh alone), for comparison:")
    for label, value, _ in rows[:2]:
        ratio = value(floor) / value(base) if value(base) > 0 else float("nan")
        relay = value(paths[1]) / value(floor) if value(floor) > 0 else float("nan")
        print(f"    {label:17s} {ratio:.2f}x OpenSSH; fleetops ssh -L is {relay:.2f}x of it")
    print("  set-up (fleetops):")
    for p in paths[FLEETOPS_PATHS]:
        ok = p.first_byte_s < GOAL_SETUP_S
        print(f"    {p.name}: first byte {cell(p.first_byte_s, '.2f')} s   < {GOAL_SETUP_S:g} s: {verdict(ok)}")
    fleet_true = paths[1].true_s
    if fleet_true:
        median = statistics.median(fleet_true)
        base_true = statistics.median(base.true_s) if base.true_s else float("nan")
        print(
            f"    ssh {HOST}.fleet true: {median:.2f} s (OpenSSH {base_true:.2f} s, "
            f"{median / base_true:.1f}x)   < {GOAL_SETUP_S:g} s: {verdict(median < GOAL_SETUP_S)}"
        )
    for p in paths:
        if p.error:
            print(f"\n  {p.name} FAILED  <<<\n    " + "\n    ".join(p.error.splitlines()))


# --- main --------------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    if not (Path(SSHD).exists() and shutil.which("ssh") and shutil.which("ssh-keygen")):
        print(
            f"{SSHD}, ssh or ssh-keygen is missing: the bench needs them.\n"
            "  install: apt-get install openssh-server openssh-client",
            file=sys.stderr,
        )
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="fleetops-forward-bench-", dir="/tmp"))
    controller = Controller(tmp / "controller")
    agents: dict[str, Agent] = {}
    sshd = Sshd(tmp / "sshd")
    far: asyncio.subprocess.Process | None = None
    stack: list[asyncio.subprocess.Process] = []  # helper processes to stop at the end
    measured = False
    try:
        far = await asyncio.create_subprocess_exec(
            PYTHON, __file__, "--far-end", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        assert far.stdout is not None
        far_port = int((await asyncio.wait_for(far.stdout.readline(), 30)).decode() or "0")
        if not far_port:
            raise BenchError("the far end did not start")
        say(f"far end (source/sink) on 127.0.0.1:{far_port}")
        await asyncio.to_thread(sshd.start)
        say(f"OpenSSH: sshd listening on 127.0.0.1:{sshd.port}")
        await asyncio.to_thread(controller.start, "10s")
        activation_id, code = controller.create_activation("--limit", "1", tags={"bench": "forward"})
        agent = agents[HOST] = Agent(tmp / "fleet", HOST)
        await asyncio.to_thread(agent.register, controller, activation_id, code)
        await asyncio.to_thread(agent.start)
        say(f"fleetops: controller on {controller.address}, agent {HOST} connected")
        config = tmp / "fleet_ssh_config"
        config.write_text(controller.opsctl("ssh-config").stdout)

        options = ["-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]
        openssh_base = [
            "ssh", "-F", "/dev/null", "-p", str(sshd.port), "-i", str(sshd.client_key), *options,
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
        ]  # fmt: skip
        openssh_target = f"{sshd.user}@127.0.0.1"
        fleet_base = ["ssh", "-F", str(config), *options]
        fleet_target = f"root@{HOST}.fleet"
        log = tmp / "clients.log"
        paths = [
            Path_(PATHS[0], ssh_l_starter(openssh_base, openssh_target, log), [*openssh_base, openssh_target, "true"]),
            Path_(PATHS[1], ssh_l_starter(fleet_base, fleet_target, log), [*fleet_base, fleet_target, "true"]),
            Path_(PATHS[2], opsctl_starter(controller.profile, log), []),
        ]
        floor_port, floor_key = await start_asyncssh_floor(tmp / "asyncssh", stack)
        floor_base = [
            "ssh", "-F", "/dev/null", "-p", str(floor_port), "-i", str(floor_key), *options,
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
        ]  # fmt: skip
        paths.append(Path_(PATHS[3], ssh_l_starter(floor_base, "root@127.0.0.1", log), []))
        for path in paths:
            try:
                await measure(path, far_port, args)
                if path.ssh_true:
                    await time_true(path, args.setup_runs)
            except (BenchError, OSError, TimeoutError) as exc:
                path.error = str(exc) or type(exc).__name__
        report(paths, args)
        failed = [p.name for p in paths if p.error]
        if failed:
            raise RuntimeError(f"{', '.join(failed)} could not be measured (see above; logs in {tmp})")
        measured = True
        return 0
    except BenchError as exc:
        raise RuntimeError(str(exc)) from None
    finally:
        if far is not None and far.returncode is None:
            assert far.stdin is not None
            far.stdin.close()
            try:
                await asyncio.wait_for(far.wait(), 10)
            except TimeoutError:
                far.kill()
                await far.wait()
        for helper in stack:
            await stop(helper)
        for agent in agents.values():
            agent.stop()
        controller.stop()
        sshd.stop()
        if args.keep_tmp or not measured:  # a failure's logs are kept for the reader
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="opsctl forward and ssh -L via fleetops vs ssh -L to OpenSSH")
    parser.add_argument("--size-mb", type=int, default=200, help="MB through each forward each way (default 200)")
    parser.add_argument("--rounds", type=int, default=1, help="transfers each way per forward; the best counts")
    parser.add_argument("--setup-runs", type=int, default=3, help="runs of `ssh HOST true` (median)")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, state)")
    parser.add_argument("--far-end", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--asyncssh-server", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.far_end:
        asyncio.run(far_end_main())
        sys.exit(0)
    if arguments.asyncssh_server:
        asyncio.run(asyncssh_server_main(arguments.asyncssh_server))
        sys.exit(0)
    sys.exit(run_bench(main(arguments)))
