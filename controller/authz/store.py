"""Roles kept in the database (``roles`` table); the built-in ones are not stored and cannot change."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import Conflict, InvalidInput, NotFound
from fleetops.common.roles import BUILTIN_ROLES, Role
from fleetops.controller.authz.models import ensure_mutable
from fleetops.controller.store.models import RoleRow, UserRow


class RoleStore:
    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self._db = db

    async def list(self) -> list[Role]:
        async with self._db() as db:
            rows = (await db.scalars(select(RoleRow).order_by(RoleRow.name))).all()
        return [*BUILTIN_ROLES.values(), *(Role.from_dict(r.document) for r in rows)]

    async def get(self, name: str) -> Role:
        if name in BUILTIN_ROLES:
            return BUILTIN_ROLES[name]
        async with self._db() as db:
            row = await db.get(RoleRow, name)
        if row is None:
            raise NotFound(f"no role {name!r}", "list them with opsctl admin role list")
        return Role.from_dict(row.document)

    async def resolve(self, names: Iterable[str]) -> builtins.list[Role]:
        """The roles a user holds; names of roles since deleted are skipped (they grant nothing)."""
        wanted = list(dict.fromkeys(names))
        roles = [BUILTIN_ROLES[n] for n in wanted if n in BUILTIN_ROLES]
        stored = [n for n in wanted if n not in BUILTIN_ROLES]
        if stored:
            async with self._db() as db:
                rows = (await db.scalars(select(RoleRow).where(RoleRow.name.in_(stored)))).all()
            roles += [Role.from_dict(r.document) for r in rows]
        return roles

    async def put(self, actor: str, document: dict[str, Any], *, create: bool) -> Role:
        """Raises: InvalidInput (a malformed role), Conflict (exists / built-in), NotFound (update of none)."""
        role = Role.from_dict(document)
        ensure_mutable(role.name, "created" if create else "changed")
        async with self._db.begin() as db:
            row = await db.get(RoleRow, role.name)
            if create and row is not None:
                raise Conflict(f"role {role.name!r} exists", "change it with opsctl admin role update")
            if not create and row is None:
                raise NotFound(f"no role {role.name!r}", "create it with opsctl admin role create")
            row = row or RoleRow(name=role.name)
            row.document, row.updated_at, row.updated_by = role.to_dict(), datetime.now(UTC), actor
            db.add(row)
        return role

    async def delete(self, name: str) -> None:
        ensure_mutable(name, "deleted")
        async with self._db.begin() as db:
            row = await db.get(RoleRow, name)
            if row is None:
                raise NotFound(f"no role {name!r}", "list them with opsctl admin role list")
            holders = [u.name for u in (await db.scalars(select(UserRow))).all() if name in (u.roles or ())]
            if holders:
                raise Conflict(
                    f"role {name!r} is held by {', '.join(sorted(holders))}",
                    "take it from them first: opsctl admin user roles NAME --role ...",
                )
            await db.delete(row)

    async def check_names(self, names: Iterable[str]) -> None:
        """Raises InvalidInput naming roles that do not exist (when giving roles to a user)."""
        known = {r.name for r in await self.list()}
        missing = [n for n in names if n not in known]
        if missing:
            raise InvalidInput(
                f"no role {', '.join(missing)}", "create it first: opsctl admin role create NAME --file F"
            )
