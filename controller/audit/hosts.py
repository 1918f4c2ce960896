"""Which hosts an audit event concerns: what ``opsctl audit list --host`` finds it by.

An event concerns a host when it names the host anywhere that matters: the hosts it acted on or
tried to (``hosts``, written by the operator service from the request and the answer), the host of
a session (``host``, ``host_id``, ``hostname``), the hosts a refusal named (``denied_hosts`` of each
authorization decision) and the hosts a window task left out (``refused_hosts``).

The names are read from the event's details, which the hash chain covers; the ``audit_event_hosts``
table that indexes them is derived from those details alone (:func:`hosts_concerned`), so it never
holds anything the chain does not vouch for and can be rebuilt from the events at any time
(migration 0008 builds it for events recorded before it existed, with a copy of this function).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

#: Detail keys holding one host name or id.
HOST_DETAIL_KEYS = ("host", "host_id", "hostname")
#: Detail keys holding a list of host names or ids (top level, or in each authorization decision).
HOST_LIST_KEYS = ("hosts", "denied_hosts", "refused_hosts")
#: Index rows kept per event (a refusal keeps at most 200 names; a run names at most 1000 hosts).
MAX_HOSTS_PER_EVENT = 1000
#: The column's size; a longer "name" is not a host name.
MAX_HOST_KEY = 255


def hosts_concerned(details: Any) -> list[str]:
    """The host names and ids ``details`` names, each once, in the order found (at most MAX_HOSTS_PER_EVENT)."""
    found = dict.fromkeys(_names(details))
    return list(found)[:MAX_HOSTS_PER_EVENT]


def _names(details: Any) -> Iterator[str]:
    if not isinstance(details, dict):
        return
    for key in HOST_DETAIL_KEYS:
        yield from _valid([details.get(key)])
    for key in HOST_LIST_KEYS:
        value = details.get(key)
        if isinstance(value, list):
            yield from _valid(value)
    decisions = details.get("authz")
    for decision in decisions if isinstance(decisions, list) else [decisions]:
        if isinstance(decision, dict):
            for key in HOST_LIST_KEYS:
                value = decision.get(key)
                if isinstance(value, list):
                    yield from _valid(value)


def _valid(values: Iterable[Any]) -> Iterator[str]:
    for value in values:
        if isinstance(value, str) and value and len(value) <= MAX_HOST_KEY:
            yield value
