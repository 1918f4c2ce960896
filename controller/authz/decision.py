"""Authorization decisions: may these roles do this action, on these hosts, as this login?

The rules (docs/access.md#how-a-decision-is-made):

1. Nothing is allowed by default: with no roles, or no matching allow rule, the answer is no.
2. Deny wins: a matching deny rule refuses, whatever any allow rule says.
3. A rule matches when it covers the action (``Rule.covers_action``), the host (its selector; a
   rule without hosts covers every host) and the login (``Rule.allows_login`` for allow rules,
   ``Rule.denies_login`` for deny rules).
4. Host-scoped actions (``HOST_SCOPED_ACTIONS``) are decided host by host. If *any* host is
   refused, the whole request is refused, naming those hosts: a fan-out never runs on "the hosts
   you may reach" silently. Listing calls filter with :func:`permitted_hosts` instead.
5. Without hosts, a host-scoped action asks "on some host": allowed when an allow rule grants the
   action (wherever its selector points) and no deny rule without hosts refuses it. Used for
   global reads such as listing patch baselines (``hosts.read``).
6. Global actions ignore hosts; a host-limited rule never grants or denies them.
7. Work deferred to later on a *selector* (window tasks) is decided on the selector itself with
   :func:`authorize_selector`: allowed when every host it could ever match is within an allow
   rule's hosts and no deny rule's hosts could overlap it (``authz.implication``); when it runs,
   its hosts are decided one by one as in rule 4, but refused hosts are left out, not fatal.

8. A refusal answering the caller (``hide_unseen``) tells them only what they may see: refused
   hosts they may read (``hosts.read``) are named with their cause; the others are neither named
   nor counted, the message says only that the target matches hosts outside their access
   (``hidden_hosts``; the audit details keep every name).
9. Refusals say what was refused in words (``ACTION_PHRASES``, or the RPC's phrase from
   ``authz.actions.RPC_PHRASES``: "may not manage users"), and the action to ask for.

``login=""`` means "run as the agent's own account". The controller cannot know which account
that is, and agents normally run as root, so it is decided as ``root``: a rule must list ``root``
explicitly to allow it. Failing closed here keeps ``logins: ['*']`` from quietly granting root.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from fleetops.common.errors import PermissionDenied
from fleetops.common.roles import ACTIONS, ANY, DOCUMENT_ACTION, GLOBAL_ACTIONS, LOGIN_ACTIONS, ROOT, Role, Rule
from fleetops.common.selectors import Requirement, Selector
from fleetops.controller.authz.implication import may_overlap, satisfiable, within, within_any

#: Hosts named in a refusal message; the rest are counted ("and 12 more").
MAX_NAMED_HOSTS = 20
#: Denied host names kept in the audit details; ``denied_count`` always has the full number.
MAX_AUDIT_HOSTS = 200

NO_ALLOW = "no allow rule matches"
#: The action whose holder may see a host: refused hosts without it are never named to the caller.
SEE = "hosts.read"

#: What each action lets its holder do, in words, for messages ("alice may not run commands ...").
#: A call may say it more precisely (``authz.actions.RPC_PHRASES``: "manage users" for ``admin``).
ACTION_PHRASES: dict[str, str] = {
    "hosts.read": "read hosts",
    "hosts.tag": "tag hosts",
    "command.run": "run commands",
    "document.run": "run documents",
    "session.start": "start sessions",
    "ssh.forward": "forward ports",
    "ssh.forward_remote": "forward ports from the host (ssh -R)",
    "ssh.agent": "forward their SSH agent",
    "file.transfer": "copy files",
    "patch.scan": "scan for patches",
    "patch.install": "install patches",
    "window.manage": "manage maintenance windows",
    "document.manage": "manage documents",
    "association.manage": "manage associations",
    "events.read": "watch events",
    "subscription.manage": "manage event subscriptions",
    "audit.read": "read the audit log",
    "admin": "administer the controller",
}


class HostLike(Protocol):
    """What a decision needs of a host (``fleetops.controller.fleet.models.Host`` fits)."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def tags(self) -> Mapping[str, str]: ...


H = TypeVar("H", bound=HostLike)


@dataclass(frozen=True)
class Decision:
    """The answer for one request, with what to tell the caller and what to audit.

    ``reason`` is ``message — hint``; :meth:`to_error` gives them apart as :class:`PermissionDenied`.
    ``matched`` names the rules that decided (``ops/allow[0]``; for a refusal the deny rules that
    matched, if any). ``denied_hosts`` names every refused host (name, or id when nameless).
    ``bool(decision)`` is ``decision.allowed``.
    """

    allowed: bool
    action: str
    reason: str
    message: str
    hint: str = ""
    denied_hosts: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    login: str | None = None
    user: str = ""
    host_count: int = 0
    #: For a decision on a selector (:func:`authorize_selector`): the selector, or ``--all``.
    selector: str = ""
    #: Refused hosts the caller may not see (no ``hosts.read``): in ``denied_hosts``, never in the message.
    hidden_hosts: list[str] = field(default_factory=list)
    #: Which check of a multi-step decision decided (tag changes: ``before``, ``after``, ``new-rights``).
    phase: str = ""

    def __bool__(self) -> bool:
        return self.allowed

    def explain(self) -> str:
        return self.reason

    def to_error(self) -> PermissionDenied:
        return PermissionDenied(self.message, self.hint)

    def check(self) -> Decision:
        """*self* when allowed; raise :class:`PermissionDenied` (message and hint) when not."""
        if not self.allowed:
            raise self.to_error()
        return self

    def to_audit(self) -> dict[str, Any]:
        """Details for the audit event of this decision (allowed or not); JSON-serialisable."""
        details: dict[str, Any] = {
            "action": self.action,
            "allowed": self.allowed,
            "login": self.login,
            "hosts": self.host_count,
            "denied_hosts": self.denied_hosts[:MAX_AUDIT_HOSTS],
            "denied_count": len(self.denied_hosts),
            "matched": list(self.matched),
            "reason": self.message,
        }
        if self.login == "":
            details["login_checked_as"] = ROOT
        if self.selector:
            details["selector"] = self.selector
        if self.phase:
            details["phase"] = self.phase
        if self.hidden_hosts:
            # Withheld from the caller's message (they may not see them); kept here for admins.
            details["hidden_hosts"] = self.hidden_hosts[:MAX_AUDIT_HOSTS]
            details["hidden_count"] = len(self.hidden_hosts)
        return details


Verdict = tuple[Literal["allow", "deny", "none"], str]


def _allow_covers(rule: Rule, action: str, login: str | None, document: str | None) -> bool:
    """Whether allow *rule* grants *action* as *login* (and, for ``document.run``, *document*;
    ``None``: some document)."""
    if not rule.covers_action(action) or not rule.allows_login(login):
        return False
    if action != DOCUMENT_ACTION:
        return True
    return bool(rule.documents) if document is None else rule.allows_document(document)


def _deny_covers(rule: Rule, action: str, login: str | None, document: str | None) -> bool:
    """Whether deny *rule* refuses *action* as *login* (and, for ``document.run``, *document*;
    ``None``: some document, refused only by a rule refusing every one)."""
    if not rule.covers_action(action) or not rule.denies_login(login):
        return False
    if action != DOCUMENT_ACTION:
        return True
    return rule.denies_document(document) if document is not None else (not rule.documents or ANY in rule.documents)


def _verdict(
    roles: Sequence[Role],
    action: str,
    login: str | None,
    tags: Mapping[str, str] | None,
    document: str | None = None,
) -> Verdict:
    """Deny first, then allow. ``tags=None``: no particular host (global, or "on some host")."""
    for role in roles:
        for i, rule in enumerate(role.deny):
            if not _deny_covers(rule, action, login, document):
                continue
            if (rule.selector is None) if tags is None else rule.covers_host(tags):
                return "deny", f"{role.name}/deny[{i}]"
    for role in roles:
        for i, rule in enumerate(role.allow):
            if not _allow_covers(rule, action, login, document):
                continue
            if tags is None or rule.covers_host(tags):
                return "allow", f"{role.name}/allow[{i}]"
    return "none", ""


def _host_label(host: HostLike) -> str:
    return host.name or host.id


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def _may_see(roles: Sequence[Role], host: HostLike) -> bool:
    return _verdict(roles, SEE, None, host.tags)[0] == "allow"


def phrase(action: str) -> str:
    """*action* in words ("run commands" for ``command.run``); the action itself when it has none."""
    return ACTION_PHRASES.get(action, action)


def _check_args(action: str, login: str | None, document: str | None = None) -> str | None:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; actions are {', '.join(ACTIONS)}")
    if document is not None and action != DOCUMENT_ACTION:
        raise ValueError(f"only {DOCUMENT_ACTION} is decided for a document (got {action}, {document!r})")
    if login is not None and action not in LOGIN_ACTIONS:
        raise ValueError(f"{action} takes no login; logins apply to {', '.join(sorted(LOGIN_ACTIONS))}")
    return None if login is None else (login or ROOT)


def _as(login: str | None) -> str:
    if login is None:
        return ""
    if login == "":
        return " as the agent's own account (decided as root)"
    return f" as {login}"


def authorize(
    roles: Sequence[Role],
    action: str,
    *,
    hosts: Sequence[HostLike] = (),
    login: str | None = None,
    user: str = "",
    what: str = "",
    hide_unseen: bool = False,
    document: str | None = None,
) -> Decision:
    """Decide whether the holder of *roles* may do *action* (see the module docstring).

    Args:
        roles: the caller's roles, resolved (a disabled identity should pass none).
        action: one of ``ACTIONS``.
        hosts: for a host-scoped action, every host the request touches; ignored for global actions.
        login: the run-as user for ``command.run``/``session.start`` (``""``: the agent's own
            account, decided as root); ``None`` when no login is involved (reading, cancelling).
        user: the caller's name, for the messages ("alice may not ..."; "you" when empty).
        what: what the call does, in words ("manage users"); default: the action's phrase.
        hide_unseen: the decision answers a request of the holder of *roles* (every operator call
            does, through ``rpc.access.Access``): its message names only the refused hosts they
            may see (``hosts.read``); the others are said to be "outside your access", without
            names or a count (``Decision.hidden_hosts``). Off for decisions reported to someone
            else (a window task decided as its author, shown in the window's history).

        document: for ``document.run`` (and only it): the document's name, matched against the
            rules' ``documents``.

    Raises:
        ValueError: *action* is unknown, or a login is given for an action that takes none.
    """
    effective = _check_args(action, login, document)
    roles = list(roles)
    who = user or "you"
    doing = f"{what or (f'run document {document}' if document else phrase(action))}{_as(login)}"
    action_text = f"{action} for {document}" if document else action
    asking = f"{action_text} as {effective}" if effective is not None else action_text

    if action in GLOBAL_ACTIONS or not hosts:
        where = "" if action in GLOBAL_ACTIONS else " on any host"
        kind, ref = _verdict(roles, action, effective, None, document)
        if kind == "allow":
            somewhere = "" if action in GLOBAL_ACTIONS else " on some hosts"
            message = f"{who} may {doing}{somewhere} ({ref})"
            return Decision(True, action, message, message, matched=[ref], login=login, user=user)
        if kind == "deny":
            message = f"{who} may not {doing}{where}: that needs {action}, denied by {ref}"
            hint = _deny_hint([ref])
            matched = [ref]
        else:
            message = f"{who} may not {doing}{where}: that needs {action} ({_no_allow(roles, user)})"
            hint = _ask_for(asking, roles, "")
            matched = []
        return Decision(False, action, f"{message} — {hint}", message, hint, [], matched, login, user)

    seen: set[str] = set()
    unique_hosts = []
    for host in hosts:
        key = host.id or host.name
        if key not in seen:
            seen.add(key)
            unique_hosts.append(host)
    denied: dict[str, list[str]] = {}  # cause -> labels of refused hosts the caller may see, in order
    denied_hosts: list[str] = []  # every refused host, in order (audit)
    hidden: list[str] = []  # refused hosts the caller may not see: never named or counted to them
    allow_refs: list[str] = []
    deny_refs: list[str] = []
    shown_deny_refs: list[str] = []
    for host in unique_hosts:
        kind, ref = _verdict(roles, action, effective, host.tags, document)
        if kind == "allow":
            allow_refs.append(ref)
            continue
        label = _host_label(host)
        denied_hosts.append(label)
        if kind == "deny":
            deny_refs.append(ref)
        if hide_unseen and (action == SEE or not _may_see(roles, host)):
            hidden.append(label)
            continue
        if kind == "deny":
            shown_deny_refs.append(ref)
            denied.setdefault(f"denied by {ref}", []).append(label)
        else:
            denied.setdefault(_no_allow(roles, user), []).append(label)
    total = len(unique_hosts)
    if not denied_hosts:
        refs = _unique(allow_refs)
        message = f"{who} may {doing} on {_count(total, 'host')} ({', '.join(refs)})"
        return Decision(True, action, message, message, matched=refs, login=login, user=user, host_count=total)

    whole = "; the whole request is refused" if total > 1 else ""
    shown = sum(len(names) for names in denied.values())
    if not hidden:
        head = f"{who} may not {doing} on " + (f"{shown} of {total} hosts: " if shown < total else "")
        message = head + _name_groups(denied) + whole
    elif denied:
        message = f"{who} may not {doing} on {_name_groups(denied)}, nor on matching hosts outside your access{whole}"
    elif total > 1:
        message = f"{who} may not {doing}: the target matches hosts outside your access{whole}"
    else:
        message = f"{who} may not {doing}: the host is outside your access"
    if hidden and not roles:
        message += f" ({_no_allow(roles, user)})"  # says nothing of the hosts, and all there is to say
    hints = []
    if total > len(denied_hosts):
        hints.append("narrow the target to the hosts you may reach")
    if hidden:
        hints.append("opsctl hosts list shows the hosts you may see")
    if hidden or any(not cause.startswith("denied by") for cause in denied):
        hints.append(("or " if hints else "") + _ask_for(asking, roles, " on them"))
    if shown_deny_refs:
        hints.append(_deny_hint(_unique(shown_deny_refs)))
    hint = "; ".join(hints)
    return Decision(
        False,
        action,
        f"{message} — {hint}",
        message,
        hint,
        denied_hosts,
        _unique(deny_refs),
        login,
        user,
        total,
        hidden_hosts=hidden,
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def authorize_selector(
    roles: Sequence[Role],
    action: str,
    selector: Selector | None,
    *,
    login: str | None = None,
    user: str = "",
    what: str = "",
    document: str | None = None,
    deferred: str = "A window task",
) -> Decision:
    """Decide *action* on every host that could ever match *selector* (``None``: every host, ``--all``).

    *deferred* names what runs later in a refusal ("A window task", "An association").

    For what runs later on a selector resolved only then (maintenance window tasks): the hosts it
    matches today prove nothing, so the selector itself is checked (``authz.implication``):

    * a deny rule for the action (and login) refuses when its hosts could overlap the selector's
      (a deny rule without hosts always does);
    * otherwise the selector must lie within the hosts of the allow rules for the action and login
      (one rule, or one rule per case of its ``=``/``in`` keys); ``--all`` needs an allow rule
      without hosts. Whatever cannot be proven is refused.

    Raises:
        ValueError: *action* is unknown or not host-scoped, or a login is given for an action that takes none.
    """
    effective = _check_args(action, login, document)
    if action in GLOBAL_ACTIONS:
        raise ValueError(f"{action} is not host-scoped; decide it with authorize()")
    roles = list(roles)
    who = user or "you"
    doing = f"{what or (f'run document {document}' if document else phrase(action))}{_as(login)}"
    if document:
        action_text = f"{action} for {document}"
    else:
        action_text = action
    asking = f"{action_text} as {effective}" if effective is not None else action_text
    label = "--all" if selector is None else str(selector)
    where = "on every host (--all)" if selector is None else f"on hosts matching {label!r}"

    def refuse(message: str, hint: str, matched: list[str]) -> Decision:
        return Decision(False, action, f"{message} — {hint}", message, hint, [], matched, login, user, selector=label)

    denied = [
        (f"{role.name}/deny[{i}]", rule)
        for role in roles
        for i, rule in enumerate(role.deny)
        if _deny_covers(rule, action, effective, document) and may_overlap(rule.selector, selector)
    ]
    if denied:
        refs = [ref for ref, _ in denied]
        denials = "; ".join(f"{rule.hosts or 'every host'} by {ref}" for ref, rule in denied)
        message = f"{who} may not {doing} {where}: it could match hosts that are denied ({denials})"
        exclusions = [_exclusion(rule.selector) for _, rule in denied]
        hint = "narrow the selector so that it cannot match the denied hosts"
        if selector is not None and all(exclusions):
            hint += f", e.g. --target '{label},{','.join(dict.fromkeys(e for e in exclusions if e))}'"
        hint += "; " + _deny_hint(refs)
        return refuse(message, hint, refs)

    if selector is not None and not satisfiable(selector):
        # Matches no host, ever: nothing to grant, nothing to run. Allowed, and said so.
        message = f"{who} may {doing} {where}: the selector can match no host"
        return Decision(True, action, message, message, login=login, user=user, selector=label)

    candidates = [
        (f"{role.name}/allow[{i}]", rule)
        for role in roles
        for i, rule in enumerate(role.allow)
        if _allow_covers(rule, action, effective, document)
    ]
    if selector is None:
        used = [ref for ref, rule in candidates if rule.selector is None]
    else:
        used = [ref for ref, rule in candidates if within(selector, rule.selector)]
        if not used and within_any(selector, [rule.selector for _, rule in candidates]):
            used = [ref for ref, _ in candidates]
    if used:
        message = f"{who} may {doing} {where} ({', '.join(used[:1] if selector is None else used)})"
        return Decision(True, action, message, message, matched=used, login=login, user=user, selector=label)

    if not roles:
        return refuse(f"{who} may not {doing} {where} ({_no_allow(roles, user)})", _ask_for(asking, roles, ""), [])
    if not candidates:
        message = f"{who} may not {doing} {where} ({NO_ALLOW} for {asking} on any host)"
        return refuse(message, _ask_for(asking, roles, ""), [])
    scopes = sorted({rule.hosts for _, rule in candidates})
    message = (
        f"{who} may not {doing} {where}: that "
        + ("targets every host" if selector is None else "selector could match hosts")
        + f" outside the hosts your roles allow ({'; '.join(scopes)}). {deferred} is checked against "
        "every host its target could match when it runs, not the hosts it matches now"
    )
    examples = [f"{label},{scope}" for scope in scopes[:2]] if selector is not None else scopes[:2]
    hint = f"narrow the target to lie within them, e.g. --target '{examples[0]}'"
    hint += f", or {_ask_for(asking, roles, ' on those hosts')}"
    return refuse(message, hint, [])


_NEGATED = {"=": "!=", "!=": "=", "in": "notin", "notin": "in"}


def _exclusion(selector: Selector | None) -> str:
    """A requirement that keeps a selector away from a one-requirement *selector* ("" when none is simple)."""
    if selector is None or len(selector.requirements) != 1:
        return ""
    req = selector.requirements[0]
    if req.operator == "exists":
        return f"!{req.key}"
    if req.operator == "!exists":
        return req.key
    return str(Requirement(req.key, _NEGATED[req.operator], req.values))  # type: ignore[arg-type]  # a value of _NEGATED is an Operator


def _no_allow(roles: Sequence[Role], user: str) -> str:
    if not roles:
        return f"{user} has no roles" if user else "you have no roles"
    return NO_ALLOW


def _deny_hint(refs: list[str]) -> str:
    rules = ", ".join(refs)
    return f"a deny rule ({rules}) wins over any allow rule; if it is wrong, ask an admin to change it"


def _ask_for(doing: str, roles: Sequence[Role], on: str) -> str:
    if not roles:
        return f"ask an admin to give you a role that allows {doing}{on}"
    return f"ask an admin for a role that allows {doing}{on}"


def _name_groups(groups: Mapping[str, list[str]]) -> str:
    """``db-1, db-2 (no allow rule matches); pay-1 (denied by ops/deny[0])``, at most MAX_NAMED_HOSTS names."""
    parts: list[str] = []
    shown = total = 0
    for cause, names in groups.items():
        total += len(names)
        room = MAX_NAMED_HOSTS - shown
        if room <= 0:
            continue
        part = names[:room]
        shown += len(part)
        parts.append(f"{', '.join(part)} ({cause})")
    text = "; ".join(parts)
    if total > shown:
        text += f"; and {total - shown} more"
    return text


def permitted_hosts(
    roles: Sequence[Role], action: str, hosts: Iterable[H], *, login: str | None = None, document: str | None = None
) -> list[H]:
    """The hosts of *hosts* (in order) on which *action* is allowed; for filtering list results.

    For a global action: every host when the action is allowed, none otherwise.
    """
    effective = _check_args(action, login, document)
    roles = list(roles)
    if action in GLOBAL_ACTIONS:
        return list(hosts) if _verdict(roles, action, effective, None)[0] == "allow" else []
    return [h for h in hosts if _verdict(roles, action, effective, h.tags, document)[0] == "allow"]


def visible_hosts(roles: Sequence[Role], hosts: Iterable[H]) -> list[H]:
    """The hosts the holder of *roles* may see (``hosts.read``), in order: ``ListHosts`` and friends."""
    return permitted_hosts(roles, "hosts.read", hosts)
