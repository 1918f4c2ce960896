"""Rendering for opsctl: aligned tables for people, JSON for programs.

Anything a host reported (its name, inventory, tags it chose, command output and reasons) is
data from a machine that may be compromised: printed to a terminal, an escape sequence in it
could redraw the screen, fake rows or hide text. :func:`host_text` and :class:`HostOutput` show
such characters visibly escaped instead (``\\x1b``, ``\\u202e``) unless ``--raw`` is given.
Command output keeps its newlines and tabs; one-line fields (names, tags) escape those too.
JSON output needs none of this: ``json.dumps`` escapes every control character.
"""

from __future__ import annotations

import argparse
import codecs
import functools
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, BinaryIO, TextIO, cast

from google.protobuf.descriptor import Descriptor, EnumDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO | None = None) -> None:
    out = out or sys.stdout  # looked up now, not at import: a redirected stdout is honoured
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers).rstrip(), file=out)
    for row in rows:
        print(line.format(*row).rstrip(), file=out)


#: What ``-o json`` prints: a message, a list of messages, or a document already in JSON form.
JsonData = Message | Sequence[Message] | dict[str, Any] | list[Any]


def emit(
    args: argparse.Namespace,
    data: JsonData | Callable[[], JsonData],
    render_text: Callable[[], object],
    *,
    yaml: Callable[[], object] | None = None,
    out: TextIO | None = None,
) -> None:
    """Print a command's result in the form ``-o`` asks for: the one place that picks between the forms.

    Args:
        args: the parsed command line; ``args.output`` comes from :func:`add_output_argument`.
        data: what ``-o json`` prints (see :func:`json_doc`), or a function that returns it,
            called only for ``-o json`` (for documents that cost something to build).
        render_text: prints the text form for people; called only for ``-o text``.
        yaml: prints the YAML form, for the commands that offer ``-o yaml``.
        out: where the JSON goes (default: the current ``sys.stdout``).

    Raises:
        AssertionError: ``-o yaml`` on a command that gives no ``yaml`` renderer (a programming error:
            argparse only offers the formats the command registered).
    """
    fmt = getattr(args, "output", "text")
    if fmt == "json":
        print_json(data() if callable(data) else data, out)
    elif fmt == "yaml":
        if yaml is None:
            raise AssertionError("-o yaml given to a command without a YAML form")
        yaml()
    else:
        render_text()


def json_doc(data: Any) -> Any:
    """The JSON document of *data*: messages become their :func:`message_dict`, documents stay as they are."""
    if isinstance(data, Message):
        return message_dict(data)
    if data is None or isinstance(data, (dict, str, bytes, int, float)):
        return data  # already a JSON value (a list holds messages or JSON values)
    return [json_doc(item) for item in data]


def print_json(data: JsonData, out: TextIO | None = None) -> None:
    """Print *data* as every ``-o json`` does: indented, keys sorted (see :func:`json_doc`)."""
    print(json.dumps(json_doc(data), indent=2, sort_keys=True), file=out or sys.stdout)


def message_dict(message: Message) -> dict[str, Any]:
    """The JSON form of ``message`` that every ``-o json`` prints (docs/cli.md).

    Protobuf's JSON mapping with the field names of the .proto files and every field present,
    except enum values: those are the same lowercase words the text output prints (``online``,
    ``timed_out``), not the wire names (``HOST_STATUS_ONLINE``). Timestamps stay RFC 3339 UTC
    strings, bytes base64, 64-bit integers decimal strings, as protobuf's JSON writes them.
    """
    doc = MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    # The stubs type DESCRIPTOR as the pure-Python or the upb Descriptor; both have the fields read here.
    _enum_words(doc, cast(Descriptor, message.DESCRIPTOR))
    return doc


@functools.cache
def _enum_prefix(enum: EnumDescriptor) -> str:
    """``HostStatus`` -> ``HOST_STATUS_``: the prefix every value name of the enum carries (protobuf style).

    Taken from the zero value (``HOST_STATUS_UNSPECIFIED``), else from the enum's name.
    """
    zero = enum.values_by_number.get(0)
    if zero is not None and zero.name.endswith("_UNSPECIFIED"):
        return zero.name.removesuffix("UNSPECIFIED")
    return "".join("_" + c if c.isupper() and i else c for i, c in enumerate(enum.name)).upper() + "_"


def enum_word(enum: EnumDescriptor, value: int | str) -> str | int:
    """An enum value (its number or wire name) as the word opsctl prints: ``HOST_STATUS_ONLINE`` -> ``online``.

    A number this opsctl does not know (a newer controller's value) stays a number.
    """
    if isinstance(value, int):
        known = enum.values_by_number.get(value)
        if known is None:
            return value
        value = known.name
    return value.removeprefix(_enum_prefix(enum)).lower()


def _is_well_known(message: Descriptor) -> bool:
    """Timestamp, Duration, Struct...: protobuf gives them their own JSON form, kept as it is."""
    return message.file.name.startswith("google/protobuf/")


def _enum_words(doc: dict[str, Any], descriptor: Descriptor) -> None:
    """Replace, in place, the enum names in ``doc`` (``MessageToDict`` of a ``descriptor`` message) by words."""
    for field in descriptor.fields:
        if field.name not in doc:
            continue
        value = doc[field.name]
        target = field.message_type
        if target is not None and target.GetOptions().map_entry:
            inner = target.fields_by_name["value"]
            if inner.enum_type is not None:
                doc[field.name] = {k: enum_word(inner.enum_type, v) for k, v in value.items()}
            elif inner.message_type is not None and not _is_well_known(inner.message_type):
                for item in value.values():
                    _enum_words(item, inner.message_type)
        elif field.enum_type is not None:
            enum = field.enum_type
            doc[field.name] = [enum_word(enum, v) for v in value] if field.is_repeated else enum_word(enum, value)
        elif target is not None and not _is_well_known(target):
            for item in value if field.is_repeated else [value]:
                _enum_words(item, target)


def add_output_argument(parser: argparse.ArgumentParser, *, extra: Sequence[str] = ()) -> None:
    """``-o/--output text|json`` with the same meaning on every command (``extra``: e.g. ``yaml``)."""
    parser.add_argument(
        "-o",
        "--output",
        choices=("text", "json", *extra),
        default="text",
        help="text for people (default), json for programs" + "".join(f", {e}" for e in extra),
    )


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``1 host``, ``2 hosts``, ``0 hosts`` (``plural_form`` for irregular nouns)."""
    return f"{count} {noun if count == 1 else (plural_form or noun + 's')}"


def command_line(argv: Sequence[str]) -> str:
    """An argv as a shell would need it typed: ``sh -c 'for i in 1 2; do echo $i; done'``."""
    return shlex.join(argv)


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


def duration(total: int) -> str:
    """Whole seconds as ``3h``, ``1h30m``, ``2d``, ``0s`` (every unit, largest first; see :func:`ago` for one)."""
    if total <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts)


def json_time(moment: datetime) -> str:
    """A time as ``-o json`` writes every time: RFC 3339 in UTC, as protobuf's JSON does (``2026-03-01T08:00:00Z``)."""
    ts = Timestamp()
    ts.FromDatetime(moment.astimezone(UTC))
    return ts.ToJsonString()


def is_set(ts: Any) -> bool:
    """Whether a protobuf Timestamp is set (an unset one is the epoch: zero seconds and nanos)."""
    return bool(ts.seconds or ts.nanos)


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


# -- host-reported text -------------------------------------------------------------------------------

#: Set from ``--raw`` (see :func:`add_raw_argument`): print host-reported text as it came.
RAW = False

# C0 controls, DEL, C1 controls (what terminals act on), and the Unicode controls that reorder or
# hide text (bidirectional overrides and isolates, "Trojan Source"), each shown as an escape.
_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
_INVISIBLE = [0x061C, 0x200B, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF]
_ONE_LINE = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in [*_CONTROLS, *_INVISIBLE]}
_LAYOUT = {c: e for c, e in _ONE_LINE.items() if c not in (0x09, 0x0A)}


def neutralize(text: str, *, keep_layout: bool = False) -> str:
    """``text`` with every control character escaped visibly (``\\x1b``); ``keep_layout`` keeps ``\\n`` and ``\\t``."""
    return text.translate(_LAYOUT if keep_layout else _ONE_LINE)


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is a terminal (False for anything without a working ``isatty``)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def host_text(text: str, *, out: TextIO | None = None, keep_layout: bool = False) -> str:
    """Host-reported ``text`` as it may be printed.

    Escaped (:func:`neutralize`) unless ``--raw`` was given. With ``out``, only when ``out`` is a
    terminal: command output piped to a file or program stays byte for byte what the host wrote.
    Without ``out`` (names, tags, inventory in tables) it is always escaped: no such field has a
    legitimate control character, and a table saved to a file is printed to a terminal later.
    """
    if RAW or (out is not None and not is_terminal(out)):
        return text
    return neutralize(text, keep_layout=keep_layout)


class HostOutput:
    """A binary sink for a host's output stream (``opsctl run output``): raw unless on a terminal.

    On a terminal (and without ``--raw``) the bytes are decoded incrementally (a character split
    between chunks stays whole) and written with control characters escaped, newlines and tabs kept.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._text = stream or sys.stdout
        self._escape = not RAW and is_terminal(self._text)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    @property
    def _binary(self) -> BinaryIO:
        return self._text.buffer  # sys.stdout has one (TextIO declares it)

    def write(self, data: bytes) -> None:
        if not self._escape:
            self._binary.write(data)
            return
        self._text.write(neutralize(self._decoder.decode(data), keep_layout=True))

    def flush(self) -> None:
        if self._escape:
            self._text.write(neutralize(self._decoder.decode(b"", final=True), keep_layout=True))
            self._text.flush()
        else:
            self._binary.flush()


def add_raw_argument(parser: argparse.ArgumentParser) -> None:
    """Give a command ``--raw`` (call after its ``set_defaults(func=...)``).

    The command's function is wrapped so that :data:`RAW` follows each parse (opsctl may run
    several commands in one process, as tests do).
    """
    parser.add_argument(
        "--raw",
        action="store_true",
        help="print host-reported text (names, inventory, command output) as it came, "
        "control characters included (default: escape them on a terminal)",
    )
    func: Callable[..., int] | None = parser.get_default("func")
    if func is None:
        raise AssertionError(f"add_raw_argument({parser.prog}) before set_defaults(func=...)")

    @functools.wraps(func)
    def with_raw(client: Any, args: argparse.Namespace) -> int:
        global RAW
        RAW = bool(args.raw)
        return func(client, args)

    parser.set_defaults(func=with_raw)
