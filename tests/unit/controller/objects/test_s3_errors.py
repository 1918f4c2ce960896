"""The obstore -> fleetops error table, fed with messages in the shapes obstore 0.12 produces."""

from __future__ import annotations

import pytest
from obstore.exceptions import GenericError, PermissionDeniedError

from fleetops.common.errors import AuthError, FleetopsError, NotFound
from fleetops.controller.objects.interfaces import EXIT_CONFIG, StoreProblem, StoreUnavailable
from fleetops.controller.objects.s3_errors import S3Target, translate

TARGET = S3Target("http://127.0.0.1:8333", "fleetops-output", "commands/c1/h/stdout")


def s3_error(status: int, code: str, reason: str = "Forbidden") -> str:
    return (
        f"Generic S3 error: Error performing GET http://127.0.0.1:8333/fleetops-output/k in 1ms - Server returned "
        f'non-2xx status code: {status} {reason}: <?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>...</Message></Error>\n\nDebug source:\nGeneric {{\n}}"
    )


CONNECTION_REFUSED = (
    "Generic S3 error: Error performing HEAD http://127.0.0.1:1/fleetops-output/k in 100ms, after 1 retries, "
    "max_retries: 1, retry_timeout: 3s  - HTTP error: error sending request\n\nDebug source:\nGeneric {\n"
    "    source: RetryError(\n        inner: Http(\n            HttpError {\n                kind: Connect,\n"
    '                source: ConnectError("tcp connect error", Os { code: 111, kind: ConnectionRefused, '
    'message: "Connection refused" })'
)
TIMED_OUT = (
    "Generic S3 error: Error performing HEAD http://127.0.0.1:5/b/k in 2.1s, after 1 retries - HTTP error: error "
    "sending request\n\nDebug source:\nGeneric {\n    source: RetryError(\n        inner: Http(\n"
    "            HttpError {\n                kind: Timeout,\n"
)

WRITER_FAILURE = (
    "Generic S3 error: Error performing PUT http://127.0.0.1:1/fleetops-output/k in 2.98ms - HTTP error: error "
    "sending request"
)


def check(exc: BaseException, problem: StoreProblem | None, *fragments: str) -> FleetopsError:
    """Translate ``exc``; ``problem`` None means NotFound, else StoreUnavailable with that problem."""
    error = translate(exc, TARGET)
    if problem is None:
        assert type(error) is NotFound
    else:
        assert type(error) is StoreUnavailable
        assert error.problem is problem
    # Never an auth error: the store refusing the controller says nothing about the caller.
    assert not isinstance(error, AuthError)
    for fragment in fragments:
        assert fragment in f"{error.message} | {error.hint}"
    assert "Debug source" not in error.message
    return error


def test_missing_object_is_not_found_and_missing_bucket_is_a_store_problem() -> None:
    check(FileNotFoundError("Object at location k not found"), None, "no object 'commands/c1/h/stdout'")
    error = check(
        FileNotFoundError(s3_error(404, "NoSuchBucket", "Not Found")),
        StoreProblem.BUCKET,
        "bucket 'fleetops-output'",
        "create",
    )
    assert error.exit_code == EXIT_CONFIG


def test_bad_signature_is_a_credentials_problem_with_a_hint() -> None:
    error = check(
        PermissionDeniedError(s3_error(403, "SignatureDoesNotMatch")),
        StoreProblem.CREDENTIALS,
        "rejected the controller's credentials (SignatureDoesNotMatch)",
        "AWS_ACCESS_KEY_ID",
        "clock",
    )
    assert "http://127.0.0.1:8333" in error.message
    assert error.exit_code == EXIT_CONFIG


def test_refusals_that_arrive_untyped() -> None:
    # obstore raises GenericError for a refused listing, and plain OSError from a writer.
    check(GenericError(s3_error(403, "InvalidAccessKeyId")), StoreProblem.CREDENTIALS, "InvalidAccessKeyId")
    check(OSError(s3_error(403, "SignatureDoesNotMatch")), StoreProblem.CREDENTIALS)
    check(PermissionDeniedError("HEAD ... 403 Forbidden: "), StoreProblem.CREDENTIALS, "(HTTP 403)")


def test_access_denied_is_an_access_problem() -> None:
    check(PermissionDeniedError(s3_error(403, "AccessDenied")), StoreProblem.ACCESS, "grant")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (CONNECTION_REFUSED, "connection refused"),
        (TIMED_OUT, "timed out"),
        ("HTTP error: dns error", "resolve"),
        (WRITER_FAILURE, "connection failed"),
    ],
)
def test_transport_failures_are_unreachable(message: str, reason: str) -> None:
    error = check(
        GenericError(message), StoreProblem.UNREACHABLE, "unreachable", reason, "http://127.0.0.1:8333", "retried"
    )
    assert error.exit_code == 6  # Unavailable's: worth a restart, unlike a configuration problem
    check(OSError(message), StoreProblem.UNREACHABLE, reason)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_side_failures_are_failing(status: int) -> None:
    check(GenericError(s3_error(status, "SlowDown", "Service Unavailable")), StoreProblem.FAILING, f"HTTP {status}")


def test_configuration_mistakes_name_region_and_bucket() -> None:
    check(GenericError(s3_error(400, "AuthorizationHeaderMalformed", "Bad Request")), StoreProblem.REGION, "region")
    check(GenericError(s3_error(400, "InvalidBucketName", "Bad Request")), StoreProblem.BUCKET, "bucket name")


def test_anything_else_is_failing_and_fleetops_errors_pass_through() -> None:
    check(GenericError(s3_error(400, "EntityTooSmall", "Bad Request")), StoreProblem.FAILING, "EntityTooSmall")
    original = NotFound("already translated")
    assert translate(original, TARGET) is original
