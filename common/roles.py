"""The role document: allow and deny rules over actions, host tag selectors and logins (docs/access.md).

A :class:`Role` is a name, a description and two lists of :class:`Rule`: ``allow`` and ``deny``.
A rule names **actions** (or ``*``), the **hosts** it covers (a tag selector; empty means every
host) and the **logins** (run-as users) it covers. Nothing is allowed unless an allow rule says so,
and a matching deny rule always wins (decided by the controller, ``fleetops.controller.authz``).

Rule semantics that the decision code relies on, all checked here:

* ``actions`` is a non-empty list of :data:`ACTIONS` or ``"*"``. In a rule *with* ``hosts``,
  ``*`` means every host-scoped action only: a rule limited to some hosts never grants or denies
  a global action (``admin``, ``audit.read``, ``window.manage``, ``document.manage``), and naming a global action
  explicitly in such a rule is an error.
* ``hosts`` is a tag selector (``fleetops.common.selectors``); ``""`` (or ``"*"``) means every
  host. It is kept in canonical form.
* ``logins`` only apply to :data:`LOGIN_ACTIONS`. In an **allow** rule, ``*`` is any login
  *except* ``root``, which must be listed explicitly; a request without a login (reading, cancelling)
  needs no login in the rule. In a **deny** rule, ``*`` is every login *including* ``root`` (a
  deny errs on the side of matching), and a deny rule without logins applies whatever the login.
* ``destinations`` only apply to ``ssh.forward``: ``HOST:PORT`` patterns a port forward may reach
  from the host (:func:`destination_matches`). An **allow** rule without destinations allows no
  forward; ``*`` allows any. A **deny** rule without destinations refuses every forward; with
  destinations only those.
* ``documents`` only apply to ``document.run``: patterns (``*`` and ``?`` globs) of the document
  names the rule covers (docs/automation.md). ``document.run`` lets its holder run those documents,
  and only those, where they could not run a command: "restart the web service" without a shell.
  An **allow** rule without documents allows none; ``*`` allows any. A **deny** rule without
  documents refuses every document; with documents only those.

Roles are immutable (tuples, frozen dataclasses). This module is the document only, shared by the
controller and ``opsctl admin role``; what a role allows is decided in ``fleetops.controller.authz``.
Files are YAML or JSON (:func:`role_from_text`); duplicate keys are refused, since a silently
dropped second ``deny:`` block would widen access.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from fleetops.common.errors import InvalidInput, SelectorError
from fleetops.common.selectors import Selector
from fleetops.common.strict_yaml import kind_of, parse_text

#: Every action a rule may name, in documentation order.
ACTIONS: tuple[str, ...] = (
    "hosts.read",
    "hosts.tag",
    "command.run",
    "document.run",
    "session.start",
    "ssh.forward",
    "ssh.forward_remote",
    "ssh.agent",
    "file.transfer",
    "patch.scan",
    "patch.install",
    "window.manage",
    "document.manage",
    "association.manage",
    "events.read",
    "subscription.manage",
    "audit.read",
    "admin",
)
#: Actions whose decision depends on the hosts involved: decided host by host.
HOST_SCOPED_ACTIONS: frozenset[str] = frozenset(
    {
        "hosts.read",
        "hosts.tag",
        "command.run",
        "document.run",
        "session.start",
        "ssh.forward",
        "ssh.forward_remote",
        "ssh.agent",
        "file.transfer",
        "patch.scan",
        "patch.install",
    }
)
#: Actions on the control plane itself: hosts play no part.
GLOBAL_ACTIONS: frozenset[str] = frozenset(ACTIONS) - HOST_SCOPED_ACTIONS
#: Actions that run something as a user on the host, so that a login (run-as user) is checked.
LOGIN_ACTIONS: frozenset[str] = frozenset({"command.run", "document.run", "session.start"})
#: The action whose rules name destinations (``HOST:PORT`` patterns a forward may reach).
FORWARD_ACTION = "ssh.forward"
#: The action whose rules name documents (name patterns of the documents it may run).
DOCUMENT_ACTION = "document.run"

ANY = "*"
ROOT = "root"
MAX_ROLE_NAME = 64
MAX_DESCRIPTION = 1024
MAX_RULES = 100
MAX_LOGINS = 100
MAX_DESTINATIONS = 100
MAX_DOCUMENTS = 100

#: Login names as the controller accepts them for --as (controller/sessions/models.py).
_LOGIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}\$?")
_ROLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_RULE_KEYS = ("actions", "hosts", "logins", "destinations", "documents")
_DOCUMENT_PATTERN = re.compile(r"[A-Za-z0-9*?][A-Za-z0-9._*?-]{0,127}")
DOCUMENTS_HINT = "documents are document names or globs, e.g. restart-web, web-*; '*' means any document"
#: ``HOST:PORT`` of a destination pattern: a glob of a name or address ([...] for IPv6), and ``*``,
#: a port or a range ``LOW-HIGH``.
_DESTINATION = re.compile(r"(?P<host>\[[0-9A-Fa-f:.*?]+\]|[A-Za-z0-9_.*?-]{1,253}):(?P<port>\*|\d{1,5}(?:-\d{1,5})?)")
DESTINATION_HINT = (
    "destinations are HOST:PORT patterns a forward may reach from the host, e.g. 127.0.0.1:5432, "
    "db.internal:*, *.internal:8000-8999, [::1]:22; '*' means any destination"
)
_ROLE_KEYS = ("name", "description", "allow", "deny")

DOC_HINT = "see docs/access.md#roles for the role format"
RULE_YAML = "{actions: [command.run], hosts: 'role=web', logins: [deploy]}"
RULE_EXAMPLE = f"e.g. {RULE_YAML}"
LOGIN_HINT = (
    "logins are user names on the hosts, e.g. deploy; '*' means any login except root, "
    "and root must be listed explicitly as root"
)
ROLE_NAME_HINT = f"1-{MAX_ROLE_NAME} letters, digits, '.', '_' or '-', starting with a letter or digit, e.g. web-ops"

Kind = Literal["allow", "deny"]


def is_valid_login(name: str) -> bool:
    """Whether *name* is a user name the controller would accept as a run-as user."""
    return isinstance(name, str) and _LOGIN.fullmatch(name) is not None


def validate_role_name(name: Any) -> str:
    """*name* if it is a valid role name, else :class:`InvalidInput`."""
    if not isinstance(name, str) or not name:
        raise InvalidInput("a role needs a name", ROLE_NAME_HINT)
    if not _ROLE_NAME.fullmatch(name):
        raise InvalidInput(f"bad role name {name!r}", ROLE_NAME_HINT)
    return name


def check_destination(pattern: str) -> str:
    """``pattern`` (a destination pattern, or ``*``) if valid, else :class:`InvalidInput`."""
    if pattern == ANY:
        return pattern
    match = _DESTINATION.fullmatch(pattern) if isinstance(pattern, str) else None
    if match is None:
        raise InvalidInput(f"destinations: {pattern!r} is not HOST:PORT", DESTINATION_HINT)
    low, _, high = match["port"].partition("-")
    if low != ANY and not (0 < int(low) <= int(high or low) <= 65535):
        raise InvalidInput(f"destinations: {pattern!r} has no valid port (1-65535, LOW-HIGH)", DESTINATION_HINT)
    return pattern


def destination_matches(pattern: str, host: str, port: int) -> bool:
    """Whether a forward to ``host:port`` is one ``pattern`` names.

    The host is compared as the client asked for it (a name is not resolved: ``localhost`` and
    ``127.0.0.1`` are different destinations), case-insensitively, with ``*`` and ``?`` globs.
    """
    if pattern == ANY:
        return True
    match = _DESTINATION.fullmatch(pattern)
    if match is None:
        return False
    pattern_host = match["host"].strip("[]")
    if not fnmatch.fnmatchcase(host.strip("[]").lower(), pattern_host.lower()):
        return False
    ports = match["port"]
    if ports == ANY:
        return True
    low, _, high = ports.partition("-")
    return int(low) <= port <= int(high or low)


def _names(value: Any, field_name: str, example: str) -> list[str]:
    """A list of strings (order kept, repeats dropped); a scalar is refused with an example."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidInput(f"{field_name} must be a list, got {kind_of(value)}", f"write it as a list: {example}")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            quote = " (quote it: YAML reads words like no, on or 123 as booleans or numbers)"
            raise InvalidInput(
                f"{field_name}: {item!r} is {kind_of(item)}, not a name",
                f"write names as text{quote if isinstance(item, (bool, int, float)) else ''}",
            )
        if item not in out:
            out.append(item)
    return out


def _unknown_action(action: str, field_name: str) -> InvalidInput:
    close = difflib.get_close_matches(action, ACTIONS, n=1)
    guess = f"did you mean {close[0]}? " if close else ""
    return InvalidInput(
        f"{field_name}: unknown action {action!r}",
        f"{guess}actions are {', '.join(ACTIONS)}, or * for all",
    )


@dataclass(frozen=True)
class Rule:
    """One allow or deny rule: these actions, on hosts matching this selector, as these logins.

    Args:
        actions: names from :data:`ACTIONS`, or ``"*"``.
        hosts: a tag selector; ``""`` or ``"*"`` means every host. Stored canonical (``""`` for all).
        logins: run-as user names; ``"*"`` (allow: any but root; deny: any, root included); ``"root"``.
        destinations: for ``ssh.forward``: ``HOST:PORT`` patterns (:func:`destination_matches`) or ``"*"``.
        documents: for ``document.run``: document name patterns (globs) or ``"*"``.
    """

    actions: tuple[str, ...]
    hosts: str = ""
    logins: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()
    documents: tuple[str, ...] = ()
    selector: Selector | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        actions = _names(self.actions, "actions", "actions: [command.run, session.start]")
        if not actions:
            raise InvalidInput("actions: a rule needs at least one action", f"{RULE_EXAMPLE}; * means every action")
        for action in actions:
            if action != ANY and action not in ACTIONS:
                raise _unknown_action(action, "actions")
        if ANY in actions:
            actions = [ANY]  # "*" covers the rest
        object.__setattr__(self, "actions", tuple(actions))

        if self.hosts is None:
            hosts = ""
        elif not isinstance(self.hosts, str):
            raise InvalidInput(
                f"hosts must be a tag selector (text), got {kind_of(self.hosts)}",
                "e.g. hosts: 'env=prod,role in (web,api)'; leave hosts out for every host",
            )
        else:
            hosts = self.hosts.strip()
        selector = None
        if hosts and hosts != ANY:
            try:
                selector = Selector.parse(hosts)
            except SelectorError as exc:
                raise InvalidInput(
                    f"hosts: {exc.message}",
                    f"{exc.hint}; quote the selector in YAML; leave hosts out for every host",
                ) from None
            if facts := selector.fact_keys:
                # What a host reports about itself is data, never authority (docs/access.md).
                what = f"{', '.join(facts)} {'is an inventory fact' if len(facts) == 1 else 'are inventory facts'}"
                raise InvalidInput(
                    f"hosts: {what}, reported by the hosts themselves; a role's hosts select operator-set tags only",
                    "tag the hosts (opsctl hosts tag HOST os=linux) and select the tag; commands may still "
                    "target by facts (--target 'inv.os_family=linux') within the hosts a role allows",
                )
            scoped_out = [a for a in actions if a in GLOBAL_ACTIONS]
            if scoped_out:
                raise InvalidInput(
                    f"actions: {', '.join(scoped_out)} cannot be limited to hosts {str(selector)!r}: "
                    "it acts on the controller, not on hosts",
                    "put it in a rule without hosts; host-scoped actions are "
                    + ", ".join(a for a in ACTIONS if a in HOST_SCOPED_ACTIONS),
                )
        object.__setattr__(self, "selector", selector)
        object.__setattr__(self, "hosts", "" if selector is None else str(selector))

        logins = _names(self.logins if self.logins is not None else (), "logins", "logins: [deploy, root]")
        if len(logins) > MAX_LOGINS:
            raise InvalidInput(f"logins: more than {MAX_LOGINS} logins", "use '*' for any login except root")
        for login in logins:
            if login != ANY and not is_valid_login(login):
                raise InvalidInput(f"logins: {login!r} is not a login name", LOGIN_HINT)
        if logins and ANY not in actions and not LOGIN_ACTIONS.intersection(actions):
            raise InvalidInput(
                "logins: logins only apply to command.run, document.run and session.start, "
                "which this rule does not list",
                "remove logins, or add the action they are meant for",
            )
        object.__setattr__(self, "logins", tuple(logins))

        destinations = _names(
            self.destinations if self.destinations is not None else (),
            "destinations",
            "destinations: ['127.0.0.1:5432']",
        )
        if len(destinations) > MAX_DESTINATIONS:
            raise InvalidInput(f"destinations: more than {MAX_DESTINATIONS} patterns", "use globs: '*.internal:5432'")
        for pattern in destinations:
            check_destination(pattern)
        if destinations and ANY not in actions and FORWARD_ACTION not in actions:
            raise InvalidInput(
                f"destinations: destinations only apply to {FORWARD_ACTION}, which this rule does not list",
                "remove destinations, or add ssh.forward to the actions",
            )
        object.__setattr__(self, "destinations", (ANY,) if ANY in destinations else tuple(destinations))

        documents = _names(
            self.documents if self.documents is not None else (), "documents", "documents: [restart-web]"
        )
        if len(documents) > MAX_DOCUMENTS:
            raise InvalidInput(f"documents: more than {MAX_DOCUMENTS} patterns", "use globs: 'web-*'")
        for pattern in documents:
            if pattern != ANY and not _DOCUMENT_PATTERN.fullmatch(pattern):
                raise InvalidInput(f"documents: {pattern!r} is not a document name or pattern", DOCUMENTS_HINT)
        if documents and ANY not in actions and DOCUMENT_ACTION not in actions:
            raise InvalidInput(
                f"documents: documents only apply to {DOCUMENT_ACTION}, which this rule does not list",
                "remove documents, or add document.run to the actions",
            )
        object.__setattr__(self, "documents", (ANY,) if ANY in documents else tuple(documents))

    # -- matching -----------------------------------------------------------------------------

    def covers_action(self, action: str) -> bool:
        """Whether this rule speaks of *action* (``*`` in a host-limited rule: host-scoped only)."""
        if action in self.actions:
            return True
        return ANY in self.actions and (self.selector is None or action in HOST_SCOPED_ACTIONS)

    def covers_host(self, tags: Mapping[str, str]) -> bool:
        return self.selector is None or self.selector.matches(tags)

    def allows_login(self, login: str | None) -> bool:
        """As an allow rule: ``None`` (no login involved) always; root only if listed; ``*`` the rest."""
        if login is None:
            return True
        if not is_valid_login(login):
            return False
        if login == ROOT:
            return ROOT in self.logins
        return login in self.logins or ANY in self.logins

    def denies_login(self, login: str | None) -> bool:
        """As a deny rule: without logins, whatever the login; else only those (``*``: all, root too)."""
        if not self.logins:
            return True
        if login is None:
            return False
        return ANY in self.logins or login in self.logins

    def allows_destination(self, host: str, port: int) -> bool:
        """As an allow rule: a forward to ``host:port`` is among its destinations (none: no forward)."""
        return any(destination_matches(p, host, port) for p in self.destinations)

    def denies_destination(self, host: str, port: int) -> bool:
        """As a deny rule: without destinations, every forward; else those its destinations name."""
        return not self.destinations or self.allows_destination(host, port)

    def allows_document(self, name: str) -> bool:
        """As an allow rule: document *name* is among its documents (none: no document)."""
        return any(p == ANY or fnmatch.fnmatchcase(name, p) for p in self.documents)

    def denies_document(self, name: str) -> bool:
        """As a deny rule: without documents, every document; else those its documents name."""
        return not self.documents or self.allows_document(name)

    def describe(self) -> str:
        """One line for listings: ``command.run, session.start on role=web as deploy``."""
        text = ", ".join(self.actions) + (f" on {self.hosts}" if self.hosts else " on every host")
        if self.logins:
            text += " as " + ", ".join(self.logins)
        if self.destinations:
            text += " to " + ", ".join(self.destinations)
        if self.documents:
            text += " documents " + ", ".join(self.documents)
        return text

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"actions": list(self.actions), "hosts": self.hosts, "logins": list(self.logins)}
        if self.destinations:  # left out when empty: role documents from before keep their shape
            doc["destinations"] = list(self.destinations)
        if self.documents:
            doc["documents"] = list(self.documents)
        return doc

    @classmethod
    def from_dict(cls, d: Any, where: str = "rule") -> Rule:
        """A rule from its mapping; every error is prefixed with *where* (e.g. ``allow[0]``)."""
        if not isinstance(d, Mapping):
            raise InvalidInput(f"{where}: a rule is a mapping, got {kind_of(d)}", RULE_EXAMPLE)
        unknown = sorted(str(k) for k in d if k not in _RULE_KEYS)
        if unknown:
            raise InvalidInput(
                f"{where}: unknown key(s): {', '.join(unknown)}",
                f"a rule has actions, hosts (a tag selector), logins, destinations and documents, {RULE_EXAMPLE}",
            )
        if "actions" not in d:
            raise InvalidInput(f"{where}: the rule has no actions", RULE_EXAMPLE)
        try:
            return cls(
                actions=d["actions"],
                hosts=d.get("hosts", ""),
                logins=d.get("logins", ()),
                destinations=d.get("destinations", ()),
                documents=d.get("documents", ()),
            )
        except InvalidInput as exc:
            raise InvalidInput(f"{where}.{exc.message}", exc.hint) from None


def _rules(value: Any, kind: Kind) -> tuple[Rule, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidInput(f"{kind} must be a list of rules, got {kind_of(value)}", f"{kind}: [{RULE_YAML}]")
    rules = list(value)
    if len(rules) > MAX_RULES:
        raise InvalidInput(f"{kind}: more than {MAX_RULES} rules", "split the role in several roles")
    out = []
    for i, rule in enumerate(rules):
        if isinstance(rule, Rule):
            out.append(rule)
        else:
            out.append(Rule.from_dict(rule, f"{kind}[{i}]"))
    return tuple(out)


@dataclass(frozen=True)
class Role:
    """A named set of allow and deny rules. Immutable; ``allow``/``deny`` accept rules or mappings."""

    name: str
    description: str = ""
    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        validate_role_name(self.name)
        try:
            if not isinstance(self.description, str):
                raise InvalidInput(
                    f"description must be text, got {kind_of(self.description)}", "description: 'what it is for'"
                )
            if len(self.description) > MAX_DESCRIPTION:
                raise InvalidInput(
                    f"the description is longer than {MAX_DESCRIPTION} characters", "keep it to a sentence or two"
                )
            object.__setattr__(self, "allow", _rules(self.allow, "allow"))
            object.__setattr__(self, "deny", _rules(self.deny, "deny"))
        except InvalidInput as exc:
            raise InvalidInput(f"role {self.name!r}: {exc.message}", exc.hint) from None

    @property
    def builtin(self) -> bool:
        return self.name in BUILTIN_ROLES

    def rules(self, kind: Kind) -> tuple[Rule, ...]:
        return self.allow if kind == "allow" else self.deny

    def to_dict(self) -> dict[str, Any]:
        """The role document (``Role.document_json`` on the wire): name, description, allow, deny."""
        return {
            "name": self.name,
            "description": self.description,
            "allow": [r.to_dict() for r in self.allow],
            "deny": [r.to_dict() for r in self.deny],
        }

    @classmethod
    def from_dict(cls, d: Any) -> Role:
        """The inverse of :meth:`to_dict`, also for operators' files: unknown keys are refused."""
        if not isinstance(d, Mapping):
            raise InvalidInput(f"a role is a mapping of name, description, allow and deny, not {kind_of(d)}", DOC_HINT)
        unknown = sorted(str(k) for k in d if k not in _ROLE_KEYS)
        if unknown:
            hint = "a role has name, description, allow and deny"
            if any(k in ("spec", "metadata", "kind", "version") for k in unknown):
                hint += " at the top level (no kind/metadata/spec wrapper)"
            raise InvalidInput(f"unknown key(s) in role: {', '.join(unknown)}", f"{hint}; {DOC_HINT}")
        if "name" not in d:
            raise InvalidInput("the role has no name", ROLE_NAME_HINT)
        return cls(
            name=d["name"],
            description="" if d.get("description") is None else d["description"],
            allow=d.get("allow") or (),
            deny=d.get("deny") or (),
        )

    def describe(self) -> list[str]:
        """Lines for ``opsctl admin role show``: one per rule, ``allow[0]: ...``."""
        lines = [f"allow[{i}]: {r.describe()}" for i, r in enumerate(self.allow)]
        lines += [f"deny[{i}]: {r.describe()}" for i, r in enumerate(self.deny)]
        return lines or ["(no rules: grants nothing)"]


# -- files ----------------------------------------------------------------------------------------


def _parse(text: str, source: str) -> Any:
    return parse_text(
        text,
        source,
        DOC_HINT,
        "give each key once (put all allow rules in one allow: list, all deny rules in one deny: list)",
    )


def role_from_text(text: str, source_name: str) -> Role:
    """A role from a YAML or JSON document; every error names *source_name* (a file name, ``-``...).

    Raises:
        InvalidInput: the text does not parse (with line and column), is not one mapping, or the
            role is invalid (naming the field, e.g. ``allow[1].actions``).
    """
    doc = _parse(text, source_name)
    if doc is None:
        raise InvalidInput(f"{source_name} is empty", f"a role needs at least a name; {DOC_HINT}")
    if not isinstance(doc, Mapping):
        raise InvalidInput(
            f"{source_name}: a role is a mapping of name, description, allow and deny, not {kind_of(doc)}", DOC_HINT
        )
    try:
        return Role.from_dict(doc)
    except InvalidInput as exc:
        raise InvalidInput(f"{source_name}: {exc.message}", exc.hint) from None


def role_to_text(role: Role, fmt: Literal["yaml", "json"] = "yaml") -> str:
    """The role as a file :func:`role_from_text` reads back (for ``role show -o yaml``)."""
    if fmt == "json":
        return json.dumps(role.to_dict(), indent=2) + "\n"
    return yaml.safe_dump(role.to_dict(), sort_keys=False, default_flow_style=False, allow_unicode=True)


# -- built-in roles -------------------------------------------------------------------------------

#: Always present, read-only; their names are reserved. Site-specific roles (an ``ops`` role for
#: some hosts and logins) are created by admins: see docs/access.md for an example.
BUILTIN_ROLES: Mapping[str, Role] = {
    "admin": Role(
        name="admin",
        description="Everything, on every host, as any login including root, forwarding anywhere.",
        allow=(Rule(actions=(ANY,), logins=(ANY, ROOT), destinations=(ANY,), documents=(ANY,)),),
    ),
    "auditor": Role(
        name="auditor",
        description="Read the audit log, session transcripts and the host inventory; change nothing.",
        allow=(Rule(actions=("audit.read", "hosts.read")),),
    ),
}
