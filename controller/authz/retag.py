"""May these roles change these hosts' tags? (docs/access.md#tagging-hosts)

Role selectors match operator-set tags, so changing a tag changes who may do what on the host:
tagging *is* granting. ``hosts.tag`` is a host-scoped action like the others, and a change is
allowed only when, on every host it touches:

1. **before**: the caller holds ``hosts.tag`` on the host as it is (its tags now);
2. **after**: the caller still holds ``hosts.tag`` on the host as it would be (its tags after the
   change): a tag change cannot push a host out of the caller's tagging scope, and since rule 1
   holds for every host it touches, it cannot pull one in either;
3. **no new rights**: the host as it would be gives the caller no right they lack on it now, for
   any host-scoped action and any login their roles name (``root`` and any other login
   included). Otherwise a tagger on ``env=dev`` could remove the ``pci`` tag that a deny rule keys
   on, or add the ``role=web`` that their ``command.run`` rule asks for, and widen their own
   access by the back door.

The request is decided as a whole (any refused host refuses it all), by the same rule as every
fan-out; refused hosts the caller may not see are not named (``authorize``). Holders of ``*``
without hosts (the built-in ``admin`` role) pass all three: they have every right already.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from fleetops.common.roles import ANY, HOST_SCOPED_ACTIONS, LOGIN_ACTIONS, ROOT, Role
from fleetops.controller.authz.decision import Decision, HostLike, _verdict, authorize, phrase

ACTION = "hosts.tag"
#: Refused hosts named in a message of the after- or no-new-rights check (all are hosts the caller may tag).
MAX_NAMED = 20


@dataclass(frozen=True)
class Retagged:
    """A host as it would be after a tag change (its operator-set tags, as decisions see them)."""

    id: str
    name: str
    tags: Mapping[str, str]


def _label(host: HostLike) -> str:
    return host.name or host.id


def _logins(roles: Sequence[Role]) -> list[str | None]:
    """The logins to compare rights under: every login a rule names, root, and one no rule names.

    Rules tell logins apart only by name, ``*`` (any but root in an allow rule) and ``root``, so a
    login no rule names stands for all the others.
    """
    named = {login for role in roles for rule in (*role.allow, *role.deny) for login in rule.logins if login != ANY}
    other = "fleetops-other-login"
    while other in named:
        other += "-"
    return [None, ROOT, other, *sorted(named - {ROOT})]


def new_rights(roles: Sequence[Role], before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """The rights (``command.run as deploy``) a host with tags *after* gives that one with *before* does not."""
    gained = []
    logins = _logins(roles)
    for action in sorted(HOST_SCOPED_ACTIONS):
        for login in logins if action in LOGIN_ACTIONS else [None]:
            now, then = _verdict(roles, action, login, before)[0], _verdict(roles, action, login, after)[0]
            if then == "allow" and now != "allow":
                shown = "logins no rule names" if login == logins[2] else login
                gained.append(action if login is None else f"{action} as {shown}")
    return gained


def authorize_retag(
    roles: Sequence[Role],
    changes: Sequence[tuple[HostLike, Mapping[str, str]]],
    *,
    user: str = "",
    what: str = "",
) -> Decision:
    """Decide a tag change: each host (as it is) with its operator-set tags as they would be after.

    Returns the first refusal of the three checks (module docstring), or the allowed decision of the
    first. ``Decision.phase`` says which check decided: ``before``, ``after`` or ``new-rights``.
    """
    roles = list(roles)
    who = user or "you"
    doing = what or phrase(ACTION)
    hosts = [host for host, _ in changes]
    before = replace(authorize(roles, ACTION, hosts=hosts, user=user, what=what, hide_unseen=True), phase="before")
    if not before:
        return before

    total = len({h.id or h.name for h in hosts})
    outside: dict[str, list[str]] = {}
    gained: dict[str, list[str]] = {}
    refs: list[str] = []
    for host, tags in changes:
        if dict(tags) == dict(host.tags):
            continue
        kind, ref = _verdict(roles, ACTION, None, tags)
        if kind != "allow":
            cause = f"its new tags are denied by {ref}" if kind == "deny" else "no allow rule matches its new tags"
            outside.setdefault(cause, []).append(_label(host))
            refs += [ref] if ref else []
            continue
        for right in new_rights(roles, host.tags, tags):
            gained.setdefault(right, []).append(_label(host))

    def refuse(phase: str, message: str, hint: str, denied: list[str]) -> Decision:
        whole = "; the whole request is refused" if total > 1 else ""
        return Decision(
            False,
            ACTION,
            f"{message}{whole} — {hint}",
            message + whole,
            hint,
            denied,
            list(dict.fromkeys(refs)),
            None,
            user,
            total,
            phase=phase,
        )

    if outside:
        denied = [name for names in outside.values() for name in names]
        message = f"{who} may not {doing} so that they leave the hosts {who} may tag: " + "; ".join(
            f"{_names(names)} ({cause})" for cause, names in outside.items()
        )
        hint = (
            "a tag change must keep each host within the hosts you may tag (hosts.tag is checked on the "
            "tags before and after); ask an admin to make this change"
        )
        return refuse("after", message, hint, denied)
    if gained:
        denied = list(dict.fromkeys(name for names in gained.values() for name in names))
        message = f"{who} may not {doing} so that {who} gains rights on them: " + "; ".join(
            f"{right} on {_names(names)}" for right, names in gained.items()
        )
        hint = (
            "tagging may not widen your own access (a role's hosts select these tags); ask an admin to make "
            "this change, or for a role that already allows it"
        )
        return refuse("new-rights", message, hint, denied)
    return before


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")
