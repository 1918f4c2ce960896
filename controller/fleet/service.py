"""The host registry: who is registered, who may connect, tags, presence and targeting."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common import limits
from fleetops.common.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from fleetops.common.selectors import Selector, inventory_facts, validate_tag_key, validate_tag_value
from fleetops.controller.fleet.models import ACTIVE, DEREGISTERED, Host, HostPresence, HostStatus, Target
from fleetops.controller.fleet.presence import PresenceTracker
from fleetops.controller.fleet.store import HostStore, Retagging

log = logging.getLogger(__name__)


# The one rule for host names, wherever a name comes from (--name, the host's reported host name):
# DNS-like, at most 255 characters, and never something that reads as a host id.
MAX_HOST_NAME = 255
_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,253}[A-Za-z0-9])?")
_HOST_ID = re.compile(r"h-[0-9a-f]{20}")
# Of a refused name, this much goes into the audit event (escaped by JSON, never printed raw).
_SHOWN = 64


def new_host_id() -> str:
    return "h-" + secrets.token_hex(10)


def host_name_problem(name: str) -> str:
    """Why ``name`` cannot name a host, or ``""`` when it can."""
    if not name:
        return "it is empty"
    if len(name) > MAX_HOST_NAME:
        return f"it is {len(name)} characters long (at most {MAX_HOST_NAME})"
    if not _HOST_NAME.fullmatch(name):
        return "it has characters other than letters, digits, '.', '-' and '_', or starts or ends with '.', '-' or '_'"
    if _HOST_ID.fullmatch(name):
        return "it looks like a host id"
    return ""


def validate_host_name(name: str) -> None:
    """Raise ``InvalidInput`` unless ``name`` is a DNS-like host name.

    The message never echoes a long or unprintable name whole: it shows a short, escaped prefix.
    """
    problem = host_name_problem(name)
    if problem:
        raise InvalidInput(
            f"bad host name {shown_name(name)}: {problem}",
            "use letters, digits, '.', '-' and '_', starting and ending with a letter or digit, "
            f"at most {MAX_HOST_NAME} characters",
        )


def shown_name(name: str) -> str:
    """A short, escaped form of a (possibly hostile) name for messages and audit details."""
    return repr(name[:_SHOWN]) + ("..." if len(name) > _SHOWN else "")


#: At most this many tags set and removed by one change.
TAG_CHANGES = limits.Limit("the tag changes", 64, "items", "set and remove at most 64 tags at a time")


@dataclass(frozen=True)
class TagChange:
    """One host of a tag change: as it is (``before``) and as it is or would be after (``after``)."""

    before: Host
    after: Host

    @property
    def changed(self) -> bool:
        return self.before.tags != self.after.tags or self.before.host_tags != self.after.host_tags


def check_tag_changes(set_tags: Mapping[str, str], remove: Sequence[str]) -> None:
    """Raise :class:`InvalidInput` unless *set_tags* and *remove* make a valid change."""
    if not set_tags and not remove:
        raise InvalidInput(
            "no tag change given", "set a tag with KEY=VALUE and remove one with KEY-, e.g. env=prod canary-"
        )
    TAG_CHANGES.check(len(set_tags) + len(remove))
    for k, v in set_tags.items():
        validate_tag_key(k)
        validate_tag_value(v)
    for k in remove:
        validate_tag_key(k)
    both = set(set_tags) & set(remove)
    if both:
        raise InvalidInput(f"tag {sorted(both)[0]!r} is both set and removed", "give each key once")


def retagged(
    tags: Mapping[str, str], host_tags: Mapping[str, str], set_tags: Mapping[str, str], remove: Sequence[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """A host's (operator-set, host-set) tags after setting *set_tags* and removing *remove*.

    A key an operator sets becomes operator-set, leaving the host's own tags; a removed key goes
    from both.
    """
    after = {**tags, **set_tags}
    own = {k: v for k, v in host_tags.items() if k not in set_tags and k not in remove}
    for k in remove:
        after.pop(k, None)
    return after, own


class FleetService:
    """Host registry and presence.

    ``admit`` is the gate every agent connection passes: it answers from an in-memory copy of
    the host states (refreshed from the database every ``refresh_interval`` so a deregistration on
    another replica takes effect within one heartbeat) and fails closed for unknown hosts.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        presence: PresenceTracker,
        *,
        heartbeat_interval: float,
        refresh_interval: float | None = None,
    ) -> None:
        self._store = HostStore(sessions, heartbeat_interval)
        self.presence = presence
        self.heartbeat_interval = heartbeat_interval
        self._refresh_interval = refresh_interval or heartbeat_interval
        self._states: dict[str, str] = {}
        self._refresh_task: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        await self.refresh_states()
        self._refresh_task = asyncio.create_task(self._refresh_loop(), name="host-state-refresh")

    async def stop(self) -> None:
        if self._refresh_task:
            self._refresh_task.cancel()
            await asyncio.gather(self._refresh_task, return_exceptions=True)

    async def refresh_states(self) -> None:
        states = await self._store.states()
        # Merge, do not replace: a host registered or deregistered here while the snapshot was read
        # keeps its newer state, and deregistration is final (fail closed).
        for host_id, state in self._states.items():
            if state == DEREGISTERED or host_id not in states:
                states[host_id] = state
        self._states = states
        # Links of hosts deregistered elsewhere (another replica) are dropped here.
        for host_id, state in self._states.items():
            link = self.presence.link(host_id)
            if state == DEREGISTERED and link is not None:
                await link.close("host was deregistered", revoked=True)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_interval)
            try:
                await self.refresh_states()
            except Exception:
                log.exception("refreshing host states failed; keeping the last known states")

    # -- the connection gate ----------------------------------------------------------------
    async def admit(self, host_id: str) -> None:
        """Raise ``Unauthenticated`` unless ``host_id`` is a registered, active host.

        A host this replica has not heard of yet (registered through another replica since the
        last refresh) is looked up in the database before it is refused.
        """
        if host_id not in self._states:
            state = await self._store.state(host_id)
            if state is not None:
                self._states.setdefault(host_id, state)
        self.check_admitted(host_id)

    def check_admitted(self, host_id: str) -> None:
        """``admit`` from memory only (for the heartbeat path)."""
        state = self._states.get(host_id)
        if state == ACTIVE:
            return
        if state == DEREGISTERED:
            raise Unauthenticated(
                f"host {host_id} was deregistered; its certificate is revoked",
                "register the host again with a new activation: fleetops-agent register ...",
            )
        raise Unauthenticated(
            f"host {host_id} is not registered with this controller",
            "register the host with fleetops-agent register",
        )

    # -- registration (called by enrollment) ------------------------------------------------
    async def add_host(
        self,
        session: AsyncSession,
        *,
        host_id: str,
        hostname: str,
        tags: dict[str, str],
        inventory: dict[str, Any],
        activation_id: str,
        certificate_serial: str,
        certificate_expires_at: datetime,
        unique_suffix: bool = False,
        host_tags: dict[str, str] | None = None,
    ) -> Host:
        """Insert a host inside the caller's transaction; the name is made unique if needed.

        ``hostname`` that breaks the naming rules (:func:`host_name_problem`) is replaced by the host
        id: callers that must refuse a bad name (an explicit ``--name``) check it first.
        ``tags`` are operator-set, ``host_tags`` host-set (keys in ``tags`` win).
        """
        host = Host(
            id=host_id,
            name=hostname if not host_name_problem(hostname) else host_id,
            status=HostStatus.OFFLINE,
            tags=dict(tags),
            host_tags={k: v for k, v in (host_tags or {}).items() if k not in tags},
            inventory=inventory,
            activation_id=activation_id,
            registered_at=datetime.now(UTC),
            last_seen_at=None,
            connected_at=None,
            certificate_expires_at=certificate_expires_at,
        )
        return await self._store.add(
            session, host, certificate_serial=certificate_serial, unique_suffix=unique_suffix, max_name=MAX_HOST_NAME
        )

    def host_added(self, host_id: str) -> None:
        self._states[host_id] = ACTIVE

    async def record_certificate(self, host_id: str, serial: str, expires_at: datetime) -> None:
        """Raises: NotFound (no such host)."""
        await self._store.record_certificate(host_id, serial, expires_at)

    # -- queries ----------------------------------------------------------------------------
    async def list_hosts(self, target: Target, include_deregistered: bool = False) -> list[Host]:
        """Hosts matching ``target``; an empty target lists every host (listing changes nothing)."""
        hosts = await self._store.hosts(active_only=not include_deregistered)
        if target.empty:
            return [self._here(h) for h in hosts]
        return [self._here(h) for h in self._select(hosts, target)]

    async def presence_of(self, host_ids: list[str]) -> dict[str, HostPresence]:
        """Status and last-seen time of these hosts, as this replica sees them (see :meth:`_here`)."""
        found = await self._store.presence(host_ids)
        return {
            host_id: HostPresence(HostStatus.ONLINE, p.last_seen_at)
            if p.status == HostStatus.OFFLINE and self.presence.link(host_id) is not None
            else p
            for host_id, p in found.items()
        }

    async def resolve_target(self, target: Target) -> list[Host]:
        """Hosts an operation applies to. An empty target is refused, never "every host".

        Raises:
            InvalidInput: the target is empty or mixes selector, hosts and all.
            SelectorError: the selector does not parse.
            NotFound: an explicitly named host does not exist.
        """
        if target.empty:
            raise InvalidInput(
                "no target given",
                "give --target SELECTOR, --host NAME (repeatable) or --all to target every host",
            )
        return await self.list_hosts(target)

    def _select(self, rows: list[Host], target: Target) -> list[Host]:
        given = sum(bool(x) for x in (target.selector, target.hosts, target.all))
        if given > 1:
            raise InvalidInput(
                "give only one of a selector, host names or --all",
                "combine conditions inside the selector instead, e.g. env=prod,role=web",
            )
        if target.all:
            return list(rows)
        if target.hosts:
            by_key = {r.name: r for r in rows} | {r.id: r for r in rows}
            missing = [h for h in target.hosts if h not in by_key]
            if missing:
                raise NotFound("no such host: " + ", ".join(missing), "see the registered hosts with opsctl hosts list")
            seen: dict[str, Host] = {}
            for h in target.hosts:
                seen.setdefault(by_key[h].id, by_key[h])
            return list(seen.values())
        # Targeting sees every tag, the host's own too, and the inventory facts (inv.*) the host
        # reports; access decisions see only operator-set tags (docs/targeting.md#inventory-facts).
        selector = Selector.parse(target.selector)
        wants_facts = bool(selector.fact_keys)  # derived only when asked for: most selectors name none
        return [r for r in rows if selector.matches(r.all_tags, inventory_facts(r.inventory) if wants_facts else None)]

    async def get_host(self, key: str) -> Host:
        """The host with id or name ``key``. Raises: NotFound."""
        return self._here(await self._store.get(key))

    # -- changes ----------------------------------------------------------------------------
    async def tag_host(self, key: str, set_tags: dict[str, str], remove: list[str]) -> Host:
        """Change one host's tags (no authorization: see :meth:`tag_hosts`); the host as it is after."""
        (change,) = await self.tag_hosts(Target(hosts=(key,)), set_tags, remove)
        return change.after

    async def tag_hosts(
        self,
        target: Target,
        set_tags: Mapping[str, str],
        remove: Sequence[str],
        *,
        dry_run: bool = False,
        authorize: Callable[[list[TagChange]], None] | None = None,
    ) -> list[TagChange]:
        """Set and remove operator-set tags on every host of *target*, all at once or not at all.

        ``authorize`` sees every host with its tags before and after, inside the transaction that
        writes them (rows locked where the database can), and raises to refuse: nothing changes
        then. With *dry_run* nothing is written either way. A key an operator sets becomes
        operator-set (it leaves the host's own tags); removing a key removes it whoever set it;
        removing an absent key is no change.

        Raises:
            InvalidInput: no change, a bad key or value, a key both set and removed, too many
                changes, an empty or malformed target.
            NotFound: a named host does not exist, or no host matches.
            Conflict: a named host is deregistered (its tags are kept as they were).
            PermissionDenied: ``authorize`` refused.
        """
        set_tags, remove = dict(set_tags), list(dict.fromkeys(remove))
        check_tag_changes(set_tags, remove)
        if target.empty:
            raise InvalidInput(
                "no target given",
                "give a host name, --target SELECTOR, --host NAME (repeatable) or --all to tag every host",
            )
        limits.TARGET_HOSTS.check(len(target.hosts))
        for name in target.hosts:
            limits.NAME_BYTES.check(limits.utf8_size(name), "a host name in --host")
        changes: list[TagChange] = []

        def decide(hosts: list[Host]) -> Retagging:
            rows = self._select(hosts, target)
            gone = [r.name for r in rows if r.status == HostStatus.DEREGISTERED]
            if gone:
                raise Conflict(
                    f"host {', '.join(gone[:20])} is deregistered"
                    if len(gone) == 1
                    else f"hosts {', '.join(gone[:20])} are deregistered",
                    "tags of deregistered hosts are kept as they were; leave them out of the target",
                )
            if not rows:
                raise NotFound(
                    f"no host matches {target.describe()}", "check the selector with opsctl hosts list --target"
                )
            for row in rows:
                tags, host_tags = retagged(row.tags, row.host_tags, set_tags, remove)
                before = self._here(row)
                changes.append(TagChange(before, replace(before, tags=tags, host_tags=host_tags)))
            if authorize is not None:
                authorize(changes)
            if dry_run:
                return {}
            return {c.after.id: (dict(c.after.tags), dict(c.after.host_tags)) for c in changes if c.changed}

        # A named host that was deregistered is an error, not a silent skip.
        await self._store.retag(active_only=not target.hosts, decide=decide)
        return changes

    async def deregister_host(self, key: str, by: str = "") -> Host:
        """Revoke a host (*by* names who: ``operator:NAME``): its live link is closed now and every
        later connection is refused."""
        host = await self._store.deregister(key, by)
        self._states[host.id] = DEREGISTERED
        link = self.presence.link(host.id)
        if link is not None:
            await link.close("host was deregistered", revoked=True)
        return host

    # -- conversion -------------------------------------------------------------------------
    def _here(self, host: Host) -> Host:
        """``host`` as this replica sees it: online while its agent's link is here (written behind)."""
        if host.status == HostStatus.OFFLINE and self.presence.link(host.id) is not None:
            return replace(host, status=HostStatus.ONLINE)
        return host
