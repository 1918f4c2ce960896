"""``kind: Document``: the document itself (docs/automation.md#documents) is the spec.

Documents are versioned: applying a changed spec adds a version and makes it the default (what
runs use), as ``opsctl doc update --make-default``; an unchanged spec adds nothing. The stored
text is the spec written as YAML; specs are compared as data, so comments and key order in a
document made by hand do not count as changes. Built-in documents (``fleetops-*``) are neither
exported nor applied. Changes need ``document.manage``.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from fleetops.common import documents
from fleetops.common.errors import InvalidInput
from fleetops.common.strict_yaml import kind_of
from fleetops.controller.authz import Decision, authorize
from fleetops.controller.config.interfaces import AuditEntry, Change, Checking, Spec
from fleetops.controller.documents.service import DocumentService

RANK = 40


def content_of(spec: Spec) -> str:
    """The text stored for *spec*: YAML, keys in the order given."""
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=False, allow_unicode=True)


def parse_spec(spec: Spec) -> documents.Document:
    """The document *spec* describes (for the set's other objects that run it)."""
    return documents.from_data(spec)


class DocumentKind:
    """Documents, through the calls of ``opsctl doc create|update --make-default|delete``."""

    kind = "Document"
    rank = RANK
    read_action = "hosts.read"

    def __init__(self, documents_service: DocumentService) -> None:
        self._documents = documents_service

    def order(self, spec: Spec | None) -> int:
        # A runbook's steps name other documents: those are stored first.
        return RANK + 1 if spec and spec.get("steps") is not None else RANK

    def canonical(self, name: str, spec: Any) -> Spec:
        documents.validate_name(name)
        if documents.is_builtin(name):
            raise InvalidInput(
                f"document names starting {documents.BUILTIN_PREFIX} are the built-in documents", documents.NAME_HINT
            )
        if not isinstance(spec, dict):
            raise InvalidInput(f"spec: a document is a mapping, got {kind_of(spec)}", documents.DOC_HINT)
        data: Spec = json.loads(json.dumps(spec))
        documents.parse(content_of(data), "spec")  # size, fields, parameters, steps: naming the field
        return data

    async def current(self) -> dict[str, Spec]:
        out = {}
        for listed in await self._documents.list():
            if listed.builtin:
                continue
            info = await self._documents.get(listed.name)
            data = documents.load_text(info.content, listed.name)
            out[listed.name] = json.loads(json.dumps(data))
        return out

    async def check(self, checking: Checking, name: str, after: Spec | None, before: Spec | None) -> list[Decision]:
        if after is not None and after.get("steps") is not None:
            from fleetops.common.runbooks import referenced_documents

            known = checking.names.get("Document", frozenset())
            for reference in referenced_documents(parse_spec(after).steps):
                ref_name, _ = documents.split_reference(reference)
                if ref_name not in known and not documents.is_builtin(ref_name):
                    raise InvalidInput(
                        f"steps: the runbook runs {reference}, which does not exist", "add it to the set"
                    )
        return [authorize(checking.roles, "document.manage", user=checking.user, what="manage documents")]

    async def apply(self, actor: str, checking: Checking, change: Change) -> list[AuditEntry]:
        if change.action == "delete":
            count = await self._documents.delete(change.name)
            return [("document.delete", change.name, {"versions": count})]
        assert change.after is not None
        content = content_of(change.after)
        if change.action == "create":
            info = await self._documents.create(actor, change.name, content)
            return [("document.create", info.reference, {"version": info.version, "sha256": info.sha256})]
        info = await self._documents.update(actor, change.name, content, make_default=True)
        details = {"version": info.version, "sha256": info.sha256, "default_version": info.default_version}
        return [("document.update", info.reference, details)]
