"""Rendering for opsctl: aligned tables for people, JSON for programs."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO = sys.stdout) -> None:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers).rstrip(), file=out)
    for row in rows:
        print(line.format(*row).rstrip(), file=out)


def as_json(messages: Sequence[Message] | Message, out: TextIO = sys.stdout) -> None:
    if isinstance(messages, Message):
        doc: Any = MessageToDict(messages, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    else:
        doc = [
            MessageToDict(m, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
            for m in messages
        ]
    print(json.dumps(doc, indent=2, sort_keys=True), file=out)


def ago(ts: Any) -> str:
    """A protobuf Timestamp as '5s ago' / '3h ago'; '-' when unset."""
    if not ts.seconds and not ts.nanos:
        return "-"
    delta = (datetime.now(UTC) - ts.ToDatetime(tzinfo=UTC)).total_seconds()
    if delta < 0:
        return "in " + _span(-delta)
    return _span(delta) + " ago"


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def when(ts: Any) -> str:
    if not ts.seconds and not ts.nanos:
        return "-"
    return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
