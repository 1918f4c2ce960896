"""What the documents room hands out: one version of a document as listed and shown."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from fleetops.common import documents

#: When the built-in documents say they were made (they are part of the release, not stored).
BUILTIN_CREATED_AT = datetime(2026, 1, 1, tzinfo=UTC)
BUILTIN_AUTHOR = "fleetops"


def sha256(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


@dataclass(frozen=True)
class DocumentInfo:
    """One version of a document; ``content`` is ``""`` in listings."""

    name: str
    version: int
    content: str
    kind: str
    description: str
    builtin: bool
    default_version: int
    latest_version: int
    created_at: datetime
    created_by: str
    sha256: str

    @property
    def reference(self) -> str:
        """``NAME:VERSION``, as commands record it."""
        return f"{self.name}:{self.version}"

    def listed(self) -> DocumentInfo:
        return replace(self, content="")


def builtin_infos() -> list[DocumentInfo]:
    """The built-in documents, each at its only version (1)."""
    out = []
    for name, text in documents.BUILTIN_DOCUMENTS.items():
        doc = documents.parse(text)
        out.append(
            DocumentInfo(
                name=name,
                version=1,
                content=text,
                kind=doc.kind,
                description=doc.description,
                builtin=True,
                default_version=1,
                latest_version=1,
                created_at=BUILTIN_CREATED_AT,
                created_by=BUILTIN_AUTHOR,
                sha256=sha256(text),
            )
        )
    return out
