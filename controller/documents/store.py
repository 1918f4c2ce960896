"""Stored documents: ``documents`` (default and latest version) and ``document_versions`` (the texts).

Versions are never changed or removed one by one: an update adds one (``latest_version + 1``),
``delete`` removes the document with all its versions. Two controllers adding a version at once
cannot both get the same number: the (name, version) primary key refuses the second, which is
then reported as a conflict to retry.
"""

from __future__ import annotations

import builtins
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import Conflict, NotFound
from fleetops.controller.documents.models import DocumentInfo, sha256
from fleetops.controller.store.models import DocumentRow, DocumentVersionRow

LIST_HINT = "list them with opsctl doc list"


def _exists(name: str) -> Conflict:
    return Conflict(f"document {name!r} exists", f"add a version with opsctl doc update {name} -f FILE")


def _info(doc: DocumentRow, version: DocumentVersionRow, *, content: bool = True) -> DocumentInfo:
    return DocumentInfo(
        name=doc.name,
        version=version.version,
        content=version.content if content else "",
        kind=version.kind,
        description=version.description,
        builtin=False,
        default_version=doc.default_version,
        latest_version=doc.latest_version,
        created_at=version.created_at,
        created_by=version.created_by,
        sha256=version.sha256,
    )


class DocumentStore:
    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self._db = db

    async def list(self) -> builtins.list[DocumentInfo]:
        """Every stored document at its default version, by name, without content."""
        async with self._db() as db:
            rows = (
                await db.execute(
                    select(DocumentRow, DocumentVersionRow)
                    .join(
                        DocumentVersionRow,
                        (DocumentVersionRow.name == DocumentRow.name)
                        & (DocumentVersionRow.version == DocumentRow.default_version),
                    )
                    .order_by(DocumentRow.name)
                )
            ).all()
        return [_info(doc, version, content=False) for doc, version in rows]

    async def get(self, name: str, version: int | None = None) -> DocumentInfo:
        """*name* at *version* (``None``: its default version).

        Raises:
            NotFound: no such document, or no such version of it.
        """
        async with self._db() as db:
            doc = await db.get(DocumentRow, name)
            if doc is None:
                raise NotFound(f"no document {name!r}", LIST_HINT)
            row = await db.get(DocumentVersionRow, (name, version or doc.default_version))
        if row is None:
            raise NotFound(
                f"document {name!r} has no version {version}",
                f"its versions are 1-{doc.latest_version}: opsctl doc versions {name}",
            )
        return _info(doc, row)

    async def versions(self, name: str) -> builtins.list[DocumentInfo]:
        async with self._db() as db:
            doc = await db.get(DocumentRow, name)
            if doc is None:
                raise NotFound(f"no document {name!r}", LIST_HINT)
            rows = (
                await db.scalars(
                    select(DocumentVersionRow)
                    .where(DocumentVersionRow.name == name)
                    .order_by(DocumentVersionRow.version)
                )
            ).all()
        return [_info(doc, row, content=False) for row in rows]

    async def create(self, actor: str, name: str, content: str, kind: str, description: str) -> DocumentInfo:
        """Version 1 of a new document (its default). Raises Conflict when *name* exists."""
        now = datetime.now(UTC)
        try:
            async with self._db.begin() as db:
                if await db.get(DocumentRow, name) is not None:
                    raise _exists(name)
                db.add(DocumentRow(name=name, default_version=1, latest_version=1, created_at=now, created_by=actor))
                await db.flush()
                db.add(self._version_row(actor, name, 1, content, kind, description, now))
        except IntegrityError:
            raise _exists(name) from None
        return await self.get(name, 1)

    @staticmethod
    def _version_row(
        actor: str, name: str, version: int, content: str, kind: str, description: str, now: datetime
    ) -> DocumentVersionRow:
        return DocumentVersionRow(
            name=name,
            version=version,
            content=content,
            sha256=sha256(content),
            kind=kind,
            description=description,
            created_at=now,
            created_by=actor,
        )

    async def add_version(
        self, actor: str, name: str, content: str, kind: str, description: str, *, make_default: bool
    ) -> DocumentInfo:
        """A new version (``latest + 1``) of *name*; the default too with *make_default*.

        Raises:
            NotFound: no such document.
            Conflict: the text is the latest version's (nothing to add), or another version was
                added at the same moment (retry).
        """
        now = datetime.now(UTC)
        try:
            async with self._db.begin() as db:
                doc = await db.get(DocumentRow, name, with_for_update=True)
                if doc is None:
                    raise NotFound(f"no document {name!r}", f"create it with opsctl doc create {name} -f FILE")
                latest = await db.get(DocumentVersionRow, (name, doc.latest_version))
                if latest is not None and latest.sha256 == sha256(content):
                    raise Conflict(
                        f"document {name!r} version {doc.latest_version} already has this content",
                        "change the file, or make that version the default: "
                        f"opsctl doc set-default {name} {doc.latest_version}",
                    )
                version = doc.latest_version + 1
                db.add(self._version_row(actor, name, version, content, kind, description, now))
                doc.latest_version = version
                if make_default:
                    doc.default_version = version
        except IntegrityError:
            raise Conflict(f"another version of {name!r} was added at the same time", "run the update again") from None
        return await self.get(name, version)

    async def set_default(self, name: str, version: int) -> DocumentInfo:
        async with self._db.begin() as db:
            doc = await db.get(DocumentRow, name, with_for_update=True)
            if doc is None:
                raise NotFound(f"no document {name!r}", LIST_HINT)
            if await db.get(DocumentVersionRow, (name, version)) is None:
                raise NotFound(
                    f"document {name!r} has no version {version}",
                    f"its versions are 1-{doc.latest_version}: opsctl doc versions {name}",
                )
            doc.default_version = version
        return await self.get(name, version)

    async def delete(self, name: str) -> int:
        """Delete *name* and every version of it; how many versions there were."""
        async with self._db.begin() as db:
            doc = await db.get(DocumentRow, name)
            if doc is None:
                raise NotFound(f"no document {name!r}", LIST_HINT)
            count = await db.scalar(
                select(func.count()).select_from(DocumentVersionRow).where(DocumentVersionRow.name == name)
            )
            for row in (await db.scalars(select(DocumentVersionRow).where(DocumentVersionRow.name == name))).all():
                await db.delete(row)
            await db.delete(doc)
        return int(count or 0)
