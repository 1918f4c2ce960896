"""Every ``# type: ignore`` in the package names its error code and says why.

mypy (``scripts/typecheck.sh``, run by ``.ci/run``) already refuses an ignore without a code
(``enable_error_code = ["ignore-without-code"]``) and one that no longer silences anything
(``warn_unused_ignores``); the reason is for the reader, so it is checked here. The form is::

    call(x)  # type: ignore[attr-defined]  # grpc-stubs lack aio.EOF

Comments are found with :mod:`tokenize`, so the words inside a string do not count.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ["agent", "controller", "opsctl", "common", "migrations"]
GENERATED = re.compile(r"_pb2(_grpc)?\.pyi?$")

_IGNORE = re.compile(r"type:\s*ignore\b")
# "# type: ignore[code, code]  # reason": codes, then a second comment with some words.
_WITH_REASON = re.compile(r"type:\s*ignore\[[a-z0-9-]+(\s*,\s*[a-z0-9-]+)*\]\s*#\s*\S")


def bad_ignores(source: str) -> Iterator[tuple[int, str]]:
    """(line, comment) of each ``type: ignore`` comment in ``source`` without a code and a reason."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and _IGNORE.search(token.string) and not _WITH_REASON.search(token.string):
            yield token.start[0], token.string


def _sources() -> Iterator[Path]:
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if not GENERATED.search(path.name):
                yield path


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        ("x = f()  # type: ignore[attr-defined]  # grpc-stubs lack aio.EOF\n", True),
        ("x = f()  # type: ignore[arg-type, misc]  # the stub is too narrow\n", True),
        ("x = f()  # type: ignore\n", False),
        ("x = f()  # type: ignore[attr-defined]\n", False),
        ("x = f()  # type: ignore[attr-defined]  #\n", False),
        ("x = f()  # noqa: B009 type: ignore[misc]\n", False),
        ('x = "# type: ignore"\n', True),  # a string, not a comment
    ],
)
def test_the_check_tells_a_reasoned_ignore_from_a_bare_one(line: str, ok: bool) -> None:
    assert (list(bad_ignores(line)) == []) is ok


def test_every_type_ignore_has_a_code_and_a_reason() -> None:
    found = []
    for path in _sources():
        for line, comment in bad_ignores(path.read_text(encoding="utf-8")):
            found.append(f"{path.relative_to(ROOT)}:{line}: {comment}")
    assert not found, "type: ignore without an error code and a reason comment:\n" + "\n".join(found)
