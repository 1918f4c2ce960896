"""``opsctl admin user|role``: operators (one-time login tokens, disable, delete) and their roles.

Users log in with a one-time token (``opsctl admin user create`` / ``opsctl admin user token`` print
it once) and get short-lived certificates (``opsctl login``). Disabling a user refuses their next
call at once, whatever their certificate's remaining lifetime.

Roles are documents ``{name, description, allow: [rules], deny: [rules]}``, a rule being
``{actions: [...], hosts: "selector", logins: [...]}``. Operators write them as YAML or JSON files;
opsctl checks them with the controller's own model before sending them, so a mistake is reported
with the file, line or field it is in.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleetops.common.errors import InternalError, InvalidInput
from fleetops.common.roles import Role, role_from_text
from fleetops.opsctl import output
from fleetops.opsctl.client import OperatorClient
from fleetops.opsctl.command import positive_seconds
from fleetops.v1 import operator_pb2

RELOGIN = "they need a new login token: opsctl admin user token {name}"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = sub.add_parser(
        "admin",
        help="operators and roles (needs the admin action)",
        description="Manage who may operate the fleet: users (login tokens, roles, disable) and roles.",
    )
    asub = admin.add_subparsers(dest="admin_command", required=True)

    # -- users ------------------------------------------------------------------------------------
    user = asub.add_parser("user", help="operators: create, list, enable/disable, delete, roles, login tokens")
    usub = user.add_subparsers(dest="user_command", required=True)

    p = usub.add_parser(
        "create",
        help="create a user; prints their one-time login token",
        description="Create a user with roles and print the one-time login token (shown only now) and the "
        "opsctl login command to hand to them. The token is spent by the first login.",
    )
    p.add_argument("name")
    _add_role_flag(p, required=True)
    _add_token_ttl_flag(p)
    output.add_output_argument(p)
    p.set_defaults(func=create_user)

    p = usub.add_parser("list", help="users with their roles, state, last login and certificate expiry")
    output.add_output_argument(p)
    p.set_defaults(func=list_users)

    p = usub.add_parser("disable", help="disable a user: their certificate is refused from now on")
    p.add_argument("name")
    p.set_defaults(func=disable_user)

    p = usub.add_parser("enable", help="enable a disabled user (they log in again with a new token)")
    p.add_argument("name")
    p.set_defaults(func=enable_user)

    p = usub.add_parser("delete", help="delete a user: their certificate is refused from now on")
    p.add_argument("name")
    p.set_defaults(func=delete_user)

    p = usub.add_parser("roles", help="replace a user's roles")
    p.add_argument("name")
    _add_role_flag(p, required=True)
    p.set_defaults(func=set_user_roles)

    p = usub.add_parser(
        "token",
        help="a new one-time login token for a user (e.g. whose certificate expired)",
        description="Issue a new one-time login token for an existing user, replacing an unused one.",
    )
    p.add_argument("name")
    _add_token_ttl_flag(p)
    output.add_output_argument(p)
    p.set_defaults(func=issue_token)

    # -- roles ------------------------------------------------------------------------------------
    role = asub.add_parser("role", help="roles: what users may do, on which hosts, as which logins")
    rsub = role.add_subparsers(dest="role_command", required=True)

    p = rsub.add_parser("create", help="create a role from a YAML or JSON file")
    p.add_argument("name")
    p.add_argument("--file", "-f", required=True, metavar="FILE", help="the role document ('-': standard input)")
    p.set_defaults(func=create_role)

    p = rsub.add_parser("update", help="replace a role's document with a YAML or JSON file")
    p.add_argument("name")
    p.add_argument("--file", "-f", required=True, metavar="FILE", help="the role document ('-': standard input)")
    p.set_defaults(func=update_role)

    p = rsub.add_parser("list", help="built-in and created roles")
    output.add_output_argument(p)
    p.set_defaults(func=list_roles)

    p = rsub.add_parser("show", help="one role (-o yaml writes a file for --file)")
    p.add_argument("name")
    output.add_output_argument(p, extra=("yaml",))
    p.set_defaults(func=show_role)

    p = rsub.add_parser("delete", help="delete a role")
    p.add_argument("name")
    p.set_defaults(func=delete_role)


def _add_role_flag(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument(
        "--role",
        action="append",
        default=[],
        required=required,
        metavar="ROLE",
        help="a role (repeatable, or comma-separated); see opsctl admin role list",
    )


def _add_token_ttl_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--token-ttl", default=None, metavar="DURATION", help="how long the login token stays usable (default 24h)"
    )


def roles_from_flags(values: list[str]) -> list[str]:
    """``--role a --role b,c`` -> ``[a, b, c]`` (order kept, repeats dropped)."""
    roles: list[str] = []
    for value in values:
        for word in value.split(","):
            word = word.strip()
            if not word:
                raise InvalidInput(f"empty role name in --role {value!r}", "e.g. --role ops --role auditor")
            if word not in roles:
                roles.append(word)
    if not roles:
        raise InvalidInput("give at least one --role", "see the roles with opsctl admin role list")
    return roles


def token_ttl_seconds(text: str | None) -> int:
    """``--token-ttl`` in whole seconds; 0 (the controller's default, 24 h) when not given."""
    if text is None:
        return 0
    return positive_seconds(text, "--token-ttl")


# ---- users ---------------------------------------------------------------------------------------


def create_user(client: OperatorClient, args: argparse.Namespace) -> int:
    response = client.create_user(args.name, roles_from_flags(args.role), token_ttl_seconds(args.token_ttl))
    name = response.user.name or args.name

    def text() -> None:
        print(f"created user {name} (roles: {', '.join(response.user.roles) or '-'})")
        print_token(client, response, name)

    output.emit(args, response, text)
    return 0


def issue_token(client: OperatorClient, args: argparse.Namespace) -> int:
    response = client.issue_login_token(args.name, token_ttl_seconds(args.token_ttl))
    output.emit(args, response, lambda: print_token(client, response, response.user.name or args.name))
    return 0


def login_command(client: OperatorClient, response: operator_pb2.CreateUserResponse) -> str:
    return response.login_command or output.command_line(
        ["opsctl", "login", "--controller", client.profile.controller, "--token", response.token]
    )


def print_token(client: OperatorClient, response: operator_pb2.CreateUserResponse, name: str) -> None:
    print(f"login token: {response.token}")
    print(f"expires:     {output.when(response.token_expires_at)}   (shown only now; the first login spends it)")
    print(f"Give {name} this command to run on their own machine (it creates their key there):")
    print(f"  {login_command(client, response)}")


def _expiry(ts: Any, now: datetime | None = None) -> str:
    if not ts.seconds and not ts.nanos:
        return "-"
    expired = ts.ToDatetime(tzinfo=UTC) <= (now or datetime.now(UTC))
    return output.when(ts) + (" (expired)" if expired else "")


def list_users(client: OperatorClient, args: argparse.Namespace) -> int:
    users = client.list_users()
    output.emit(args, users, lambda: print_users(users))
    return 0


def print_users(users: Sequence[operator_pb2.User]) -> None:
    """The operator table, by name."""
    rows = [
        [
            u.name,
            ",".join(u.roles) or "-",
            "disabled" if u.disabled else "enabled",
            output.ago(u.last_login_at) if u.last_login_at.seconds else "never",
            _expiry(u.certificate_expires_at),
        ]
        for u in sorted(users, key=lambda u: u.name)
    ]
    output.table(["NAME", "ROLES", "STATE", "LAST LOGIN", "CERT EXPIRES"], rows, sys.stdout)
    if not users:
        print("(no users)")


def disable_user(client: OperatorClient, args: argparse.Namespace) -> int:
    user = client.update_user(args.name, disabled=True)
    print(f"disabled user {user.name or args.name}: their calls are refused from now on")
    return 0


def enable_user(client: OperatorClient, args: argparse.Namespace) -> int:
    user = client.update_user(args.name, disabled=False)
    name = user.name or args.name
    print(f"enabled user {name}; certificates issued before stay refused: " + RELOGIN.format(name=name))
    return 0


def delete_user(client: OperatorClient, args: argparse.Namespace) -> int:
    client.delete_user(args.name)
    print(f"deleted user {args.name}: their certificate is refused from now on")
    return 0


def set_user_roles(client: OperatorClient, args: argparse.Namespace) -> int:
    user = client.update_user(args.name, roles=roles_from_flags(args.role))
    print(f"user {user.name or args.name} now has the roles: {', '.join(user.roles) or '-'}")
    return 0


# ---- role documents ------------------------------------------------------------------------------


def read_text(path: str, what: str = "role") -> tuple[str, str]:
    """(the text of *path*, how to name it in errors); ``-`` is standard input; *what* the file holds."""
    where = "standard input" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} file {where}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{what} file {where} is not UTF-8 text", f"write {what}s as YAML or JSON") from None
    return text, where


def _lenient_parse(text: str) -> Any:
    """The document as plain YAML/JSON reads it, or None when it does not parse."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def role_document(text: str, where: str, name: str) -> dict[str, Any]:
    """The role in *text* checked with the role document (common/roles.py), in its canonical form.

    Raises:
        InvalidInput: the text does not parse (naming the line), the role is invalid (naming the
            field), or it names another role than *name*.
    """
    try:
        doc = role_from_text(text, where).to_dict()
    except InvalidInput:
        lenient = _lenient_parse(text)
        if isinstance(lenient, dict) and "name" not in lenient:
            raise InvalidInput(f"{where}: the role has no name", f"add a line `name: {name}` to {where}") from None
        raise
    doc.setdefault("name", name)
    if doc["name"] != name:
        raise InvalidInput(
            f"{where} defines role {doc['name']!r}, not {name!r}",
            f"make the name in the file and on the command line agree: name: {name}",
        )
    return doc


def _dump(doc: Mapping[str, Any]) -> str:
    def refuse(value: Any) -> Any:
        raise InvalidInput(
            f"role {doc.get('name')!r}: {value!r} is not plain text, a number or a list",
            "quote it in the YAML file: '...'",
        )

    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=refuse)


def create_role(client: OperatorClient, args: argparse.Namespace) -> int:
    text, where = read_text(args.file)
    doc = role_document(text, where, args.name)
    created = client.create_role(args.name, _dump(doc))
    print(f"created role {created.name or args.name} ({rules_summary(stored_document(created, lenient=True) or doc)})")
    return 0


def update_role(client: OperatorClient, args: argparse.Namespace) -> int:
    text, where = read_text(args.file)
    doc = role_document(text, where, args.name)
    updated = client.update_role(args.name, _dump(doc))
    print(f"updated role {updated.name or args.name} ({rules_summary(stored_document(updated, lenient=True) or doc)})")
    return 0


def delete_role(client: OperatorClient, args: argparse.Namespace) -> int:
    client.delete_role(args.name)
    print(f"deleted role {args.name}")
    return 0


def stored_document(role: operator_pb2.Role, *, lenient: bool = False) -> dict[str, Any] | None:
    """The role's document as the controller sent it; InternalError when it is not a JSON mapping (unless lenient)."""
    try:
        doc = json.loads(role.document_json or "{}")
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        return doc
    if lenient:
        return None
    raise InternalError(f"the controller sent role {role.name} with a document that is not a JSON mapping")


def _rule_count(doc: Mapping[str, Any], kind: str) -> int:
    rules = doc.get(kind)
    return len(rules) if isinstance(rules, list) else 0


def rules_summary(doc: Mapping[str, Any]) -> str:
    """``2 allow, 1 deny``."""
    return f"{_rule_count(doc, 'allow')} allow, {_rule_count(doc, 'deny')} deny"


def role_json(role: operator_pb2.Role) -> dict[str, Any]:
    """``-o json`` of a role: its record with the document parsed (``document``, not ``document_json``)."""
    doc = output.message_dict(role)
    doc.pop("document_json", None)
    doc["document"] = stored_document(role, lenient=True)
    return doc


def list_roles(client: OperatorClient, args: argparse.Namespace) -> int:
    roles = client.list_roles()
    output.emit(args, lambda: [role_json(r) for r in roles], lambda: print_roles(roles))
    return 0


def print_roles(roles: Sequence[operator_pb2.Role]) -> None:
    """The role table, built-in roles first."""
    rows = []
    for r in sorted(roles, key=lambda r: (not r.builtin, r.name)):
        doc = stored_document(r, lenient=True) or {}
        rows.append(
            [r.name, "yes" if r.builtin else "-", rules_summary(doc), _one_line(str(doc.get("description") or ""))]
        )
    output.table(["NAME", "BUILT-IN", "RULES", "DESCRIPTION"], rows, sys.stdout)
    if not roles:
        print("(no roles)")


def _one_line(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def rule_lines(doc: Mapping[str, Any]) -> list[str]:
    """``allow[0]: command.run on role=web as deploy`` per rule (the controller's wording when it can read it)."""
    try:
        return Role.from_dict(doc).describe()
    except (InvalidInput, TypeError, ValueError, AttributeError, KeyError):
        pass  # a document this opsctl cannot read (a newer controller): show it plainly
    lines = []
    for kind in ("allow", "deny"):
        rules = doc.get(kind)
        for i, rule in enumerate(rules if isinstance(rules, list) else []):
            if isinstance(rule, Mapping):
                actions = ", ".join(map(str, rule.get("actions") or [])) or "?"
                hosts = str(rule.get("hosts") or "")
                text = actions + (f" on {hosts}" if hosts else " on every host")
                logins = rule.get("logins") or []
                text += (" as " + ", ".join(map(str, logins))) if logins else ""
            else:
                text = str(rule)
            lines.append(f"{kind}[{i}]: {text}")
    return lines or ["(no rules: grants nothing)"]


def show_role(client: OperatorClient, args: argparse.Namespace) -> int:
    role = client.get_role(args.name)
    output.emit(args, lambda: role_json(role), lambda: print_role(role), yaml=lambda: print_role_yaml(role))
    return 0


def print_role_yaml(role: operator_pb2.Role) -> None:
    """``role show -o yaml``: the document as a file ``--file`` takes back, its main keys first."""
    import yaml

    doc = stored_document(role)
    assert doc is not None
    ordered: dict[str, Any] = {k: doc[k] for k in ("name", "description", "allow", "deny") if k in doc}
    ordered.update(doc)
    sys.stdout.write(yaml.safe_dump(ordered, sort_keys=False, default_flow_style=False, allow_unicode=True))


def print_role(role: operator_pb2.Role) -> None:
    """One role's fields and its rules in words."""
    doc = stored_document(role)
    assert doc is not None
    lines = [
        ("name", role.name),
        ("description", str(doc.get("description") or "-")),
        ("built-in", "yes (read-only)" if role.builtin else "no"),
    ]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {value}")
    print("rules:")
    for line in rule_lines(doc):
        print(f"  {line}")
