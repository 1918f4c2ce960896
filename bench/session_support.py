"""Helpers for bench/session.py: a throwaway sshd, a terminal the bench owns, the measurements.

``Terminal`` runs a client program (``ssh -tt ...`` or ``opsctl session HOST``) on a pseudo-terminal
whose master side this process holds: the slave is the client's stdin, stdout, stderr and controlling
terminal, exactly as in an operator's terminal emulator. Both clients put that terminal in raw mode
themselves; the bench only writes keystrokes to the master and reads the screen back.

``Session`` drives one client step by step (open, echo, cat, exit) so that bench/session.py can
interleave the clients' measurements (see there for what is measured).
Every marker the remote shell prints is built with shell arithmetic (``BENCH_X_$((6*7))`` prints
``BENCH_X_42``), so the echo of the typed command line can never match it.

tests/support (the integration harness: Controller, Agent, candidate_port) is put on
sys.path here, as pytest does through ``pythonpath`` in pyproject.toml.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import os
import re
import resource
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

TESTS_SUPPORT = Path(__file__).resolve().parent.parent / "tests" / "support"
if str(TESTS_SUPPORT) not in sys.path:
    sys.path.insert(0, str(TESTS_SUPPORT))

from harness import BASE_ENV, PYTHON, Agent, Controller, candidate_port  # noqa: E402, F401 - Agent, Controller: re-exported

SSHD = "/usr/sbin/sshd"
MiB = 1024 * 1024
ROWS, COLS = 24, 80
TERM = "xterm-256color"
# Runs as the child before the client: take the pty (stdin) as controlling terminal, then exec.
CTTY_EXEC = "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); os.execvp(sys.argv[1], sys.argv[1:])"
KEYS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"  # printable, no shell/tty meaning


class BenchError(Exception):
    """A step could not be done; the message says which and what the terminal showed."""


# --- the 200 MB file ---------------------------------------------------------------------------


def make_data(path: Path, size: int) -> int:
    """Printable text (base64 of random bytes, 76-character lines) of about ``size`` bytes; its size."""
    lines_per_chunk = 16384  # 57 random bytes -> one 77-byte line
    with open(path, "wb") as f:
        written = 0
        while written < size:
            lines = min(lines_per_chunk, -(-(size - written) // 77))
            chunk = base64.encodebytes(os.urandom(57 * lines))
            f.write(chunk)
            written += len(chunk)
    return path.stat().st_size


# --- a throwaway sshd --------------------------------------------------------------------------


class Sshd:
    """``sshd -D -e -f CONFIG`` on 127.0.0.1:<free port> with keys and config in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = directory / "sshd.log"
        self.client_key = directory / "client_ed25519"
        self.user = psutil.Process().username()
        self.made_privsep_dir = False

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        host_key = self.dir / "host_ed25519"
        for key in (host_key, self.client_key):
            keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleetops-bench", "-f", str(key)]
            done = subprocess.run(keygen, capture_output=True, text=True, timeout=30)
            if done.returncode != 0:
                raise BenchError(f"ssh-keygen failed: {done.stderr.strip()}")
        authorized = self.dir / "authorized_keys"
        authorized.write_text((self.dir / "client_ed25519.pub").read_text())
        os.chmod(authorized, 0o600)
        self.port = candidate_port()
        config = self.dir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    f"PidFile {self.dir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "PermitRootLogin yes",
                    "PrintMotd no",
                    "PrintLastLog no",
                    "AcceptEnv LANG LC_* TZ",
                    "LogLevel INFO",
                    "",
                ]
            )
        )
        # sshd refuses to start without its privilege separation directory; systemd's unit makes it
        # (RuntimeDirectory=sshd), a machine where sshd never ran as a service may not have it.
        if os.geteuid() == 0 and not Path("/run/sshd").exists():
            os.makedirs("/run/sshd", mode=0o755)
            self.made_privsep_dir = True
        test = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True, timeout=30)
        if test.returncode != 0:
            raise BenchError(f"{SSHD} -t -f {config} refused the configuration: {test.stderr.strip()}")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while "Server listening on" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"sshd did not start (exit {self.proc.poll()}):\n{self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def client_argv(self) -> list[str]:
        options = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "LogLevel=ERROR"]
        options += ["BatchMode=yes", "IdentitiesOnly=yes"]
        argv = ["ssh", "-F", "/dev/null", "-tt", "-p", str(self.port), "-i", str(self.client_key)]
        for option in options:
            argv += ["-o", option]
        return [*argv, f"{self.user}@127.0.0.1"]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(10)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self.made_privsep_dir:
            try:
                os.rmdir("/run/sshd")
            except OSError:
                pass


# --- a client on a terminal the bench owns -----------------------------------------------------


class Terminal:
    """``argv`` on a new pseudo-terminal (its controlling terminal, 80x24); we hold the master."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.argv = argv
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        try:
            self.proc = subprocess.Popen(
                [PYTHON, "-c", CTTY_EXEC, *argv],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                start_new_session=True,
            )
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        self.fd = master
        self.poller = select.poll()
        self.poller.register(master, select.POLLIN)
        self.pending = bytearray()  # read but not yet consumed by expect()
        self.recent: deque[bytes] = deque(maxlen=16)  # the last reads, for error messages
        self.closed = False  # the client's side of the terminal is gone (EOF/EIO on the master)
        self.exit_code: int | None = None
        self._fd_open = True

    @property
    def pid(self) -> int:
        return self.proc.pid

    def read(self, timeout: float) -> bytes:
        """What the client wrote to the screen (b"" on timeout); marks ``closed`` at the end.

        The hot loop of the throughput test: one read() syscall when output is ready, poll() only
        when it is not.
        """
        if self.closed:
            return b""
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            if not self.poller.poll(max(0, int(timeout * 1000))):
                return b""
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return b""
            except OSError as exc:
                data = self._gone(exc)
        except OSError as exc:
            data = self._gone(exc)
        if not data:
            self.closed = True
        self.recent.append(data)
        return data

    def _gone(self, exc: OSError) -> bytes:
        if exc.errno != errno.EIO:  # EIO: every slave fd is closed, the client has gone
            raise exc
        return b""

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                select.select([], [self.fd], [], 1.0)
                continue
            view = view[n:]

    def expect(self, pattern: bytes, timeout: float, what: str) -> re.Match[bytes]:
        """Read until ``pattern`` (a regex) shows up; everything up to its end is consumed."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            if m := regex.search(self.pending):
                del self.pending[: m.end()]
                return m
            if self.closed:
                raise BenchError(f"{what}: the client exited ({self.wait(5)}) first. {self.screen()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"{what}: nothing matching {pattern!r} within {timeout:.0f} s. {self.screen()}")
            self.pending += self.read(min(remaining, 0.5))

    def drain(self, quiet: float = 0.3, limit: float = 5.0) -> None:
        """Read and drop output until none came for ``quiet`` seconds."""
        self.pending.clear()
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and self.read(quiet):
            pass

    def screen(self) -> str:
        text = b"".join(self.recent)[-4096:].decode(errors="replace")
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")
        return "The screen ended with:\n    " + "\n    ".join(text.strip().splitlines()[-15:])

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self, timeout: float = 15.0) -> int | None:
        """Wait for the client to end (reading its screen meanwhile), then kill its group if it did not."""
        if not self._fd_open:
            return self.exit_code
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.read(0.1)
        code = self.proc.poll()
        if code is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                if (code := self.wait(5)) is not None:
                    break
        os.close(self.fd)
        self._fd_open, self.closed, self.exit_code = False, True, code
        return code


# --- memory while the cat runs -----------------------------------------------------------------


class RssSampler:
    """RSS of some processes: at start, the peak while running (every 50 ms), at stop."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.before = self._sample()
        self.peak = dict(self.before)
        self.after: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> dict[str, int]:
        out = {}
        for name, proc in self.procs.items():
            try:
                out[name] = proc.memory_info().rss
            except psutil.Error:
                out[name] = 0
        return out

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for name, rss in self._sample().items():
                self.peak[name] = max(self.peak[name], rss)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.after = self._sample()
        for name, rss in self.after.items():
            self.peak[name] = max(self.peak[name], rss)


# --- one client, measured ----------------------------------------------------------------------


@dataclass
class Cat:
    """One timed ``cat`` of the file."""

    seconds: float
    screen_bytes: int  # what reached the screen until the marker (a CR per line and the command echo too)
    bench_cpu_s: float  # this process's CPU meanwhile (it is the terminal emulator reading the screen)

    def mib_per_s(self, size: int) -> float:
        return size / MiB / self.seconds


@dataclass
class Result:
    ready_s: float = float("nan")  # client started -> its first output (the prompt)
    echo_ms: list[float] = field(default_factory=list)
    stray_bytes: int = 0  # output during the keystrokes that was not the echo of a key
    cats: list[Cat] = field(default_factory=list)
    rss: RssSampler | None = None  # from before the first cat to after the last
    exit_code: int | None = None
    error: str = ""

    def quantile(self, q: float) -> float:
        if not self.echo_ms:
            return float("nan")
        ordered = sorted(self.echo_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    @property
    def mean_ms(self) -> float:
        return sum(self.echo_ms) / len(self.echo_ms) if self.echo_ms else float("nan")

    def best_cat(self) -> Cat | None:
        return min(self.cats, key=lambda c: c.seconds) if self.cats else None


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Session:
    """One client (``argv``) on the bench's terminal, driven step by step so that the clients'
    measurements can be interleaved (the machine's background load then hits them alike).

    Every step raises BenchError with what the screen showed when it cannot be done.
    ``watch``: processes (besides the client) whose RSS is sampled from the first cat to the last.
    """

    def __init__(self, name: str, argv: list[str], watch: dict[str, int] | None = None) -> None:
        self.name, self.argv, self.watch = name, argv, watch or {}
        self.result = Result()
        self.term: Terminal | None = None
        self.keys_sent = 0

    @property
    def ok(self) -> bool:
        return not self.result.error

    def _term(self) -> Terminal:
        assert self.term is not None
        return self.term

    def open(self) -> None:
        """Start the client; wait for the remote shell to run a first command."""
        env = {**BASE_ENV, "TERM": TERM, "LANG": os.environ.get("LANG", "C.UTF-8")}
        t0 = time.monotonic()
        term = self.term = Terminal(self.argv, env)
        # Type only once the client has drawn something (the prompt): before that it may not have put
        # the terminal in raw mode yet, and doing so may flush what was typed ahead.
        while not term.pending:
            if term.closed:
                raise BenchError(f"{self.name}: the client exited ({term.wait(5)}) before any output. {term.screen()}")
            if time.monotonic() - t0 > 60:
                raise BenchError(f"{self.name}: no output (no prompt) within 60 s. {term.screen()}")
            term.pending += term.read(0.5)
        first_output_s = time.monotonic() - t0
        term.drain(quiet=0.5)
        for attempt in range(1, 4):
            term.write(b"unset HISTFILE; echo BENCH_READY_$((6*7))\r")
            try:
                term.expect(rb"BENCH_READY_42\r?\n", 10, f"{self.name}: waiting for the remote shell to run a command")
                break
            except BenchError:
                if attempt == 3 or term.closed:
                    raise
        self.result.ready_s = first_output_s  # only now: the first output may have been an error message
        term.drain()

    def start_echo(self, total: int) -> None:
        """The remote terminal without echo or line editing; ``dd bs=1`` writes each byte back at once
        (head or cat would hold it in stdio's buffer) until ``total`` keys have come."""
        term = self._term()
        term.write(
            f"stty -icanon -echo min 1 time 0; echo BENCH_ECHO_$((6*7)); dd bs=1 count={total} status=none; "
            f"stty icanon echo; echo; echo BENCH_ECHOED_$((6*7))\r".encode()
        )
        term.expect(rb"BENCH_ECHO_42\r?\n", 30, f"{self.name}: starting the echo program")
        term.drain(quiet=0.2)

    def keystrokes(self, count: int, timed: bool = True) -> None:
        """``count`` single keystrokes, each timed from its write until its echo is read back."""
        term = self._term()
        for _ in range(count):
            i = self.keys_sent % len(KEYS)
            key = KEYS[i : i + 1]
            start = time.perf_counter()
            term.write(key)
            got = bytes(term.pending)
            term.pending.clear()
            while key not in got:
                chunk = term.read(10.0)
                if not chunk:
                    what = "the client exited" if term.closed else "no echo within 10 s"
                    raise BenchError(f"{self.name}: keystroke {self.keys_sent + 1} ({key!r}): {what}. {term.screen()}")
                got += chunk
            elapsed = time.perf_counter() - start
            self.keys_sent += 1
            # Whatever came after the echo (the end marker, say) stays for the next expect().
            after = got.index(key) + 1
            term.pending += got[after:]
            self.result.stray_bytes += len(got) - 1
            if timed:
                self.result.echo_ms.append(elapsed * 1000)

    def end_echo(self) -> None:
        term = self._term()
        term.expect(rb"BENCH_ECHOED_42", 30, f"{self.name}: ending the echo program")
        term.drain()

    def cat(self, data: Path, timeout: float) -> Cat:
        """``cat FILE`` to the screen, read as fast as it comes; timed until the marker after it."""
        term = self._term()
        if self.result.rss is None:
            self.result.rss = RssSampler({**self.watch, "client": term.pid})
        marker = b"BENCH_CAT_42_DONE"
        cpu0 = _cpu()
        start = time.monotonic()
        term.write(f"cat {data}; echo BENCH_CAT_$((6*7))_DONE\r".encode())
        tail, count, deadline = b"", 0, start + timeout
        while True:
            chunk = term.read(1.0)
            if chunk:
                count += len(chunk)
                window = tail + chunk
                if marker in window:
                    break
                tail = window[-len(marker) :]
            elif term.closed:
                raise BenchError(f"{self.name}: the client exited during the cat after {count} bytes. {term.screen()}")
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: the cat did not end within {timeout:.0f} s ({count} bytes arrived)")
        result = Cat(time.monotonic() - start, count, _cpu() - cpu0)
        self.result.cats.append(result)
        term.drain()
        return result

    def stop_sampling(self) -> None:
        if self.result.rss is not None and not self.result.rss.after:
            self.result.rss.stop()

    def close(self) -> None:
        """``exit`` in the shell: the client must end on its own, with 0."""
        self.stop_sampling()
        term = self._term()
        term.write(b"exit\r")
        self.result.exit_code = code = term.close()
        if code != 0:
            raise BenchError(f"{self.name}: the client exited {code} after `exit` (want 0). {term.screen()}")

    def fail(self, exc: BaseException) -> None:
        """Record why this session cannot go on, and end its client."""
        self.result.error = str(exc) or type(exc).__name__
        self.abort()

    def abort(self) -> None:
        self.stop_sampling()
        term = self.term
        if term is None:
            return
        if not term.closed and term.proc.poll() is None:
            try:
                term.write(b"\x03exit\r")  # a Ctrl-C in case something still runs, then leave the shell
            except OSError:
                pass
        self.result.exit_code = term.close(timeout=5)

    def step(self, what: Callable[[], object]) -> None:
        """Run one step unless the session already failed; a failure ends the session."""
        if not self.ok:
            return
        try:
            what()
        except (BenchError, OSError, psutil.Error) as exc:
            self.fail(exc)


def say(line: str) -> None:
    print(line, flush=True)
