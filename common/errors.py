"""The one exception tree of fleetops, split by who must act.

::

    FleetopsError                      base; ``message`` says what went wrong, ``hint`` what to do next
    ├── InvalidInput                   the caller sent something malformed; fix the input and retry
    │   ├── SelectorError              a tag selector does not parse (carries the column of the bad character)
    │   └── CertificateRequestError    a CSR is not a valid PKCS#10 request we can sign
    ├── NotFound                       the named object does not exist
    ├── Conflict                       the object exists already or is in the wrong state
    ├── AuthError                      authentication or authorization failed; never retried blindly
    │   ├── Unauthenticated            no or unusable credentials (expired, foreign CA, revoked)
    │   └── PermissionDenied           authenticated, but not allowed to do this
    ├── Unavailable                    transient: the peer or a dependency is down; retry with backoff
    │   └── RateLimited                too many attempts from this caller; retry after ``retry_after`` seconds
    └── InternalError                  a bug or broken invariant in fleetops itself

Domain code raises these; the gRPC edges translate them to status codes in one table each
(``fleetops.controller.rpc.errors`` on the server, ``fleetops.common.rpc_client`` on the client), and
``opsctl`` prints ``error:``/``hint:`` with one exit code per class.
"""

from __future__ import annotations


class FleetopsError(Exception):
    """Base of every error fleetops raises on purpose.

    Args:
        message: what went wrong, naming the object involved.
        hint: the next step for whoever must act, or ``""``.
    """

    #: process exit code used by the command-line tools for this class of error
    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InvalidInput(FleetopsError):
    """The caller sent something malformed; nothing was changed."""

    exit_code = 2


class SelectorError(InvalidInput):
    """A tag selector does not parse.

    Args:
        message: what is wrong at that place.
        selector: the whole selector text.
        position: 0-based index of the offending character in ``selector``.
    """

    def __init__(self, message: str, selector: str, position: int, hint: str = "") -> None:
        self.selector = selector
        self.position = position
        pointer = f"\n  {selector}\n  {' ' * position}^"
        super().__init__(
            f"bad selector at column {position + 1}: {message}{pointer}",
            hint or "selectors look like: env=prod,role in (web,api),!canary  (comma means AND)",
        )


class CertificateRequestError(InvalidInput):
    """A certificate signing request cannot be used."""


class NotFound(FleetopsError):
    """The named object does not exist."""

    exit_code = 3


class Conflict(FleetopsError):
    """The object already exists or is in a state that forbids the change."""

    exit_code = 4


class AuthError(FleetopsError):
    """Authentication or authorization failed."""

    exit_code = 5


class Unauthenticated(AuthError):
    """No usable credentials: missing, expired, from a foreign CA, or revoked."""


class PermissionDenied(AuthError):
    """The caller is known but may not do this."""


class Unavailable(FleetopsError):
    """A peer or dependency is down or overloaded; retrying later may succeed."""

    exit_code = 6


class RateLimited(Unavailable):
    """Too many attempts from one caller (an address, an activation, a login token); retry later.

    Args:
        message: what was throttled and for whom.
        hint: the next step (usually: wait and retry).
        retry_after: seconds until an attempt will be accepted again (sent as ``retry-after``).
    """

    def __init__(self, message: str, hint: str = "", retry_after: float = 0.0) -> None:
        super().__init__(message, hint)
        self.retry_after = retry_after


class InternalError(FleetopsError):
    """A broken invariant inside fleetops; please report it with the log."""

    exit_code = 70
