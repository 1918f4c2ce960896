"""The replica harness (tests/support/replicas.py) on real processes: 3 controllers on one PostgreSQL
database behind TCP load balancers, 12 agents registered and connected through them (issue 14).

These tests prove the harness the multi-replica tests build on: agents spread over every replica,
each replica sees the whole fleet, and a killed replica's agents move to the others.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from databases import new_postgres_database
from harness import Agent, wait_until
from replicas import ReplicaSet

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

NAMES = [f"node-{n:02d}" for n in range(12)]
CONNECTED = r"connected to .* as host"


@pytest.fixture(scope="module")
def replicas(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicaSet]:
    replica_set = ReplicaSet(tmp_path_factory.mktemp("replicas"), new_postgres_database(postgres_server), count=3)
    try:
        yield replica_set.start()
    finally:
        replica_set.stop()


@pytest.fixture(scope="module")
def fleet(replicas: ReplicaSet) -> dict[str, Agent]:
    return replicas.start_agents({name: {"group": "abc"[n % 3]} for n, name in enumerate(NAMES)})


def connected_lines(agent: Agent) -> int:
    assert agent.process is not None
    return sum(1 for line in agent.process.output().splitlines() if "connected to" in line and "as host" in line)


def online_names(replicas: ReplicaSet, replica: int | None) -> list[str]:
    return sorted(h["name"] for h in replicas.hosts(replica=replica) if h["status"] == "online")


def test_agents_register_and_connect_through_the_balancer_onto_every_replica(
    replicas: ReplicaSet, fleet: dict[str, Agent]
) -> None:
    for agent in fleet.values():
        state = json.loads((agent.state_dir / "agent.json").read_text())
        assert state["controller"] == replicas.address  # the agent keeps dialing the balancer, not a replica
    assert replicas.enroll_balancer.connections >= len(fleet)  # every registration went through it

    # One stream per agent; opsctl calls of the fixture have ended, so the counts settle on the agents.
    def settled() -> list[int] | None:
        links = [replicas.links_to(i) for i in range(3)]
        return links if sum(links) == len(fleet) else None

    spread = wait_until(settled, 10, "one relayed link per agent")
    assert spread and min(spread) >= 1, f"some replica holds no agent: {spread}"


@pytest.mark.parametrize("replica", [0, 1, 2])
def test_each_replica_lists_the_whole_fleet_online(replicas: ReplicaSet, fleet: dict[str, Agent], replica: int) -> None:
    wait_until(lambda: online_names(replicas, replica) == NAMES, 10, f"all 12 online on {replicas.replica_id(replica)}")
    tags = {h["name"]: h["tags"] for h in replicas.hosts("--target", "group=b", replica=replica)}
    assert sorted(tags) == NAMES[1::3] and all(t == {"group": "b"} for t in tags.values())


def test_agents_of_a_killed_replica_reconnect_to_the_others(replicas: ReplicaSet, fleet: dict[str, Agent]) -> None:
    held = replicas.links_to(1)
    assert held >= 1
    before = {name: connected_lines(agent) for name, agent in fleet.items()}
    replicas.kill(1)

    def moved() -> list[str]:
        return [name for name, agent in fleet.items() if connected_lines(agent) > before[name]]

    # Exactly the agents it held connect again, through the balancer, to the replicas left.
    wait_until(lambda: len(moved()) >= held, 30, f"the {held} agents of r2 connected again")
    wait_until(lambda: replicas.links_to(0) + replicas.links_to(2) == len(fleet), 10, "every agent on r1 or r3")
    assert len(moved()) == held and replicas.links_to(1) == 0

    def all_online_on_the_others() -> bool:
        return online_names(replicas, 0) == NAMES and online_names(replicas, 2) == NAMES

    wait_until(all_online_on_the_others, 15, "all 12 online on r1 and r3 after the kill")
    assert online_names(replicas, None) == NAMES  # through the balancer, which skips r2

    replicas.restart(1)  # on the ports it had: its profile (and the balancer) reach it again
    assert online_names(replicas, 1) == NAMES
