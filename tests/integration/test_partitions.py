"""Partitions, not only crashes (issue 14): what the user sees when a network path fails.

3 replicas on one PostgreSQL behind TCP load balancers, 6 agents in the root network namespace and
2 in namespaces of their own (tests/support/netns.py), each reaching the replicas over a veth pair
that a test takes down. Replica r3 reaches PostgreSQL through a TCP proxy that a test cuts. What
these tests show is written up in docs/partitions.md. Needs root and ``ip netns`` (skipped otherwise).

The cuts are the scenarios, so they are real time: 30 s (an agent), 90 s (an agent, longer than the
60 s session resume window) and 30 s (r3 from PostgreSQL); everything else waits for events.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from databases import new_postgres_database
from harness import BASE_ENV, PYTHON, Agent, wait_until
from netns import NetnsAgent, VethBalancer, VethEntry, VethHost, veth_hosts
from replicas import ReplicaSet
from tcp_proxy import TcpProxy
from terminal import PtyProcess

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT_NAMES = [f"node-{n:02d}" for n in range(6)]
CUT_NAMES = ["edge-0", "edge-1"]  # in namespaces of their own: edge-0 is cut for 30 s, edge-1 for 90 s
NAMES = sorted(ROOT_NAMES + CUT_NAMES)
DEAD_AFTER = "3s"  # seconds of silence after which a replica is dead (the default is 15s)
DB_CUT_REPLICA = 2  # r3 reaches PostgreSQL through a proxy
SHORT_CUT = 30.0
LONG_CUT = 90.0  # longer than the 60 s resume window of a session
HEARTBEAT = 1.0  # the harness's --heartbeat-interval: a host is offline after 3 missed


@pytest.fixture(scope="module")
def veths() -> Iterator[list[VethHost]]:
    with veth_hosts(len(CUT_NAMES)) as hosts:
        yield hosts


@pytest.fixture(scope="module")
def database(postgres_server: str) -> str:
    return new_postgres_database(postgres_server)


@pytest.fixture(scope="module")
def pg_proxy(database: str) -> Iterator[TcpProxy]:
    """A TCP proxy in front of PostgreSQL for replica r3 only."""
    url = urlsplit(database)
    assert url.hostname and url.port, database
    proxy = TcpProxy(url.hostname, url.port).start()
    try:
        yield proxy
    finally:
        proxy.stop()


def _through(database: str, proxy: TcpProxy) -> str:
    url = urlsplit(database)
    netloc = f"{url.username}@" if url.username else ""
    return urlunsplit(url._replace(netloc=f"{netloc}127.0.0.1:{proxy.port}"))


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, database: str, pg_proxy: TcpProxy, veths: list[VethHost]
) -> Iterator[ReplicaSet]:
    sans = ["localhost", "127.0.0.1", *(veth.root_address for veth in veths)]
    replica_set = ReplicaSet(
        tmp_path_factory.mktemp("partitions"),
        database,
        count=3,
        extra_args=["--replica-dead-after", DEAD_AFTER, *(arg for san in sans for arg in ("--san", san))],
        database_urls={DB_CUT_REPLICA: _through(database, pg_proxy)},
    )
    try:
        yield replica_set.start()
    finally:
        replica_set.stop()


@pytest.fixture(scope="module")
def entries(replicas: ReplicaSet, veths: list[VethHost]) -> Iterator[list[VethEntry]]:
    """Per namespace, the replicas' listen and enroll balancers on the root side of its veth pair."""
    made: list[VethEntry] = []
    try:
        for veth in veths:
            listen = VethBalancer(veth.root_address, [replicas.listen_target(i) for i in range(3)]).start()
            enroll = VethBalancer(veth.root_address, [("127.0.0.1", r.ports["enroll"]) for r in replicas.replicas])
            made.append(VethEntry(listen, enroll.start(), replicas.ca_cert))
        yield made
    finally:
        for entry in made:
            entry.listen.stop()
            entry.enroll.stop()


@pytest.fixture(scope="module")
def fleet(replicas: ReplicaSet, veths: list[VethHost], entries: list[VethEntry]) -> dict[str, Agent]:
    agents = replicas.start_agents(dict.fromkeys(ROOT_NAMES, {"place": "root"}))
    activation_id, code = replicas.create_activation("--limit", str(len(CUT_NAMES)), tags={"place": "edge"})
    root = replicas.root / "agents"
    for name, veth, entry in zip(CUT_NAMES, veths, entries, strict=True):
        agent = NetnsAgent(root, name, veth)
        replicas.agents.append(agent)  # stopped by replicas.stop
        agent.register(entry, activation_id, code)
        agent.start()
        agents[name] = agent
    wait_until(lambda: _online(replicas) == NAMES, 30, "the whole fleet online")
    return agents


# -- helpers ------------------------------------------------------------------------------------


def _online(replicas: ReplicaSet, replica: int | None = None) -> list[str]:
    return sorted(h["name"] for h in replicas.hosts(replica=replica) if h["status"] == "online")


def _status(replicas: ReplicaSet, name: str, replica: int = 0) -> str:
    return str(next(h["status"] for h in replicas.hosts(replica=replica) if h["name"] == name))


def ledger_script(ledger: Path, seconds: float) -> str:
    """Appends one line per run to the host's own ledger file, then takes ``seconds``."""
    return f'echo run >> {ledger}/"$FLEETOPS_HOST_NAME"; sleep {seconds}; echo done'


def _runs(ledger: Path) -> dict[str, int]:
    return {p.name: len(p.read_text().splitlines()) for p in ledger.iterdir()}


def detach(replicas: ReplicaSet, replica: int, *args: str) -> str:
    started = replicas.opsctl("run", "--detach", *args, replica=replica, check=False)
    assert started.returncode == 0, started.stdout + started.stderr
    return started.stdout.strip().splitlines()[-1]


def invocations(replicas: ReplicaSet, command_id: str, replica: int = 0) -> dict[str, dict[str, Any]]:
    """The command's invocations by host name, as ``opsctl run watch -o json`` shows them once final."""
    watched = replicas.opsctl("run", "watch", command_id, "-o", "json", replica=replica, check=False)
    docs = [json.loads(line) for line in watched.stdout.splitlines() if line.startswith("{")]
    return {d["host"]: d for d in docs}


def outcomes(docs: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {name: (d["state"], d["stdout"]) for name, d in docs.items()}


def final_invocations(replicas: ReplicaSet, command_id: str, replica: int, timeout: float) -> dict[str, dict[str, Any]]:
    """Once the command is final (waited for), its invocations by host name."""

    def final() -> bool:
        shown = replicas.opsctl_json("command", "show", command_id, replica=replica)
        return bool(shown["command"]["status"] != "in_progress")

    wait_until(final, timeout, f"command {command_id} final")
    return invocations(replicas, command_id, replica)


def counts(replicas: ReplicaSet, command_id: str, replica: int = 0) -> dict[str, int]:
    return dict(replicas.opsctl_json("command", "show", command_id, replica=replica)["command"]["counts"])


def until(deadline: float) -> None:
    """Let a cut last until ``deadline`` (time.monotonic()): the cut's length is the scenario."""
    time.sleep(max(0.0, deadline - time.monotonic()))


def session(replicas: ReplicaSet, replica: int, host: str, stderr: Path) -> PtyProcess:
    env = {**os.environ, **BASE_ENV, "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    profile = replicas.profile_for(replica)
    return PtyProcess([PYTHON, "-m", "fleetops.opsctl", "--profile", str(profile), "session", host], env, stderr=stderr)


def counting(count: int) -> str:
    """A shell loop printing 1..count, about ten lines a second, then end42."""
    return f"i=0; while [ $i -lt {count} ]; do i=$((i+1)); echo $i; sleep 0.1; done; echo end$((6*7))\r"


def numbers_before_end(output: bytes) -> list[str]:
    text = output.decode()
    start = re.search(r"[\r\n]1\r\n2\r\n", text)
    assert start, text[:3000]
    return text[start.start() + 1 : text.index("end42", start.start())].split()


def _last_number(output: bytes) -> int:
    return int(re.findall(rb"\r\n(\d+)\r\n", output)[-1])


def _closed_by(term: PtyProcess, deadline: float) -> bool:
    """Read the session's terminal until it closes (True) or ``deadline`` passes (False)."""
    while not term.closed and time.monotonic() < deadline:
        term._read(deadline - time.monotonic())
    return term.closed


def journal_entry(agent: Agent, invocation_id: str) -> dict[str, Any]:
    return dict(json.loads((agent.state_dir / "journal" / invocation_id / "state.json").read_text()))


def invocation_id_of(replicas: ReplicaSet, command_id: str, host: str) -> str:
    shown = replicas.opsctl_json("command", "show", command_id)
    return str(next(i["id"] for i in shown["invocations"] if i["host_name"] == host))


def _link_lines(agent: Agent) -> list[str]:
    assert agent.process is not None
    words = ("connected to", "unreachable", "session")
    return [line for line in agent.process.output().splitlines() if any(w in line for w in words)]


def _timings(name: str, **values: float) -> None:
    print(f"\n[{name}] " + ", ".join(f"{k}={v:.1f}s" for k, v in values.items()))


# -- scenarios ----------------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_an_agent_cut_off_for_30s_finishes_its_command_once_and_resumes_its_session(
    replicas: ReplicaSet, fleet: dict[str, Agent], veths: list[VethHost], tmp_path: Path
) -> None:
    """edge-0 is cut off for 30 s while a command runs on it and an operator's session prints to it."""
    host, veth = CUT_NAMES[0], veths[0]
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    command_id = detach(replicas, 0, "--all", "--", "sh", "-c", ledger_script(ledger, 10))
    wait_until(lambda: len(_runs(ledger)) == len(NAMES), 30, "every host started its run")
    errors = tmp_path / "opsctl.stderr"
    term = session(replicas, 1, host, errors)
    try:
        term.send("PS1='R''DY> '\r")
        term.expect(r"RDY> ")
        count = 500  # about 50 s of output: it goes on during the cut and after it
        term.send(counting(count))
        term.expect(r"\r\n20\r\n")

        veth.cut()
        cut_at = time.monotonic()
        wait_until(lambda: _status(replicas, host) == "offline", 20, f"{host} offline in hosts list")
        offline_after = time.monotonic() - cut_at
        assert _online(replicas) == [n for n in NAMES if n != host]  # only the cut host
        wait_until(lambda: counts(replicas, command_id).get("success") == len(NAMES) - 1, 25, "the others done")
        assert counts(replicas, command_id).get("running") == 1, "the cut host's invocation is still running"
        assert time.monotonic() - cut_at < SHORT_CUT, "the checks above took longer than the cut"
        until(cut_at + SHORT_CUT)
        shown_before = _last_number(term.output)
        veth.restore()
        restored_at = time.monotonic()
        # What the program printed during the cut was held on the host; it arrives now.
        term.expect(rf"\r\n{shown_before + 100}\r\n", timeout=90)
        resumed_after = time.monotonic() - restored_at

        wait_until(lambda: _status(replicas, host) == "online", 90, f"{host} online again")
        online_after = time.monotonic() - restored_at
        docs = final_invocations(replicas, command_id, 2, 60)
        final_after = time.monotonic() - restored_at
        assert outcomes(docs) == dict.fromkeys(NAMES, ("success", "done\n"))
        assert _runs(ledger) == dict.fromkeys(NAMES, 1), "a host ran the command twice"

        term.expect(r"end42", timeout=120)
        term.send("exit\r")
        assert term.wait() == 0
    finally:
        veth.restore()
        term.close()
    assert numbers_before_end(term.output) == [str(n) for n in range(1, count + 1)], "session output lost or doubled"
    record = replicas.opsctl_json("session", "list")[0]
    done = replicas.opsctl_json("session", "show", record["id"])
    assert done["host_name"] == host and done["end_reason"] == "exited" and done["exit_code"] == 0
    print(f"\n[30s agent cut] agent log: {_link_lines(fleet[host])}")
    _timings(
        "30s agent cut",
        offline_after_cut=offline_after,
        online_after_restore=online_after,
        command_final_after_restore=final_after,
        session_output_resumed_after_restore=resumed_after,
    )


@pytest.mark.timeout(300)
def test_an_agent_cut_off_for_90s_reports_its_result_after_and_its_session_ends_with_a_message(
    replicas: ReplicaSet, fleet: dict[str, Agent], veths: list[VethHost], tmp_path: Path
) -> None:
    """edge-1 is cut off for 90 s, longer than a session's 60 s resume window."""
    host, veth = CUT_NAMES[1], veths[1]
    agent = fleet[host]
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    command_id = detach(replicas, 1, "--target", "place=edge", "--", "sh", "-c", ledger_script(ledger, 10))
    wait_until(lambda: len(_runs(ledger)) == len(CUT_NAMES), 30, "both edge hosts started their run")
    invocation_id = invocation_id_of(replicas, command_id, host)
    errors = tmp_path / "opsctl.stderr"
    term = session(replicas, 0, host, errors)
    try:
        term.send("PS1='R''DY> '\r")
        term.expect(r"RDY> ")
        term.send(counting(2000))
        term.expect(r"\r\n20\r\n")

        veth.cut()
        cut_at = time.monotonic()
        wait_until(lambda: _status(replicas, host) == "offline", 20, f"{host} offline in hosts list")
        offline_after = time.monotonic() - cut_at
        # The host finishes the command while cut off: its journal keeps the result for the controller.
        entry = wait_until(
            lambda: (e := journal_entry(agent, invocation_id))["phase"] == "finished" and e, 30, "the result journaled"
        )
        assert entry["outcome"] == "success" and entry["exit_code"] == 0, entry
        assert (agent.state_dir / "journal" / invocation_id / "stdout").read_text() == "done\n"
        shown = replicas.opsctl_json("command", "show", command_id)
        waiting = next(i for i in shown["invocations"] if i["host_name"] == host)
        assert waiting["state"] == "running", waiting
        assert "running, the result comes when it reconnects" in waiting["waiting_reason"], waiting
        # The operator's terminal stays open, frozen, during the cut (the controller has not given up yet).
        ended_in_cut = _closed_by(term, cut_at + LONG_CUT)
        until(cut_at + LONG_CUT)
        veth.restore()
        restored_at = time.monotonic()

        wait_until(lambda: _status(replicas, host) == "online", 120, f"{host} online again")
        online_after = time.monotonic() - restored_at
        docs = final_invocations(replicas, command_id, 2, 60)
        final_after = time.monotonic() - restored_at
        # The session ends once the controller's own 60 s resume window has passed; see docs/partitions.md.
        assert _closed_by(term, time.monotonic() + 90), "the session did not end"
        ended_after = time.monotonic() - cut_at
        status = term.process.wait(10)
    finally:
        veth.restore()
        term.close()
    assert outcomes(docs) == dict.fromkeys(CUT_NAMES, ("success", "done\n"))
    assert _runs(ledger) == dict.fromkeys(CUT_NAMES, 1), "a host ran the command twice"
    assert journal_entry(agent, invocation_id)["phase"] == "acked"
    assert status == 255, term.output[-2000:]
    message = "the host's connection did not come back within 1m"
    assert f"fleetops: {message}" in errors.read_text()
    record = next(s for s in replicas.opsctl_json("session", "list") if s["host_name"] == host)
    assert (record["end_reason"], record["end_message"]) == ("agent_lost", message), record
    assert agent.process is not None
    assert "hung up: no stream to the controller for 60 s" in agent.process.output()
    print(f"\n[90s agent cut] ended during the cut: {ended_in_cut}; agent log: {_link_lines(agent)}")
    _timings(
        "90s agent cut",
        offline_after_cut=offline_after,
        online_after_restore=online_after,
        command_final_after_restore=final_after,
        session_ended_after_cut=ended_after,
    )


@pytest.mark.timeout(240)
def test_a_replica_cut_off_from_postgres_for_30s_mid_fan_out(
    replicas: ReplicaSet, fleet: dict[str, Agent], pg_proxy: TcpProxy, tmp_path: Path
) -> None:
    """r3, which created a fan-out to every host, loses PostgreSQL for 30 s while it runs."""
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    owner = DB_CUT_REPLICA
    held = [h["name"] for h in replicas.hosts() if h["replica"] == replicas.replica_id(owner)]
    assert held, "r3 must hold some hosts"
    command_id = detach(replicas, owner, "--all", "--", "sh", "-c", ledger_script(ledger, 15))
    wait_until(lambda: len(_runs(ledger)) == len(NAMES), 30, "every host started its run")

    pg_target = pg_proxy.targets
    pg_proxy.set_targets([])  # new connections to PostgreSQL are refused...
    pg_proxy.drop()  # ...and the open ones reset
    cut_at = time.monotonic()
    try:
        seen: dict[str, Any] = {}

        def r3_dead_for_the_others() -> bool:
            hosts = replicas.hosts(replica=0)
            seen["hosts"] = {h["name"]: (h["status"], h["replica"]) for h in hosts}
            return all(h["replica"] != replicas.replica_id(owner) for h in hosts)

        wait_until(r3_dead_for_the_others, 20, "r3's routes cleared by the others")
        routes_cleared_after = time.monotonic() - cut_at
        during = dict(seen["hosts"])
        assert time.monotonic() - cut_at < SHORT_CUT
        until(cut_at + SHORT_CUT)
    finally:
        pg_proxy.set_targets(pg_target)
    restored_at = time.monotonic()

    try:
        docs = final_invocations(replicas, command_id, 0, 90)
    except AssertionError:
        print("[pg] during", during, "routes cleared after", routes_cleared_after)
        shown = replicas.opsctl_json("command", "show", command_id)
        print("[pg] command", shown["command"]["status"], shown["command"]["counts"])
        for inv in shown["invocations"]:
            print("[pg] inv", inv["host_name"], inv["state"], inv.get("waiting_reason"), inv.get("reason"))
        print("[pg] hosts", [(h["name"], h["status"], h["replica"]) for h in replicas.hosts()])
        for i, r in enumerate(replicas.replicas):
            assert r.process is not None
            words = ("WARN", "ERROR", command_id, "replica")
            lines = [ln for ln in r.process.output().splitlines() if any(w in ln for w in words)]
            print(f"[pg] r{i + 1} log:\n" + "\n".join(lines[-40:]))
        raise
    final_after = time.monotonic() - restored_at
    logs = [r.process.output() if r.process else "" for r in replicas.replicas]
    adopters = [replicas.replica_id(i) for i, log in enumerate(logs) if f"adopted command {command_id}" in log]
    assert len(adopters) == 1 and adopters != [replicas.replica_id(owner)], adopters  # the scenario: taken over
    assert f"command {command_id} is run by another replica now" in logs[owner]  # r3 let it go when back
    caught_up = sum(log.count("asking host") for log in logs)
    assert outcomes(docs) == dict.fromkeys(NAMES, ("success", "done\n")), docs
    assert _runs(ledger) == dict.fromkeys(NAMES, 1), "a host ran the command twice"
    wait_until(lambda: _online(replicas) == NAMES, 60, "the fleet online again")
    online_after = time.monotonic() - restored_at
    print(f"\n[pg cut] hosts seen from r1 during the cut: {during}")
    _timings(
        "30s replica-PostgreSQL cut",
        routes_cleared_after_cut=routes_cleared_after,
        command_final_after_restore=final_after,
        fleet_online_after_restore=online_after,
    )
    print(f"[pg cut] adopted by {adopters[0]}; results that came before their output, rest asked for: {caught_up}")
