"""The limits of the unauthenticated enrollment port (Register and OperatorLogin).

Two kinds of bucket:

* per source address: every attempt takes a token, whatever it asks for (an IPv6 peer counts by
  its /64, the smallest network one subscriber usually holds);
* per subject (an activation id, a login token id): only *wrong answers* take a token, so a
  legitimate mass registration through one activation is never slowed, while guesses spread over
  many addresses still are. After ``lockout_after`` wrong answers the subject is locked for good
  (the enrollment and users rooms keep that count; it survives restarts for activations).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fleetops.common.errors import RateLimited
from fleetops.controller.throttle.buckets import BucketTable, Rate


@dataclass(frozen=True)
class ThrottleSettings:
    """Defaults: a burst of 10 attempts per source, then 1 a second; 10 wrong answers lock a subject."""

    per_source: Rate = field(default_factory=lambda: Rate(10, 1.0))
    # Wrong codes or secrets for one activation / login token, from anywhere.
    per_subject: Rate = field(default_factory=lambda: Rate(10, 0.1))
    # Wrong answers after which an activation or a login token is locked; 0 = never lock.
    lockout_after: int = 10
    # Refusals of one source are audited one by one up to ``refusals_in_full`` per interval, then counted.
    refusal_interval: float = 60.0
    refusals_in_full: int = 5


def source_key(address: str) -> str:
    """The key a source address is throttled by: the IPv4 address, or the /64 of an IPv6 one.

    Anything else (a Unix socket path, an unparsable peer) is its own key.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:128]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _seconds(wait: float) -> int:
    return max(1, math.ceil(wait))


class EnrollmentThrottle:
    """Token buckets per source address and per subject (see the module docstring)."""

    def __init__(
        self, settings: ThrottleSettings | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings or ThrottleSettings()
        self._sources = BucketTable(self.settings.per_source, clock=clock)
        self._subjects = BucketTable(self.settings.per_subject, clock=clock)

    @property
    def lockout_after(self) -> int:
        return self.settings.lockout_after

    def admit(self, source: str, what: str) -> None:
        """Take one attempt of ``source`` (a key from :func:`source_key`).

        Raises:
            RateLimited: the source used its burst; ``retry_after`` says when to come back.
        """
        wait = self._sources.take(source)
        if wait:
            n = _seconds(wait)
            raise RateLimited(
                f"too many {what} from {source}; retry in {n} s",
                f"wait {n} s and try again (this address may make {self.settings.per_source.describe()}); "
                "if many hosts register through one NAT address, an admin can raise the controller's "
                "--enroll-burst and --enroll-rate",
                retry_after=wait,
            )

    def check_subject(self, subject: str, what: str) -> None:
        """Refuse an attempt on ``subject`` while its wrong answers are over their rate (takes nothing).

        Raises:
            RateLimited: too many wrong answers for ``subject`` lately, from any address.
        """
        wait = self._subjects.wait(subject)
        if wait:
            n = _seconds(wait)
            raise RateLimited(
                f"too many wrong {what} lately; retry in {n} s",
                f"wait {n} s and try again with the right one ({self.settings.per_subject.describe()} wrong "
                "answers are accepted)",
                retry_after=wait,
            )

    def wrong_answer(self, subject: str) -> None:
        """Count a wrong code or secret against ``subject``."""
        self._subjects.take(subject)
