"""Translation of obstore's exceptions into the fleetops error tree: the one table for S3.

obstore raises typed exceptions only for some cases (``FileNotFoundError``,
``PermissionDeniedError``...); a listing refused with 403, or any failure inside a streamed
writer, arrives as ``GenericError`` or a plain ``OSError``. The HTTP status, the S3 error code
(``<Code>...</Code>``) and the transport failure kind are all in the message, so the table reads
them from there and falls back on the exception type.

Whatever the store refuses (our credentials, our access, the bucket, the region) is a
:class:`~fleetops.controller.objects.interfaces.StoreUnavailable` naming the
:class:`~fleetops.controller.objects.interfaces.StoreProblem`: the controller's own trouble, never
an auth error that could travel to an agent or operator as if *they* had been refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

from fleetops.common.errors import FleetopsError, NotFound
from fleetops.controller.objects.interfaces import StoreProblem, StoreUnavailable

_STATUS = re.compile(r"status code: (\d{3})")
_S3_CODE = re.compile(r"<Code>([^<]+)</Code>")
_HTTP_KIND = re.compile(r"HttpError \{\s*kind: (\w+)")
_MAX_DETAIL = 300

_CREDENTIALS_HINT = (
    "check the access key id and secret the controller uses (explicit settings, AWS_ACCESS_KEY_ID/"
    "AWS_SECRET_ACCESS_KEY, or the shared credentials file of AWS_PROFILE) and that this host's clock is "
    "right: S3 refuses signatures more than 15 minutes off"
)
_UNREACHABLE_HINT = "check that the S3 endpoint is up and reachable from the controller; the operation can be retried"
_REGION_CODES = {"AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException"}


@dataclass(frozen=True)
class S3Target:
    """What a failed call was talking to, for the error message."""

    where: str  # the endpoint URL, or "AWS S3 (<region>)"
    bucket: str
    key: str  # the object key or list prefix ("" for the whole bucket)


def translate(exc: BaseException, target: S3Target) -> FleetopsError:
    """The fleetops error for an exception raised by obstore while talking to ``target``.

    ``FleetopsError`` instances pass through unchanged; a missing object is ``NotFound``; anything
    else is ``StoreUnavailable`` with its :class:`StoreProblem` (an unrecognised refusal carries
    obstore's own first line).
    """
    if isinstance(exc, FleetopsError):
        return exc
    text = str(exc)
    status_match = _STATUS.search(text)
    status = int(status_match.group(1)) if status_match else None
    code_match = _S3_CODE.search(text)
    code = code_match.group(1) if code_match else ""
    store = f"object store at {target.where} (bucket {target.bucket!r})"

    if code == "NoSuchBucket":
        return StoreUnavailable(
            f"bucket {target.bucket!r} does not exist at {target.where}",
            "create the bucket, or fix the bucket name in the object store URL (--object-store)",
            problem=StoreProblem.BUCKET,
        )
    if isinstance(exc, FileNotFoundError) or status == 404:
        return NotFound(f"no object {target.key!r} in {store}")
    if isinstance(exc, PermissionDeniedError | UnauthenticatedError) or status in (401, 403):
        if status is None:  # a HEAD answer has no body to quote; the type says which status it was
            status = 401 if isinstance(exc, UnauthenticatedError) else 403
        if code == "AccessDenied":
            return StoreUnavailable(
                f"{store} denied the controller access to {target.key!r} (AccessDenied)",
                "grant the controller's credentials read, write, delete, list and multipart-upload rights on "
                "the bucket",
                problem=StoreProblem.ACCESS,
            )
        return StoreUnavailable(
            f"{store} rejected the controller's credentials ({code or f'HTTP {status}'})",
            _CREDENTIALS_HINT,
            problem=StoreProblem.CREDENTIALS,
        )
    if status is None:
        # No HTTP answer at all: refused, reset, timed out, DNS... the store is unreachable.
        return StoreUnavailable(
            f"{store} unreachable: {_transport_reason(text)}", _UNREACHABLE_HINT, problem=StoreProblem.UNREACHABLE
        )
    if status >= 500 or status in (408, 429):
        return StoreUnavailable(f"{store} failed: HTTP {status} {code}".rstrip(), _UNREACHABLE_HINT)
    if code in _REGION_CODES or status == 301:
        return StoreUnavailable(
            f"{store} says the region is wrong ({code or f'HTTP {status}'}): {_first_line(text)}",
            "set the bucket's region in the object store URL, e.g. s3://bucket?region=eu-west-1",
            problem=StoreProblem.REGION,
        )
    if code == "InvalidBucketName":
        return StoreUnavailable(
            f"{store} refuses the bucket name {target.bucket!r}",
            "bucket names are 3-63 lowercase letters, digits, '.' and '-'",
            problem=StoreProblem.BUCKET,
        )
    return StoreUnavailable(
        f"{store} refused a request for {target.key!r}: HTTP {status} {code}: {_first_line(text)}",
        "see the object store's own logs for why it refused the request",
    )


def _transport_reason(text: str) -> str:
    lowered = text.lower()
    if "connection refused" in lowered:
        return "connection refused"
    kind = _HTTP_KIND.search(text)
    if (kind and kind.group(1) == "Timeout") or "timed out" in lowered:
        return "timed out"
    if "dns error" in lowered or "failed to lookup address" in lowered:
        return "host name does not resolve"
    if not kind and "error sending request" in lowered:
        # What a streamed writer reports: only the error's first line survives, without the cause.
        return "connection failed"
    if kind:
        return {"Connect": "cannot connect", "Interrupted": "connection interrupted"}.get(
            kind.group(1), f"{kind.group(1).lower()} error"
        )
    return _first_line(text)


def _first_line(text: str) -> str:
    line = text.split("\n", 1)[0].strip()
    return line if len(line) <= _MAX_DETAIL else line[: _MAX_DETAIL - 3] + "..."
