"""Object keys: the one definition of a well-formed key, shared by every backend.

A key is a ``/``-separated relative path such as ``commands/<command-id>/<host>/stdout``. The
rules are strict enough that every key maps to a safe path under the local store's root and to
the same object name on S3, so switching backends never changes which keys are valid.
"""

from __future__ import annotations

from fleetops.common.errors import InvalidInput

#: S3's limit on a key, in UTF-8 bytes.
MAX_KEY_BYTES = 1024
#: Most filesystems' limit on one path component (NAME_MAX), in bytes.
MAX_SEGMENT_BYTES = 255
#: The local store writes temporary files named so; keys may not collide with them.
RESERVED_SEGMENT_PREFIX = ".fleetops-tmp-"

_HINT = "keys are relative paths of non-empty '/'-separated segments, e.g. commands/<command-id>/<host>/stdout"


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is well formed.

    Raises:
        InvalidInput: ``key`` is empty, absolute, contains a backslash, a control character, an
            empty, ``.`` or ``..`` segment or a segment starting with the reserved temp-file
            prefix, or is too long.
    """
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"invalid object key {key!r}: it is empty", _HINT)
    _check_path(key, "object key")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` without a trailing ``/``; ``""`` (everything) is allowed.

    Raises:
        InvalidInput: ``prefix`` breaks a rule of :func:`validate_key`.
    """
    if not isinstance(prefix, str):
        raise InvalidInput(f"invalid key prefix {prefix!r}: not a string", _HINT)
    trimmed = prefix[:-1] if prefix.endswith("/") else prefix
    if trimmed:
        _check_path(trimmed, "key prefix")
    elif prefix:
        raise InvalidInput(f"invalid key prefix {prefix!r}: it is absolute", _HINT)
    return trimmed


def _check_path(path: str, what: str) -> None:
    def bad(reason: str) -> InvalidInput:
        return InvalidInput(f"invalid {what} {path!r}: {reason}", _HINT)

    if path.startswith("/"):
        raise bad("it is absolute")
    if "\\" in path:
        # A backslash is a separator on Windows: it would let a key escape its directory there.
        raise bad("it contains a backslash")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise bad("it contains a control character")
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        raise bad("it is not valid Unicode (lone surrogate)") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise bad(f"it is longer than {MAX_KEY_BYTES} bytes")
    for segment in path.split("/"):
        if not segment:
            raise bad("it has an empty segment")
        if segment in (".", ".."):
            raise bad(f"it has a {segment!r} segment")
        if segment.startswith(RESERVED_SEGMENT_PREFIX):
            raise bad(f"segments starting with {RESERVED_SEGMENT_PREFIX!r} are reserved")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise bad(f"a segment is longer than {MAX_SEGMENT_BYTES} bytes")
