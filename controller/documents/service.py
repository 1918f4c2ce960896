"""Documents: keep versions, and turn a run of one into a command (docs/automation.md#documents).

A run names ``NAME`` (the default version) or ``NAME:VERSION``; :meth:`DocumentService.resolve`
finds that version and parses it, and ``Document.resolve`` checks the parameters given against
its declarations before anything is stored or sent. :func:`command_spec` then builds the command:
the document's script (a PowerShell one for Windows hosts when it has one per platform) and the
parameters as ``FLEETOPS_PARAM_*`` environment variables. A parameter's value is never pasted
into script text, so whatever it holds reaches the host as data.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from fleetops.common import documents
from fleetops.common.documents import Document
from fleetops.common.errors import Conflict, InvalidInput, NotFound
from fleetops.controller.commands.models import CommandSpec
from fleetops.controller.documents.models import DocumentInfo, builtin_infos
from fleetops.controller.documents.store import DocumentStore
from fleetops.controller.fleet.models import Host, is_windows

READ_ONLY_HINT = "built-in documents are read-only; create one under another name (opsctl doc create NAME -f FILE)"


class DocumentService:
    def __init__(self, store: DocumentStore) -> None:
        self._store = store
        self._builtins = {info.name: info for info in builtin_infos()}

    # -- keeping versions ------------------------------------------------------------------
    async def list(self) -> builtins.list[DocumentInfo]:
        """The built-in documents, then the stored ones, each at its default version (no content)."""
        return [*(b.listed() for b in self._builtins.values()), *await self._store.list()]

    async def get(self, name: str, version: int | None = None) -> DocumentInfo:
        documents.validate_name(name)
        if (builtin := self._builtins.get(name)) is not None:
            if version not in (None, 1):
                raise NotFound(f"built-in document {name!r} has only version 1", "leave the version out")
            return builtin
        if documents.is_builtin(name):
            raise NotFound(f"no built-in document {name!r}", "list them with opsctl doc list")
        return await self._store.get(name, version)

    async def versions(self, name: str) -> builtins.list[DocumentInfo]:
        documents.validate_name(name)
        if (builtin := self._builtins.get(name)) is not None:
            return [builtin.listed()]
        return await self._store.versions(name)

    def _writable(self, name: str, done: str) -> None:
        documents.validate_name(name)
        if documents.is_builtin(name):
            what = "is built in" if name in self._builtins else f"starts with {documents.BUILTIN_PREFIX}"
            raise Conflict(f"document {name!r} {what} and cannot be {done}", READ_ONLY_HINT)

    async def create(self, actor: str, name: str, content: str) -> DocumentInfo:
        """Version 1 of a new document. Raises InvalidInput (the document names the field), Conflict."""
        self._writable(name, "created")
        doc = documents.parse(content)
        await self._check_runbook(doc)
        return await self._store.create(actor, name, content, doc.kind, doc.description)

    async def update(self, actor: str, name: str, content: str, *, make_default: bool = False) -> DocumentInfo:
        """A new version of *name*; the default stays unless *make_default*."""
        self._writable(name, "changed")
        doc = documents.parse(content)
        await self._check_runbook(doc)
        return await self._store.add_version(actor, name, content, doc.kind, doc.description, make_default=make_default)

    async def set_default(self, name: str, version: int) -> DocumentInfo:
        self._writable(name, "changed")
        return await self._store.set_default(name, version)

    async def delete(self, name: str) -> int:
        self._writable(name, "deleted")
        return await self._store.delete(name)

    async def _check_runbook(self, doc: Document) -> None:
        """A runbook's steps must name documents that exist (their versions are checked when it runs)."""
        if not doc.steps:
            return
        from fleetops.common.runbooks import referenced_documents

        for reference in referenced_documents(doc.steps):
            name, version = documents.split_reference(reference)
            try:
                await self.get(name, version)
            except NotFound as exc:
                raise InvalidInput(f"the runbook runs {reference}: {exc.message}", exc.hint) from None

    # -- runs --------------------------------------------------------------------------------
    async def resolve(self, reference: str) -> tuple[DocumentInfo, Document]:
        """The version *reference* (``NAME`` or ``NAME:VERSION``) names, parsed.

        Raises:
            InvalidInput: a malformed reference.
            NotFound: no such document or version.
        """
        name, version = documents.split_reference(reference)
        info = await self.get(name, version)
        return info, documents.parse(info.content)


def parameters_shown(doc: Document, values: Mapping[str, Any]) -> dict[str, str]:
    """The parameters as the hosts get them (their ``FLEETOPS_PARAM_*`` text), by parameter name."""
    return {p.name: p.env_value(values[p.name]) for p in doc.parameters if p.name in values}


def command_spec(info: DocumentInfo, doc: Document, values: Mapping[str, Any], base: CommandSpec) -> CommandSpec:
    """The command that runs *doc* (a script document) with resolved *values*.

    *base* carries what the caller chose for the run (rates, timeouts, run-as, comment, extra
    environment); the caller applies the document's own timeout when the run gives none.
    """
    if doc.run is None:
        raise InvalidInput(f"document {info.name!r} is {doc.kind!r}, not a script", "see opsctl doc show " + info.name)
    shell, powershell = doc.run.shell, doc.run.powershell
    env = {**base.env, **doc.environment(values)}
    return replace(
        base,
        argv=(),
        script=(shell or powershell).encode(),
        windows_script=powershell.encode() if shell and powershell else None,
        env=env,
        document=info.reference,
        parameters=parameters_shown(doc, values),
    )


def check_platforms(info: DocumentInfo, doc: Document, hosts: Sequence[Host]) -> None:
    """Refuse a run on hosts the document has no script for (before anything is stored).

    A document with only a shell script cannot run on Windows hosts, nor one with only a
    PowerShell script on the others. Hosts that never reported their platform get the shell one.
    """
    scripts = doc.run if doc.run is not None else doc.check
    if scripts is None:
        return
    if not scripts.powershell:
        missing, needs = [h.name for h in hosts if is_windows(h)], "powershell"
    elif not scripts.shell:
        missing, needs = [h.name for h in hosts if not is_windows(h)], "shell"
    else:
        return
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        kind = "Windows" if needs == "powershell" else "not Windows"
        raise InvalidInput(
            f"document {info.reference} has no {needs} script, and {shown} {'is' if len(missing) == 1 else 'are'} "
            f"{kind}",
            f"narrow the target (e.g. --target 'inv.os_family{'!=' if needs == 'powershell' else '='}windows') "
            f"or add run.{needs} to the document",
        )
