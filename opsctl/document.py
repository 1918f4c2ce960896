"""``opsctl doc``: documents, named and versioned operations (docs/automation.md#documents).

``create`` and ``update`` check the file here first (the same checks as the controller's, from
``fleetops.common.documents``) so that a mistake names the file and field before anything is
sent. Runs are ``opsctl run --doc NAME[:VERSION] --param K=V`` (``opsctl/command.py``).
"""

from __future__ import annotations

import argparse
import difflib
import sys

from fleetops.common import documents
from fleetops.common.errors import InvalidInput
from fleetops.opsctl import output
from fleetops.opsctl.admin import read_text
from fleetops.opsctl.client import OperatorClient
from fleetops.v1 import operator_pb2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doc = sub.add_parser(
        "doc",
        help="documents: named, versioned, parameterised operations (run them with opsctl run --doc)",
        description="Documents are named, versioned operations with typed parameters. Each update adds an "
        "immutable version; runs use the default version unless they name one (NAME:VERSION).",
    )
    dsub = doc.add_subparsers(dest="doc_command", required=True)
    p = dsub.add_parser("create", help="create a document (version 1) from a YAML or JSON file")
    p.add_argument("name", metavar="NAME")
    p.add_argument("-f", "--file", required=True, metavar="FILE", help="the document (- for standard input)")
    output.add_output_argument(p)
    p.set_defaults(func=create_document)

    p = dsub.add_parser("update", help="add a version of a document (the default stays unless --make-default)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("-f", "--file", required=True, metavar="FILE", help="the document (- for standard input)")
    p.add_argument("--make-default", action="store_true", help="make the new version the default at once")
    output.add_output_argument(p)
    p.set_defaults(func=update_document)

    p = dsub.add_parser("list", help="documents, each at its default version")
    output.add_output_argument(p)
    p.set_defaults(func=list_documents)

    p = dsub.add_parser("show", help="a document's text (its default version, or NAME:VERSION)")
    p.add_argument("name", metavar="NAME[:VERSION]")
    output.add_output_argument(p)
    p.set_defaults(func=show_document)

    p = dsub.add_parser("versions", help="a document's versions")
    p.add_argument("name", metavar="NAME")
    output.add_output_argument(p)
    p.set_defaults(func=list_versions)

    p = dsub.add_parser("diff", help="what changed between two versions (default: the default version and the latest)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("versions", nargs="*", type=int, metavar="VERSION", help="one or two versions")
    p.set_defaults(func=diff_versions)

    p = dsub.add_parser("set-default", help="the version runs use when they name none")
    p.add_argument("name", metavar="NAME")
    p.add_argument("version", type=int, metavar="VERSION")
    p.set_defaults(func=set_default)

    p = dsub.add_parser("delete", help="delete a document and all its versions")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=delete_document)


def _read(name: str, path: str) -> str:
    documents.validate_name(name)
    text, where = read_text(path, "document")
    documents.parse(text, where)  # raises InvalidInput naming the file and the field
    return text


def _created(args: argparse.Namespace, info: operator_pb2.DocumentVersion) -> None:
    default = "" if info.default_version == info.version else f" (the default is still {info.default_version}: "
    default += f"opsctl doc set-default {info.name} {info.version})" if default else ""
    output.emit(args, info, lambda: print(f"document {info.name} version {info.version}{default}"))


def create_document(client: OperatorClient, args: argparse.Namespace) -> int:
    _created(args, client.create_document(args.name, _read(args.name, args.file)))
    return 0


def update_document(client: OperatorClient, args: argparse.Namespace) -> int:
    _created(args, client.update_document(args.name, _read(args.name, args.file), args.make_default))
    return 0


def list_documents(client: OperatorClient, args: argparse.Namespace) -> int:
    docs = client.list_documents()

    def text() -> None:
        rows = [
            [
                d.name,
                d.kind,
                str(d.default_version),
                str(d.latest_version),
                "built-in" if d.builtin else d.created_by,
                _shorten(d.description, 60),
            ]
            for d in docs
        ]
        output.table(["NAME", "KIND", "DEFAULT", "LATEST", "BY", "DESCRIPTION"], rows, out=sys.stdout)

    output.emit(args, docs, text)
    return 0


def _shorten(text: str, width: int) -> str:
    line = output.neutralize(text.strip().splitlines()[0] if text.strip() else "")
    return line if len(line) <= width else line[: width - 1] + "…"


def show_document(client: OperatorClient, args: argparse.Namespace) -> int:
    name, version = documents.split_reference(args.name)
    info = client.get_document(name, version or 0)

    def text() -> None:
        default = "default" if info.version == info.default_version else f"default is {info.default_version}"
        print(f"# {info.name} version {info.version} of {info.latest_version} ({default}), {info.kind}")
        print(f"# by {info.created_by} at {output.when(info.created_at)}, sha256 {info.sha256}")
        sys.stdout.write(output.neutralize(info.content, keep_layout=True))
        if not info.content.endswith("\n"):
            print()

    output.emit(args, info, text)
    return 0


def list_versions(client: OperatorClient, args: argparse.Namespace) -> int:
    versions = client.document_versions(args.name)

    def text() -> None:
        rows = [
            [
                str(v.version),
                "yes" if v.version == v.default_version else "",
                output.when(v.created_at),
                v.created_by,
                v.sha256[:12],
            ]
            for v in versions
        ]
        output.table(["VERSION", "DEFAULT", "CREATED", "BY", "SHA256"], rows, out=sys.stdout)

    output.emit(args, versions, text)
    return 0


def diff_versions(client: OperatorClient, args: argparse.Namespace) -> int:
    """A unified diff; exit 1 when the versions differ (as diff(1)), 0 when they are the same."""
    if len(args.versions) > 2:
        raise InvalidInput("give at most two versions", f"opsctl doc diff {args.name} 1 2")
    if len(args.versions) == 2:
        old_version, new_version = args.versions
    else:
        latest = client.get_document(args.name)
        new_version = latest.latest_version
        old_version = args.versions[0] if args.versions else latest.default_version
    old = client.get_document(args.name, old_version)
    new = client.get_document(args.name, new_version)
    lines = list(
        difflib.unified_diff(
            old.content.splitlines(keepends=True),
            new.content.splitlines(keepends=True),
            f"{args.name}:{old.version}",
            f"{args.name}:{new.version}",
        )
    )
    for line in lines:
        sys.stdout.write(output.neutralize(line if line.endswith("\n") else line + "\n", keep_layout=True))
    return 1 if lines else 0


def set_default(client: OperatorClient, args: argparse.Namespace) -> int:
    info = client.set_default_document_version(args.name, args.version)
    print(f"document {info.name}: runs now use version {info.version}")
    return 0


def delete_document(client: OperatorClient, args: argparse.Namespace) -> int:
    count = client.delete_document(args.name)
    print(f"deleted document {args.name} ({output.plural(count, 'version')})")
    return 0
