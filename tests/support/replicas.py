"""Several real controllers sharing one PostgreSQL database and one CA, behind TCP load balancers.

The shape of an HA deployment (docs/operations.md, issue 14) on one machine::

    agents, opsctl ──> listen balancer ──> r1, r2, r3 --listen   (mutual TLS, passed through)
    agents register ─> enroll balancer ──> r1, r2, r3 --enroll-listen
                                           └── one PostgreSQL database, one object store, one CA

Replica ``i`` (0-based, as in :attr:`ReplicaSet.replicas`) runs with ``--replica-id r{i+1}``. The
first replica is initialised (CA, admin user, schema); its ``state/ca/`` (CA key and certificate and
the audit checkpoint key made at its first start) is copied to the others before their first start,
so there is one CA. Each replica issues its own server certificate from it, for the default SANs
(``localhost``, ``127.0.0.1``): agents and opsctl reach every replica as 127.0.0.1.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from harness import Agent, Controller
from load_balancer import LoadBalancer, Target

T = TypeVar("T")
R = TypeVar("R")

# Every agent of a test registers from 127.0.0.1: the per-address enrollment burst (default 10)
# must not turn a fleet's registrations into throttle refusals.
ENROLL_BURST = "1000"


def _each(function: Callable[[T], R], items: Iterable[T], workers: int = 4) -> list[R]:
    """``function`` over ``items`` on a few threads (each mostly waits for a child process); raises the first error."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


class ReplicaSet:
    """``count`` controller replicas on ``database_url`` behind a listen and an enroll :class:`LoadBalancer`.

    Offers what :meth:`harness.Agent.register` needs (``address``, ``ports``, ``ca_cert``): agents
    registered with ``agent.register(replica_set, ...)`` enroll and connect through the balancers.

    Args:
        root: a directory of its own; replica ``i``'s state is under ``root/r{i+1}``.
        database_url: a PostgreSQL database (e.g. from ``databases.new_postgres_database``), shared.
        count: how many replicas.
        object_store: the object store all replicas share (default: a directory under ``root``, as one
            S3 bucket would be shared in production).
        heartbeat: the agents' heartbeat interval (``serve --heartbeat-interval``).
        extra_args: more ``serve`` arguments for every replica.
        database_urls: per-replica overrides of ``database_url`` by index (the same database reached
            another way, e.g. through a ``TcpProxy`` a test cuts); not for replica 0, which inits it.
    """

    def __init__(
        self,
        root: Path,
        database_url: str,
        count: int = 3,
        *,
        object_store: str = "",
        heartbeat: str = "1s",
        extra_args: list[str] | None = None,
        database_urls: dict[int, str] | None = None,
    ) -> None:
        if count < 1:
            raise ValueError(f"a replica set needs at least one replica, not {count}")
        overrides = database_urls or {}
        if 0 in overrides:
            raise ValueError("replica 0 inits the database: give it database_url, not an override")
        self.root = root
        self.database_url = database_url
        self.heartbeat = heartbeat
        self.object_store = object_store or (root / "objects").as_uri()
        self.extra_args = extra_args or []
        self.replicas = [self._controller(i, overrides.get(i, database_url)) for i in range(count)]
        self.listen_balancer = LoadBalancer([], name="replicas-listen")
        self.enroll_balancer = LoadBalancer([], name="replicas-enroll")
        self.profile = root / "profile-admin"  # admin, through the listen balancer
        self.agents: list[Agent] = []  # started by start_agents, stopped by stop

    def _controller(self, i: int, database_url: str) -> Controller:
        return Controller(
            self.root / self.replica_id(i),
            database_url=database_url,
            name=f"controller {self.replica_id(i)}",
            extra_args=[
                "--replica-id",
                self.replica_id(i),
                "--object-store",
                self.object_store,
                "--enroll-burst",
                ENROLL_BURST,
                *self.extra_args,
            ],
        )

    def add(self) -> int:
        """Start one more replica (with a copy of the CA) while the others run, and add it to the
        balancers, as an operator adds a replica; returns its index."""
        i = len(self.replicas)
        replica = self._controller(i, self.database_url)
        shutil.copytree(self.replicas[0].state_dir / "ca", replica.state_dir / "ca", dirs_exist_ok=True)
        replica.start(heartbeat=self.heartbeat)
        self.replicas.append(replica)
        self.listen_balancer.set_targets([self.listen_target(n) for n in range(len(self.replicas))])
        self.enroll_balancer.set_targets([("127.0.0.1", r.ports["enroll"]) for r in self.replicas])
        return i

    @staticmethod
    def replica_id(i: int) -> str:
        """``--replica-id`` of replica ``i`` (0-based): ``r1``, ``r2``, ..."""
        return f"r{i + 1}"

    def start(self) -> ReplicaSet:
        """Init and start the first replica, share its CA with the others, start them; returns ``self``.

        The balancers send new connections to every replica once this returns.
        """
        self.listen_balancer.start()
        self.enroll_balancer.start()
        first, *others = self.replicas
        first.start(heartbeat=self.heartbeat)  # inits the CA, the admin user and the schema first
        for replica in others:
            if not replica.ca_cert.exists():
                shutil.copytree(first.state_dir / "ca", replica.state_dir / "ca", dirs_exist_ok=True)
        _each(lambda replica: replica.start(heartbeat=self.heartbeat), others)
        self.listen_balancer.set_targets([self.listen_target(i) for i in range(len(self.replicas))])
        self.enroll_balancer.set_targets([("127.0.0.1", r.ports["enroll"]) for r in self.replicas])
        first.issue_profile("admin", self.profile, address=self.address)
        return self

    # What harness.Agent.register reads (harness.Enrollable).
    @property
    def address(self) -> str:
        """The listen balancer, ``127.0.0.1:PORT``: the one controller address agents and opsctl know."""
        return self.listen_balancer.address

    @property
    def enroll_port(self) -> int:
        """The enroll balancer's port (on 127.0.0.1)."""
        return self.enroll_balancer.port

    @property
    def ports(self) -> dict[str, int]:
        return {"listen": self.listen_balancer.port, "enroll": self.enroll_balancer.port}

    @property
    def ca_cert(self) -> Path:
        """The fleet CA certificate (the same file in every replica's ``state/ca``)."""
        return self.replicas[0].ca_cert

    def listen_target(self, i: int) -> Target:
        """Replica ``i``'s mTLS listener, as the listen balancer names it."""
        return ("127.0.0.1", self.replicas[i].ports["listen"])

    def links_to(self, i: int) -> int:
        """Live connections the listen balancer relays to replica ``i`` now.

        One per connected agent held there, plus one per opsctl call to it while the call runs.
        """
        return self.listen_balancer.connections_to(self.listen_target(i))

    def profile_for(self, i: int) -> Path:
        """An admin opsctl profile pointing straight at replica ``i`` (to call "from replica i")."""
        return self.replicas[i].profile

    def opsctl(self, *args: str, replica: int | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``opsctl ARGS`` as admin, through the balancer or (``replica=i``) straight to replica ``i``."""
        profile = self.profile if replica is None else self.profile_for(replica)
        return self.replicas[0].opsctl(*args, profile=profile, check=check)

    def opsctl_json(self, *args: str, replica: int | None = None) -> Any:
        return json.loads(self.opsctl(*args, "-o", "json", replica=replica).stdout)

    def hosts(self, *args: str, replica: int | None = None) -> list[dict[str, Any]]:
        return list(self.opsctl_json("hosts", "list", *args, replica=replica))

    def create_activation(
        self, *args: str, tags: dict[str, str] | None = None, replica: int | None = None
    ) -> tuple[str, str]:
        """A new activation (id, code); ``tags`` become its (operator-set, authoritative) tags."""
        tag_args = [arg for k, v in (tags or {}).items() for arg in ("--tag", f"{k}={v}")]
        doc = self.opsctl_json("activation", "create", *args, *tag_args, replica=replica)
        return doc["id"], doc["code"]

    def start_agents(
        self, hosts: dict[str, dict[str, str]], root: Path | None = None, timeout: float = 60.0
    ) -> dict[str, Agent]:
        """Register and start an agent per name with its tags, through the balancers; all connected on return.

        Like ``harness.start_fleet``, but one activation per distinct tag set (``--limit`` its agents),
        registrations on a few threads, and every agent started before waiting for any to connect.
        The agents are stopped by :meth:`stop`.
        """
        root = root or self.root / "agents"
        groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
        for name, tags in hosts.items():
            groups.setdefault(tuple(sorted(tags.items())), []).append(name)
        codes: dict[str, tuple[str, str]] = {}
        for tags_key, names in groups.items():
            activation = self.create_activation("--limit", str(len(names)), tags=dict(tags_key))
            codes.update(dict.fromkeys(names, activation))
        agents = {name: Agent(root, name) for name in hosts}
        self.agents.extend(agents.values())
        _each(lambda agent: agent.register(self, *codes[agent.name]), agents.values())
        for agent in agents.values():
            agent.start(wait_connected=False)
        for agent in agents.values():
            agent.wait_connected(timeout=timeout)
        return agents

    def kill(self, i: int) -> None:
        """SIGKILL replica ``i``, as a crash would; the balancers then skip it (it refuses connections)."""
        self.replicas[i].kill()

    def restart(self, i: int) -> None:
        """Start replica ``i`` again on the ports it had, so the balancers reach it again."""
        self.replicas[i].start(heartbeat=self.heartbeat)

    def stop(self) -> None:
        """Stop the agents it started, every replica and the balancers."""
        _each(lambda agent: agent.stop(), self.agents, workers=8)
        _each(lambda replica: replica.stop(), self.replicas)
        self.listen_balancer.stop()
        self.enroll_balancer.stop()
