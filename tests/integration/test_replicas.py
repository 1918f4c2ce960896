"""Several controllers, one fleet (issue 14): 3 replicas on one PostgreSQL behind a TCP load balancer,
21 real agents spread over them. A command created on one replica reaches every host wherever it is
connected; watch and cancel work from any replica; killing a replica (one holding part of the fleet,
or the one running the fan-out) in the middle of a fan-out leaves every invocation final and every
host's ledger with exactly one run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from fleetops.v1 import agent_pb2, peer_pb2, peer_pb2_grpc

from databases import new_postgres_database
from harness import BASE_ENV, PYTHON, Agent, wait_until
from load_balancer import LoadBalancer
from replicas import ReplicaSet
from terminal import PtyProcess

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

NAMES = [f"node-{n:02d}" for n in range(21)]
# Seconds of silence after which a replica is dead in these tests (the default is 15s).
DEAD_AFTER = "3s"


@pytest.fixture(scope="module")
def replicas(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicaSet]:
    replica_set = ReplicaSet(
        tmp_path_factory.mktemp("replicas"),
        new_postgres_database(postgres_server),
        count=3,
        extra_args=["--replica-dead-after", DEAD_AFTER],
    )
    try:
        yield replica_set.start()
    finally:
        replica_set.stop()


@pytest.fixture(scope="module")
def fleet(replicas: ReplicaSet) -> dict[str, Agent]:
    agents = replicas.start_agents({name: {"group": "abc"[n % 3]} for n, name in enumerate(NAMES)})
    wait_until(lambda: all(replicas.links_to(i) >= 1 for i in range(3)), 20, "agents on every replica")
    return agents


def run(replicas: ReplicaSet, replica: int, *args: str) -> subprocess.CompletedProcess[str]:
    return replicas.opsctl("run", *args, replica=replica, check=False)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def counts(replicas: ReplicaSet, replica: int, command_id: str) -> dict[str, int]:
    shown = replicas.opsctl_json("command", "show", command_id, replica=replica)
    return dict(shown["command"]["counts"])


def detach(replicas: ReplicaSet, replica: int, *command: str) -> str:
    started = run(replicas, replica, "--all", "--detach", "--", *command)
    assert started.returncode == 0, started.stderr
    return started.stdout.strip().splitlines()[-1]


def ledger_script(ledger: Path, seconds: float) -> str:
    """Appends one line per run to the host's own ledger file, then takes ``seconds``."""
    return f'echo run >> {ledger}/"$FLEETOPS_HOST_NAME"; sleep {seconds}; echo done'


def test_a_fan_out_created_on_one_replica_reaches_every_host(replicas: ReplicaSet, fleet: dict[str, Agent]) -> None:
    spread = [replicas.links_to(i) for i in range(3)]
    assert all(n >= 1 for n in spread), f"the hosts must be spread over all replicas: {spread}"

    holders = {h["name"]: h["replica"] for h in replicas.hosts(replica=1)}
    assert sorted(holders) == NAMES and set(holders.values()) == {"r1", "r2", "r3"}  # hosts list names the replica

    result = run(replicas, 0, "--all", "-o", "json", "--", "sh", "-c", 'echo "on $FLEETOPS_HOST_NAME"')
    assert result.returncode == 0, result.stdout + result.stderr
    docs = {d["host"]: d for d in json_lines(result.stdout)}
    assert sorted(docs) == NAMES
    assert all(d["state"] == "success" and d["stdout"] == f"on {name}\n" for name, d in docs.items())

    metrics = (
        urllib.request.urlopen(f"http://127.0.0.1:{replicas.replicas[0].ports['metrics']}/metrics").read().decode()
    )
    assert "fleetops_replicas_alive 3.0" in metrics
    delivered = re.search(r'fleetops_peer_calls_total\{call="deliver",outcome="delivered"\} (\d+)', metrics)
    assert delivered and int(delivered.group(1)) >= len(NAMES) - replicas.links_to(0)


def test_watch_and_cancel_from_other_replicas(replicas: ReplicaSet, fleet: dict[str, Agent]) -> None:
    command_id = detach(replicas, 0, "sleep", "300")
    wait_until(lambda: counts(replicas, 1, command_id).get("running") == len(NAMES), 30, "all running, seen from r2")

    replicas.opsctl("run", "cancel", command_id, replica=2)
    watched = replicas.opsctl("run", "watch", command_id, "-o", "json", replica=1, check=False)
    docs = json_lines(watched.stdout)
    assert watched.returncode == 1, watched.stderr
    assert sorted(d["host"] for d in docs) == NAMES
    assert {d["state"] for d in docs} == {"cancelled"}


def test_an_operator_or_host_certificate_cannot_call_the_peer_service(
    replicas: ReplicaSet, fleet: dict[str, Agent]
) -> None:
    profile = replicas.profile_for(0)
    agent = fleet[NAMES[0]]
    identities = {
        "operator:admin": ((profile / "operator.key").read_bytes(), (profile / "operator.pem").read_bytes()),
        f"host:{agent.host_id}": (
            (agent.state_dir / "host.key").read_bytes(),
            (agent.state_dir / "host.pem").read_bytes(),
        ),
    }
    for actor, (key, cert) in identities.items():
        credentials = grpc.ssl_channel_credentials((profile / "ca.pem").read_bytes(), key, cert)
        with grpc.secure_channel(replicas.replicas[0].address, credentials) as channel:
            stub = peer_pb2_grpc.PeerServiceStub(channel)
            message = agent_pb2.ControllerMessage(cancel=agent_pb2.CancelInvocation(invocation_id="inv-x"))
            with pytest.raises(grpc.RpcError) as refused:
                stub.Deliver(peer_pb2.DeliverRequest(host_id=agent.host_id, message=message), timeout=10)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, actor
            assert "is not a controller replica" in (refused.value.details() or "")
        events = replicas.opsctl_json(
            "audit", "list", "--action", "peer.deliver", "--actor", actor, "--outcome", "refused"
        )
        assert any(e["outcome"] == "refused" for e in events), events


def session(replicas: ReplicaSet, replica: int, host: str) -> PtyProcess:
    env = {**os.environ, **BASE_ENV, "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    profile = replicas.profile_for(replica)
    return PtyProcess([PYTHON, "-m", "fleetops.opsctl", "--profile", str(profile), "session", host], env)


@pytest.mark.parametrize("cut", ["drop-the-links", "kill-the-relaying-replica"])
def test_a_session_relayed_through_other_replicas_resumes_without_losing_a_byte(
    replicas: ReplicaSet, fleet: dict[str, Agent], cut: str
) -> None:
    """The operator reaches one replica, the host's session stream another (relayed over the peer
    service); mid-output the relayed stream and the host's control link drop, or the relaying
    replica is killed (-9); the session carries on through the replica left."""
    host = NAMES[0]
    host_id = fleet[host].host_id
    holder = int(next(h["replica"] for h in replicas.hosts() if h["name"] == host)[1:]) - 1
    broker = (holder + 1) % 3  # the operator's replica, which does not hold the host
    everyone = [replicas.listen_target(i) for i in range(3)]
    others = [target for i, target in enumerate(everyone) if i != broker]
    replicas.listen_balancer.set_targets(others)  # the host's session stream cannot reach the broker
    killed: int | None = None
    marks = [r.process.line_count() for r in replicas.replicas]  # type: ignore[union-attr]
    term = session(replicas, broker, host)
    try:
        term.send("PS1='R''DY> '\r")
        term.expect(r"RDY> ")
        count = 100_000
        term.send(f"seq 1 {count}; echo end$((6*7))\r")
        term.expect(r"\r\n20000\r\n")
        if cut == "drop-the-links":
            assert sum(replicas.listen_balancer.drop(target) for target in others) >= 1
        else:
            killed = next(
                i
                for i in range(3)
                if i != broker and f"relaying host {host_id}" in replicas.replicas[i].process.output()  # type: ignore[union-attr]
            )
            replicas.kill(killed)
        term.expect(r"end42", timeout=90)
        term.send("exit 3\r")
        assert term.wait() == 3
    finally:
        replicas.listen_balancer.set_targets(everyone)
        term.close()
        if killed is not None:
            replicas.restart(killed)
    text = term.output.decode()
    start = re.search(r"[\r\n]1\r\n2\r\n", text)
    assert start, text[:3000]
    numbers = text[start.start() + 1 : text.index("end42", start.start())].split()
    assert numbers == [str(n) for n in range(1, count + 1)], "output lost or doubled across the relay"
    relayed = [
        i
        for i, r in enumerate(replicas.replicas)
        if any(f"relaying host {host_id}" in line for line in r.process.lines[marks[i] :])  # type: ignore[union-attr]
    ]
    assert relayed and broker not in relayed

    record = replicas.opsctl_json("session", "list", replica=broker)[0]
    done = wait_until(
        lambda: (
            (doc := replicas.opsctl_json("session", "show", record["id"], replica=holder))["transcript_state"]
            == "stored"
            and doc
        ),
        30,
        "the transcript stored",
    )
    assert done["end_reason"] == "exited" and done["exit_code"] == 3 and done["host_name"] == host
    wait_until(lambda: _online(replicas) == NAMES, 30, "the fleet online again")


def test_opsctl_resumes_its_session_through_another_replica(
    replicas: ReplicaSet, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    """opsctl dials a name (here a balancer) that sends it to another replica when it resumes: that
    replica relays its stream to the broker, which authorizes the operator again."""
    host = NAMES[1]
    front = LoadBalancer([replicas.listen_target(0)]).start()  # first the broker, r1
    try:
        profile = replicas.replicas[0].issue_profile("admin", tmp_path / "fronted", address=front.address)
        env = {**os.environ, **BASE_ENV, "TERM": "xterm-256color", "LANG": "C.UTF-8"}
        errors = tmp_path / "opsctl.stderr"
        term = PtyProcess(
            [PYTHON, "-m", "fleetops.opsctl", "--profile", str(profile), "session", host], env, stderr=errors
        )
        try:
            term.send("PS1='R''DY> '\r")
            term.expect(r"RDY> ")
            count = 50_000
            term.send(f"seq 1 {count}; echo end$((6*7))\r")
            term.expect(r"\r\n10000\r\n")
            front.set_targets([replicas.listen_target(2)])  # r3 from now on
            assert front.drop() >= 1
            term.expect(r"end42", timeout=90)
            term.send("exit\r")
            assert term.wait() == 0
        finally:
            term.close()
    finally:
        front.stop()
    text = term.output.decode()
    start = re.search(r"[\r\n]1\r\n2\r\n", text)
    assert start, text[:3000]
    numbers = text[start.start() + 1 : text.index("end42", start.start())].split()
    assert numbers == [str(n) for n in range(1, count + 1)], "output lost or doubled across the resume"
    assert "reconnect" in errors.read_text()
    assert "relaying operator:admin's session stream to replica r1" in replicas.replicas[2].process.output()  # type: ignore[union-attr]


def test_ssh_and_scp_reach_a_host_whose_streams_go_through_another_replica(
    replicas: ReplicaSet, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    """Stock ssh through opsctl proxy on one replica, the host's session stream forced through
    another (relayed over the peer service): the SSH bytes and the agent's activity reports (the
    file transfer's audit event) both cross the peer hop."""
    host = NAMES[3]
    holder = int(next(h["replica"] for h in replicas.hosts() if h["name"] == host)[1:]) - 1
    broker = (holder + 1) % 3
    everyone = [replicas.listen_target(i) for i in range(3)]
    replicas.listen_balancer.set_targets([t for i, t in enumerate(everyone) if i != broker])
    try:
        config = tmp_path / "ssh_config"
        config.write_text(replicas.opsctl("ssh-config", replica=broker).stdout)
        ssh = ["ssh", "-F", str(config), "-o", "BatchMode=yes"]
        done = subprocess.run(
            [*ssh, f"root@{host}.fleet", "echo $((6*7))x"], capture_output=True, env=BASE_ENV, timeout=60
        )
        assert done.returncode == 0 and done.stdout == b"42x\n", done.stderr.decode()
        payload = tmp_path / "payload"
        payload.write_bytes(os.urandom(1 << 20))
        remote = tmp_path / "copied"
        copied = subprocess.run(
            ["scp", "-F", str(config), "-o", "BatchMode=yes", str(payload), f"root@{host}.fleet:{remote}"],
            capture_output=True,
            env=BASE_ENV,
            timeout=60,
        )
        assert copied.returncode == 0, copied.stderr.decode()
        assert remote.read_bytes() == payload.read_bytes()
    finally:
        replicas.listen_balancer.set_targets(everyone)

    def transfer() -> dict[str, Any] | None:
        events = replicas.opsctl_json("audit", "list", "--action", "file.transfer", replica=holder)
        found = [json.loads(e["details_json"]) for e in events]
        return next((d for d in found if d.get("path") == str(remote)), None)

    assert wait_until(transfer, 30, "the transfer's audit event")["size"] == 1 << 20


def test_a_session_is_killed_from_another_replica(replicas: ReplicaSet, fleet: dict[str, Agent]) -> None:
    term = session(replicas, 0, NAMES[2])
    try:
        term.send("PS1='R''DY> '\r")
        term.expect(r"RDY> ")
        active = wait_until(
            lambda: replicas.opsctl_json("session", "list", "--active", replica=1), 30, "an active session"
        )
        assert len(active) == 1, active
        replicas.opsctl("session", "kill", active[0]["id"], replica=1)
        killed = replicas.opsctl_json("session", "show", active[0]["id"], replica=2)
        assert killed["state"] == "ended" and killed["end_reason"] == "killed"
        assert term.wait() == 129, term.output  # the shell was hung up
        assert re.search(rb"killed by operator:admin", term.output), term.output
    finally:
        term.close()
    assert not replicas.opsctl_json("session", "list", "--active", replica=2)


def _each_ran_once(ledger: Path) -> dict[str, int]:
    return {name: len((ledger / name).read_text().splitlines()) for name in NAMES if (ledger / name).exists()}


@pytest.mark.parametrize(
    "victim_runs_the_fan_out", [False, True], ids=["kill-a-replica-holding-hosts", "kill-the-owner"]
)
def test_killing_a_replica_mid_fan_out_runs_each_host_exactly_once(
    replicas: ReplicaSet, fleet: dict[str, Agent], tmp_path: Path, victim_runs_the_fan_out: bool
) -> None:
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    # The victim holds part of the fleet (after earlier kills, a restarted replica may hold none).
    victim = max(range(3), key=replicas.links_to)
    owner = victim if victim_runs_the_fan_out else (victim + 1) % 3
    survivor = next(i for i in range(3) if i != victim)
    command_id = detach(replicas, owner, "sh", "-c", ledger_script(ledger, 4))
    wait_until(lambda: len(_each_ran_once(ledger)) == len(NAMES), 30, "every host started its run")
    held = replicas.links_to(victim)
    assert held >= 1

    replicas.kill(victim)
    try:
        watched = replicas.opsctl("run", "watch", command_id, "-o", "json", replica=survivor, check=False)
        docs = {d["host"]: d for d in json_lines(watched.stdout)}
        assert sorted(docs) == NAMES, watched.stdout + watched.stderr
        assert {name: d["state"] for name, d in docs.items() if d["state"] != "success"} == {}
        assert all(d["stdout"].endswith("done\n") for d in docs.values())
        assert _each_ran_once(ledger) == dict.fromkeys(NAMES, 1)
    finally:
        replicas.restart(victim)
    wait_until(lambda: replicas.links_to(victim) >= 0 and _online(replicas) == NAMES, 30, "the fleet online again")


def _online(replicas: ReplicaSet) -> list[str]:
    return sorted(h["name"] for h in replicas.hosts() if h["status"] == "online")


def test_a_replica_added_later_takes_new_hosts_and_every_replica_reaches_them(
    replicas: ReplicaSet, fleet: dict[str, Agent]
) -> None:
    """Adding a replica: no restart of the others; hosts that connect to it are reached from any
    replica at once (not only after the others' next heartbeat read), and it reaches every host."""
    added = replicas.add()
    late = [f"late-{n}" for n in range(3)]
    everyone = sorted(NAMES + late)
    balanced = replicas.listen_balancer.targets
    replicas.listen_balancer.set_targets([replicas.listen_target(added)])  # new connections land on it
    try:
        replicas.start_agents(dict.fromkeys(late, {"group": "late"}))
    finally:
        replicas.listen_balancer.set_targets(balanced)
    assert replicas.links_to(added) >= len(late)

    for origin in (0, added):  # an old replica reaching hosts on the new one, and the new one reaching all
        result = run(replicas, origin, "--all", "-o", "json", "--", "sh", "-c", 'echo "on $FLEETOPS_HOST_NAME"')
        assert result.returncode == 0, result.stdout + result.stderr
        docs = {d["host"]: d for d in json_lines(result.stdout)}
        assert sorted(docs) == everyone
        assert all(d["state"] == "success" and d["stdout"] == f"on {name}\n" for name, d in docs.items())
    holders = {h["name"]: h["replica"] for h in replicas.hosts(replica=1)}
    assert {holders[name] for name in late} == {replicas.replica_id(added)}
